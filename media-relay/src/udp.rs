//! The engines' UDP sockets: binding them on the relay's one port, and reading
//! and writing datagrams a batch per system call (`recvmmsg`, `sendmmsg`) on
//! Linux, one per call elsewhere; on Linux, a run of datagrams to one address
//! goes as one segmented send (GSO).

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
/// a plain bind has shown that nothing else holds it. They are non-blocking,
/// for the engine's own runtime to take ([`UdpSocket::from_std`]).
pub(crate) fn bind(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
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
        return Ok(vec![first.into()]);
    }
    // The plain bind proved the port free (another relay's sockets, shared
    // or not, would have refused it); the shared ones take its place.
    let addr = first.local_addr()?.as_socket().unwrap_or(addr);
    drop(first);
    (0..count).map(|_| Ok(open(addr, true)?.into())).collect()
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

/// An engine's way out: writes what it queued, a batch per system call, and
/// on Linux a run of datagrams to one address as one (UDP generic
/// segmentation offload, `UDP_SEGMENT`), where the kernel (or the network
/// card) cuts them apart again, so that the stack is walked once per run.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// False once the kernel refused a segmented send: one datagram per
    /// message from then on.
    gso: bool,
}

/// Datagrams sent as one segmented send, at most (the kernel takes 64).
const MAX_SEGMENTS: usize = 16;
/// Bytes in one segmented send, at most (a UDP datagram's limit, with room).
const MAX_SEGMENTED: usize = 60_000;

impl Outbox {
    pub(crate) fn new() -> Outbox {
        Outbox { gso: cfg!(target_os = "linux") }
    }

    /// Writes every transmit; `refused` is told of each the socket did not
    /// take (its buffer full, or an error for that destination), and the
    /// rest are still sent. A destination gets its datagrams in the order
    /// they were queued. Empties `transmits`.
    pub(crate) fn send_all(
        &mut self,
        socket: &UdpSocket,
        transmits: &mut Vec<Transmit>,
        mut refused: impl FnMut(&Transmit),
    ) {
        // Datagrams to send one per message, waiting for a batch. A run goes
        // at once, unless one of these is for its address (order per address
        // is kept; between addresses it does not matter).
        let mut singles: Vec<usize> = Vec::new();
        let mut at = 0;
        while at < transmits.len() {
            let run = if self.gso { segment_run(&transmits[at..]) } else { 1 };
            if run == 1 {
                singles.push(at);
                at += 1;
                continue;
            }
            let to = transmits[at].to;
            if singles.iter().any(|&i| transmits[i].to == to) {
                send_singly(socket, transmits, &singles, &mut refused);
                singles.clear();
            }
            let segments = &transmits[at..at + run];
            match send_segmented(socket, segments) {
                Ok(()) => {}
                Err(error) if cannot_segment(&error) => {
                    // The kernel or the network card cannot do it: never again.
                    tracing::info!(%error, "segmented UDP sends refused; sending one datagram per message");
                    self.gso = false;
                    singles.extend(at..at + run);
                }
                // The buffer is full, or an error for that destination.
                Err(_) => segments.iter().for_each(&mut refused),
            }
            at += run;
        }
        send_singly(socket, transmits, &singles, &mut refused);
        transmits.clear();
    }
}

/// How many transmits from the first can go as one segmented send: the same
/// destination, and all but the last the length of the first (the last may
/// be shorter).
fn segment_run(transmits: &[Transmit]) -> usize {
    let Some(first) = transmits.first() else { return 0 };
    let size = first.data.len();
    let mut total = size;
    let mut run = 1;
    for next in &transmits[1..] {
        let len = next.data.len();
        if run == MAX_SEGMENTS || next.to != first.to || len > size || total + len > MAX_SEGMENTED {
            break;
        }
        run += 1;
        total += len;
        if len < size {
            break;
        }
    }
    run
}

/// True for the errors of a kernel or network card without segmentation
/// offload (too old a kernel: the option is unknown; no checksum offload: EIO).
fn cannot_segment(error: &std::io::Error) -> bool {
    use nix::errno::Errno;
    let errno = error.raw_os_error().map(Errno::from_raw);
    matches!(errno, Some(Errno::EIO | Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOPROTOOPT))
        || error.kind() == std::io::ErrorKind::Unsupported
}

/// Sends `transmits[i]` for each `i` of `which`, one datagram per message,
/// a batch per system call.
fn send_singly(
    socket: &UdpSocket,
    transmits: &[Transmit],
    which: &[usize],
    refused: &mut impl FnMut(&Transmit),
) {
    let mut at = 0;
    while at < which.len() {
        let end = (at + BATCH).min(which.len());
        let batch: Vec<&Transmit> = which[at..end].iter().map(|&i| &transmits[i]).collect();
        match send_batch(socket, &batch) {
            Ok(sent) if sent > 0 => at += sent,
            // The first of the batch was refused: skip it, go on with the rest.
            _ => {
                refused(batch[0]);
                at += 1;
            }
        }
    }
}

/// Sends a run of datagrams to one address as one message, cut at the first one's length.
#[cfg(target_os = "linux")]
fn send_segmented(socket: &UdpSocket, run: &[Transmit]) -> std::io::Result<()> {
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};

    let slices: Vec<IoSlice<'_>> = run.iter().map(|t| IoSlice::new(&t.data)).collect();
    let size = u16::try_from(run[0].data.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let to = SockaddrStorage::from(run[0].to);
    let control = [ControlMessage::UdpGsoSegments(&size)];
    sendmsg(socket.as_raw_fd(), &slices, &control, MsgFlags::MSG_DONTWAIT, Some(&to))?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn send_segmented(_socket: &UdpSocket, _run: &[Transmit]) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(target_os = "linux")]
fn send_batch(socket: &UdpSocket, batch: &[&Transmit]) -> std::io::Result<usize> {
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
fn send_batch(socket: &UdpSocket, batch: &[&Transmit]) -> std::io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;

    use super::*;

    fn transmit(to: SocketAddr, len: usize, tag: u8) -> Transmit {
        Transmit { peer: 0, to, data: Bytes::from(vec![tag; len]) }
    }

    #[test]
    fn a_run_is_one_address_and_one_length_but_its_last() {
        let (a, b): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        let run = |spec: &[(SocketAddr, usize)]| {
            let transmits: Vec<Transmit> = spec.iter().map(|&(to, len)| transmit(to, len, 0)).collect();
            segment_run(&transmits)
        };
        assert_eq!(run(&[]), 0);
        assert_eq!(run(&[(a, 1100), (a, 1100), (a, 300), (a, 300)]), 3, "a frame: two full, one short");
        assert_eq!(run(&[(a, 80), (a, 1100)]), 1, "a longer one cannot follow");
        assert_eq!(run(&[(a, 1100), (b, 1100)]), 1, "another address");
        assert_eq!(run(&[(a, 1100), (a, 900), (a, 1100)]), 2, "a shorter one ends it");
        assert_eq!(run(&[(a, 1100); 40]), MAX_SEGMENTS);
        assert_eq!(run(&[(a, 20_000); 5]), 3, "at most {MAX_SEGMENTED} bytes");
    }

    /// What arrives is what was queued, datagram for datagram and in order
    /// per address, segmented or not.
    #[tokio::test]
    async fn every_datagram_arrives_whole_and_in_order_with_or_without_segmentation() {
        for gso in [true, false] {
            let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let one = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let two = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let (to_one, to_two) = (one.local_addr().unwrap(), two.local_addr().unwrap());
            let queued = [
                (to_two, 80, 9), // waits while runs to the other address go
                (to_one, 80, 1), // audio
                (to_one, 1_100, 2),
                (to_one, 1_100, 3),
                (to_one, 300, 4), // the rest of a video frame
                (to_two, 1_100, 5),
                (to_two, 700, 6),
                (to_one, 1_100, 7),
                (to_one, 1_100, 8),
            ];
            let mut transmits: Vec<Transmit> =
                queued.iter().map(|&(to, len, tag)| transmit(to, len, tag)).collect();
            let mut outbox = Outbox { gso };
            let mut refused = 0;
            outbox.send_all(&relay, &mut transmits, |_| refused += 1);
            assert!(transmits.is_empty());
            assert_eq!(refused, 0, "gso {gso}");
            assert_eq!(outbox.gso, gso, "no fallback on loopback");
            for (socket, to) in [(&one, to_one), (&two, to_two)] {
                let expected: Vec<(usize, u8)> =
                    queued.iter().filter(|q| q.0 == to).map(|&(_, len, tag)| (len, tag)).collect();
                let mut got = Vec::new();
                let mut buffer = vec![0u8; 4_096];
                while got.len() < expected.len() {
                    let read =
                        tokio::time::timeout(std::time::Duration::from_secs(5), socket.recv(&mut buffer));
                    let len = read.await.expect("a datagram").unwrap();
                    assert!(buffer[..len].iter().all(|&b| b == buffer[0]), "one datagram, whole");
                    got.push((len, buffer[0]));
                }
                assert_eq!(got, expected, "gso {gso}");
            }
        }
    }
}
