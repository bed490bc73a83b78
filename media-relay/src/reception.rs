//! What the relay does as a receiver of one participant's media: decrypt it
//! (once the participant is connected, with its own copy of the peer
//! connection's remote SRTP context, from [`crate::keys::KeyTap`]) and keep
//! the receiver's side of RTP going, outside the `rtc` pipeline.
//!
//! The peer connection's own pipeline moves each packet through a dozen
//! stages; on the way in, the relay needs only the three interceptors a
//! receiver runs: the NACK generator (ask for what was lost), receiver
//! reports (RFC 3550 6.4.2) and transport-wide congestion-control feedback.
//! [`Reception`] runs exactly those, as the crate has them, in a chain of its
//! own; the peer connection's registry leaves them out. Every inbound packet
//! passes through it, whether the relay decrypted it or the peer connection
//! did (the first packet of each stream, which binds it there; everything
//! before the keys are known or after a fallback). What the chain writes (NACK,
//! RR, TWCC feedback) goes out through the peer connection, which keeps SRTCP.

use std::sync::Arc;
use std::time::Instant;

use foldhash::{HashMap, HashMapExt};
use rtc::interceptor::{
    AttributedPacket, Interceptor, NackGeneratorBuilder, Packet as ChainPacket, ReceiverReportBuilder,
    Registry, Slot, StreamInfo, TaggedPacket, TwccReceiverBuilder,
};
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;
use rtc::shared::marshal::Unmarshal;
use rtc::srtp::context::Context;

use crate::packet::{RemoteStreams, is_rtcp};

/// One participant's media, as the relay receives it.
pub(crate) struct Reception {
    /// NACK generator, receiver reports, transport-wide feedback.
    chain: Box<dyn Interceptor>,
    /// Remote streams as the peer connection binds them (noted by its `KeyframeTap`).
    streams: Arc<RemoteStreams>,
    /// Bound streams not yet matched to a published track.
    unmatched: Vec<StreamInfo>,
    /// The SSRCs (each stream's, and its RTX stream's) that the relay decrypts
    /// itself, and the id of the track they belong to.
    ssrcs: HashMap<u32, Arc<str>>,
    /// The copy of the remote SRTP context, once the keys are known.
    pub(crate) srtp: Option<Context>,
    /// A packet of this track did not open with `srtp` and went to the peer
    /// connection: if the peer connection opens it, the keys are wrong.
    pub(crate) doubt: Option<Arc<str>>,
    /// Media packets decrypted by the relay itself, and their payload bytes.
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
}

/// What became of a datagram offered to [`Reception::open`].
pub(crate) enum Opened {
    /// Not media of a stream the relay decrypts itself: for the peer connection.
    NotOurs,
    /// A packet already received (the replay window refuses it), or not an
    /// RTP packet once opened: dropped, as the peer connection would.
    Dropped,
    /// It did not decrypt: for the peer connection, in doubt.
    Unopened,
    /// Media of this track.
    Media(Arc<str>, rtc::rtp::Packet),
}

impl Reception {
    pub(crate) fn new(streams: Arc<RemoteStreams>) -> Reception {
        let chain = Registry::new()
            .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
            .build();
        Reception {
            chain: Box::new(chain),
            streams,
            unmatched: Vec::new(),
            ssrcs: HashMap::new(),
            srtp: None,
            doubt: None,
            packets: 0,
            bytes: 0,
        }
    }

    /// Binds what the peer connection bound to the receiving interceptors
    /// (and unbinds what it unbound), before they see the streams' packets.
    pub(crate) fn bind_streams(&mut self) {
        for (bound, info) in self.streams.take() {
            if bound {
                self.chain.bind_remote_stream(&info);
                self.unmatched.push(info);
            } else {
                self.chain.unbind_remote_stream(&info);
                self.unmatched.retain(|u| u.ssrc != info.ssrc);
                self.ssrcs.remove(&info.ssrc);
                if let Some(rtx) = info.ssrc_rtx {
                    self.ssrcs.remove(&rtx);
                }
            }
        }
    }

    /// Matches the bound streams to tracks with `track_of` (the id of the
    /// published track an SSRC belongs to): their media is decrypted here
    /// from now on.
    pub(crate) fn match_streams(&mut self, mut track_of: impl FnMut(u32) -> Option<Arc<str>>) {
        // A repair stream is bound after the stream it repairs, and matched with it.
        let ssrcs = &mut self.ssrcs;
        self.unmatched.retain(|info| {
            if ssrcs.contains_key(&info.ssrc) {
                return false;
            }
            let Some(track) = track_of(info.ssrc) else { return true };
            if let Some(rtx) = info.ssrc_rtx {
                ssrcs.insert(rtx, Arc::clone(&track));
            }
            ssrcs.insert(info.ssrc, track);
            false
        });
    }

    /// True when media of `ssrc` is decrypted here.
    pub(crate) fn is_ours(&self, ssrc: u32) -> bool {
        self.srtp.is_some() && self.ssrcs.contains_key(&ssrc)
    }

    /// Decrypts a datagram of one of the streams the relay receives itself.
    pub(crate) fn open(&mut self, datagram: &[u8]) -> Opened {
        let Some(srtp) = &mut self.srtp else { return Opened::NotOurs };
        // RTP (RFC 7983: first byte 128..=191), not RTCP, which stays with the peer connection.
        if datagram.len() < 12 || !(128..=191).contains(&datagram[0]) || is_rtcp(datagram) {
            return Opened::NotOurs;
        }
        let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
        let Some(track) = self.ssrcs.get(&ssrc) else { return Opened::NotOurs };
        let Ok(header) = rtc::rtp::Header::unmarshal(&mut &datagram[..]) else { return Opened::NotOurs };
        let plain = match srtp.decrypt_rtp_with_header(datagram, &header) {
            Ok(plain) => plain,
            Err(Error::SrtpSsrcDuplicated(..)) => return Opened::Dropped,
            Err(_) => {
                self.doubt = Some(Arc::clone(track));
                return Opened::Unopened;
            }
        };
        match rtc::rtp::Packet::unmarshal(&mut plain.freeze()) {
            Ok(packet) => {
                self.packets += 1;
                self.bytes += packet.payload.len() as u64;
                Opened::Media(Arc::clone(track), packet)
            }
            Err(_) => Opened::Dropped,
        }
    }

    /// A media packet through the receiver's interceptors, on its way to the room.
    pub(crate) fn received(&mut self, now: Instant, packet: rtc::rtp::Packet) -> Option<rtc::rtp::Packet> {
        self.pass(now, ChainPacket::Rtp(packet));
        let mut out = None;
        while let Some(passed) = self.chain.poll_read() {
            if let ChainPacket::Rtp(packet) = passed.message.packet {
                out = Some(packet);
            }
        }
        out
    }

    /// The publisher's sender reports, for the receiver reports' timing (LSR, DLSR).
    pub(crate) fn sender_reports(&mut self, now: Instant, packets: &[Box<dyn rtc::rtcp::Packet>]) {
        let reports: Vec<Box<dyn rtc::rtcp::Packet>> = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
            .map(|report| Box::new(report.clone()) as Box<dyn rtc::rtcp::Packet>)
            .collect();
        if reports.is_empty() {
            return;
        }
        self.pass(now, ChainPacket::Rtcp(reports));
        while self.chain.poll_read().is_some() {}
    }

    fn pass(&mut self, now: Instant, packet: ChainPacket) {
        let message = AttributedPacket::new(packet);
        let tagged = TaggedPacket { now, transport: TransportContext::default(), message };
        if let Err(error) = self.chain.handle_read(tagged) {
            tracing::trace!(%error, "receiving interceptors refused a packet");
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let _ = self.chain.handle_timeout(now);
    }

    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        self.chain.poll_timeout()
    }

    /// The RTCP the chain wrote (NACK, RR, transport-wide feedback), to
    /// send: one compound packet each, as written.
    pub(crate) fn rtcp(&mut self) -> Vec<Vec<Box<dyn rtc::rtcp::Packet>>> {
        let mut out = Vec::new();
        while let Some(written) = self.chain.poll_write() {
            if let ChainPacket::Rtcp(packets) = written.message.packet
                && !packets.is_empty()
            {
                out.push(packets);
            }
        }
        out
    }
}
