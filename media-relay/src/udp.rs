//! The engines' UDP sockets: binding them on the relay's one port, and reading
//! and writing datagrams a batch per system call (`recvmmsg`, `sendmmsg`) on
//! Linux, one per call elsewhere.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::engine::Transmit;

/// Kernel buffer asked for each engine's socket, each way. Many participants'
/// packets share a socket, so bursts must not overflow it between two reads;
/// the kernel grants at most `net.core.rmem_max` / `wmem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// Datagrams read, or written, per system call.
pub(crate) const BATCH: usize = 32;

/// Room for one datagram. WebRTC keeps its datagrams under the path MTU
/// (browsers: about 1,200 bytes of payload); a longer one is dropped.
const DATAGRAM_MAX: usize = 2_048;

/// Binds `count` sockets on `addr` (its port, when 0, chosen once), one for
/// each engine: with more than one they share the port (`SO_REUSEPORT`), after
/// a plain bind has shown that nothing else holds it.
pub(crate) fn bind(addr: SocketAddr, count: usize) -> std::io::Result<Vec<UdpSocket>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let open = |addr: SocketAddr, shared: bool| -> std::io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        // Best effort: a smaller buffer still works, only sooner full.
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.set_nonblocking(true)?;
        if shared {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        Ok(socket)
    };
    let first = open(addr, false)?;
    if count <= 1 {
        let granted = first.recv_buffer_size().unwrap_or(0);
        tracing::debug!(granted, "media socket receive buffer");
        return Ok(vec![UdpSocket::from_std(first.into())?]);
    }
    // The plain bind proved the port free (another relay's sockets, shared
    // or not, would have refused it); the shared ones take its place.
    let addr = first.local_addr()?.as_socket().unwrap_or(addr);
    drop(first);
    (0..count).map(|_| UdpSocket::from_std(open(addr, true)?.into())).collect()
}

/// An engine's receive buffers: up to [`BATCH`] datagrams per read.
#[derive(Debug)]
pub(crate) struct Inbox {
    buffers: Vec<Vec<u8>>,
    /// Length and sender of what the last read brought into each buffer, in
    /// order; `None` for a datagram too long for its buffer or from no
    /// address the relay can answer.
    got: Vec<Option<(usize, SocketAddr)>>,
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox { buffers: vec![vec![0; DATAGRAM_MAX]; BATCH], got: Vec::with_capacity(BATCH) }
    }

    /// Reads what has arrived, up to a batch, without waiting: how many
    /// datagrams, or `WouldBlock` when there was none (which also tells
    /// tokio to wait for the socket again).
    pub(crate) fn read(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        self.got.clear();
        socket.try_io(tokio::io::Interest::READABLE, || self.read_batch(socket))?;
        Ok(self.got.len())
    }

    /// The datagrams of the last read.
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.got
            .iter()
            .zip(&self.buffers)
            .filter_map(|(got, buffer)| got.map(|(len, from)| (&buffer[..len], from)))
    }

    #[cfg(target_os = "linux")]
    fn read_batch(&mut self, socket: &UdpSocket) -> std::io::Result<()> {
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            self.buffers.iter_mut().map(|buffer| [IoSliceMut::new(buffer)]).collect();
        let read =
            recvmmsg(socket.as_raw_fd(), &mut headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
        for message in read {
            let from = message.address.as_ref().and_then(|address| {
                let v4 = address.as_sockaddr_in().map(|a| SocketAddr::V4((*a).into()));
                v4.or_else(|| address.as_sockaddr_in6().map(|a| SocketAddr::V6((*a).into())))
            });
            let whole = !message.flags.contains(MsgFlags::MSG_TRUNC);
            self.got.push(from.filter(|_| whole).map(|from| (message.bytes, from)));
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn read_batch(&mut self, socket: &UdpSocket) -> std::io::Result<()> {
        for buffer in &mut self.buffers {
            match socket.try_recv_from(buffer) {
                Ok(got) => self.got.push(Some(got)),
                Err(error) if self.got.is_empty() => return Err(error),
                Err(_) => break,
            }
        }
        Ok(())
    }
}

/// Writes every transmit, in order, a batch per system call; `refused` is
/// told of each the socket did not take (its buffer full, or an error for
/// that destination), and the rest are still sent. Empties `transmits`.
pub(crate) fn send_all(
    socket: &UdpSocket,
    transmits: &mut Vec<Transmit>,
    mut refused: impl FnMut(&Transmit),
) {
    let mut at = 0;
    while at < transmits.len() {
        let end = (at + BATCH).min(transmits.len());
        match send_batch(socket, &transmits[at..end]) {
            Ok(sent) if sent > 0 => at += sent,
            // The first of the batch was refused: skip it, go on with the rest.
            _ => {
                refused(&transmits[at]);
                at += 1;
            }
        }
    }
    transmits.clear();
}

#[cfg(target_os = "linux")]
fn send_batch(socket: &UdpSocket, batch: &[Transmit]) -> std::io::Result<usize> {
    use std::io::IoSlice;

    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, sendmmsg};

    let addresses: Vec<SocketAddrAny> = batch.iter().map(|t| SocketAddrAny::from(t.to)).collect();
    let slices: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|t| [IoSlice::new(&t.data)]).collect();
    let mut no_control: Vec<SendAncillaryBuffer<'_, '_, '_>> =
        batch.iter().map(|_| SendAncillaryBuffer::default()).collect();
    let mut messages: Vec<MMsgHdr<'_>> = addresses
        .iter()
        .zip(&slices)
        .zip(&mut no_control)
        .map(|((address, slice), control)| MMsgHdr::new_with_addr(address, slice, control))
        .collect();
    Ok(sendmmsg(socket, &mut messages, SendFlags::DONTWAIT)?)
}

#[cfg(not(target_os = "linux"))]
fn send_batch(socket: &UdpSocket, batch: &[Transmit]) -> std::io::Result<usize> {
    let mut sent = 0;
    for transmit in batch {
        match socket.try_send_to(&transmit.data, transmit.to) {
            Ok(_) => sent += 1,
            Err(error) if sent == 0 => return Err(error),
            Err(_) => break,
        }
    }
    Ok(sent)
}
