//! What the relay does as a receiver of one participant's media: decrypt it
//! (once the participant is connected, with its own copy of the peer
//! connection's remote SRTP context, from [`crate::keys::KeyTap`]) and keep
//! the receiver's side of RTP going, outside the `rtc` pipeline.
//!
//! The peer connection's own pipeline moves each packet through a dozen
//! stages; on the way in, the relay needs only the three interceptors a
//! receiver runs: the NACK generator (ask for what was lost), receiver
//! reports (RFC 3550 6.4.2) and transport-wide congestion-control feedback.
//! [`Reception`] runs exactly those, as the crate has them, calling each in
//! turn (not through the crate's chain, which moves a packet through queues
//! of its own at every stage); the peer connection's registry leaves them
//! out. Every inbound packet passes through them, whether the relay
//! decrypted it or the peer connection did (the first packet of each
//! stream, which binds it there; everything before the keys are known or
//! after a fallback). What they write (NACK, RR, TWCC feedback) goes out
//! through the peer connection, which keeps SRTCP. The relay keeps its own
//! replay window per stream ([`Window`]), as its copy of the SRTP context
//! has none.

use std::sync::Arc;
use std::time::Instant;

use foldhash::{HashMap, HashMapExt};
use rtc::interceptor::{
    AttributedPacket, Interceptor, NackGeneratorBuilder, NackGeneratorInterceptor, Packet as ChainPacket,
    ReceiverReportBuilder, ReceiverReportInterceptor, StreamInfo, TaggedPacket, TwccReceiverBuilder,
    TwccReceiverInterceptor,
};
use rtc::rtcp::sender_report::SenderReport;
use rtc::shared::TransportContext;
use rtc::shared::marshal::Unmarshal;
use rtc::srtp::context::Context;

use crate::packet::{RemoteStreams, is_rtcp};

/// One participant's media, as the relay receives it.
pub(crate) struct Reception {
    /// The receiver's interceptors, in the order the crate's chain has them.
    stages: Stages,
    /// Remote streams as the peer connection binds them (noted by its `KeyframeTap`).
    streams: Arc<RemoteStreams>,
    /// Bound streams not yet matched to a published track.
    unmatched: Vec<StreamInfo>,
    /// The SSRCs (each stream's, and its RTX stream's) that the relay decrypts
    /// itself: the id of the track they belong to, and the replay window.
    ssrcs: HashMap<u32, Stream>,
    /// The copy of the remote SRTP context, once the keys are known (made
    /// without a replay window: [`Window`] is the relay's, per stream).
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
        Reception {
            stages: Stages {
                nack: NackGeneratorBuilder::new().build(),
                twcc: TwccReceiverBuilder::new().build(),
                reports: ReceiverReportBuilder::new().build(),
            },
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
                self.stages.each(|stage| stage.bind_remote_stream(&info));
                self.unmatched.push(info);
            } else {
                self.stages.each(|stage| stage.unbind_remote_stream(&info));
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
                ssrcs.insert(rtx, Stream { track: Arc::clone(&track), window: Window::default() });
            }
            ssrcs.insert(info.ssrc, Stream { track, window: Window::default() });
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
        let Some(Stream { track, window }) = self.ssrcs.get_mut(&ssrc) else { return Opened::NotOurs };
        let Ok(header) = rtc::rtp::Header::unmarshal(&mut &datagram[..]) else { return Opened::NotOurs };
        if !window.fresh(header.sequence_number) {
            return Opened::Dropped;
        }
        let Ok(plain) = srtp.decrypt_rtp_with_header(datagram, &header) else {
            self.doubt = Some(Arc::clone(track));
            return Opened::Unopened;
        };
        // Only an authentic packet moves the window.
        window.accept(header.sequence_number);
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
        match self.stages.read(now, ChainPacket::Rtp(packet))? {
            ChainPacket::Rtp(packet) => Some(packet),
            _ => None,
        }
    }

    /// The publisher's sender reports, for the receiver reports' timing (LSR, DLSR).
    pub(crate) fn sender_reports(&mut self, now: Instant, packets: &[Box<dyn rtc::rtcp::Packet>]) {
        let reports: Vec<Box<dyn rtc::rtcp::Packet>> = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
            .map(|report| Box::new(report.clone()) as Box<dyn rtc::rtcp::Packet>)
            .collect();
        if !reports.is_empty() {
            // Read, and ends here, as in the crate's chain without a forwarding mark.
            self.stages.read(now, ChainPacket::Rtcp(reports));
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.stages.each(|stage| {
            let _ = stage.handle_timeout(now);
        });
    }

    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        let mut earliest = None;
        self.stages.each(|stage| earliest = earliest.into_iter().chain(stage.poll_timeout()).min());
        earliest
    }

    /// The RTCP the interceptors wrote (NACK, RR, transport-wide feedback),
    /// to send: one compound packet each, as written.
    pub(crate) fn rtcp(&mut self) -> Vec<Vec<Box<dyn rtc::rtcp::Packet>>> {
        let mut out = Vec::new();
        self.stages.each(|stage| {
            while let Some(written) = stage.poll_write() {
                if let ChainPacket::Rtcp(packets) = written.message.packet
                    && !packets.is_empty()
                {
                    out.push(packets);
                }
            }
        });
        out
    }
}

/// A stream the relay decrypts itself.
struct Stream {
    track: Arc<str>,
    window: Window,
}

/// The replay window of one stream (RFC 3711 3.3.2): the latest sequence
/// number accepted and which of the [`Window::SIZE`] before it were, on
/// sequence numbers taken modulo 2^16 (as the crate's own window takes them).
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    /// `None` until the first packet.
    latest: Option<u16>,
    /// Bit `d`: `latest - d` was accepted.
    seen: u64,
}

impl Window {
    const SIZE: u16 = 64;

    /// How far `seq` lies behind the latest (negative: ahead of it).
    fn behind(latest: u16, seq: u16) -> i32 {
        i32::from(latest.wrapping_sub(seq) as i16)
    }

    /// False for a packet already accepted, or too old to tell.
    fn fresh(&self, seq: u16) -> bool {
        let Some(latest) = self.latest else { return true };
        let behind = Window::behind(latest, seq);
        behind < 0 || (behind < i32::from(Window::SIZE) && self.seen & (1 << behind) == 0)
    }

    fn accept(&mut self, seq: u16) {
        let Some(latest) = self.latest else {
            *self = Window { latest: Some(seq), seen: 1 };
            return;
        };
        let behind = Window::behind(latest, seq);
        if behind < 0 {
            let ahead = behind.unsigned_abs();
            self.seen = if ahead >= u32::from(Window::SIZE) { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.latest = Some(seq);
        } else if behind < i32::from(Window::SIZE) {
            self.seen |= 1 << behind;
        }
    }
}

/// The three interceptors a receiver runs. Each passes what it reads
/// straight through (noting it) and writes only RTCP of its own, so a
/// packet is handed to each in turn and taken back.
struct Stages {
    nack: NackGeneratorInterceptor,
    twcc: TwccReceiverInterceptor,
    reports: ReceiverReportInterceptor,
}

impl Stages {
    fn each(&mut self, mut f: impl FnMut(&mut dyn Interceptor)) {
        f(&mut self.nack);
        f(&mut self.twcc);
        f(&mut self.reports);
    }

    /// `packet` read by each stage in turn: what the last passes on.
    fn read(&mut self, now: Instant, packet: ChainPacket) -> Option<ChainPacket> {
        let message = AttributedPacket::new(packet);
        let mut tagged = TaggedPacket { now, transport: TransportContext::default(), message };
        for stage in [&mut self.nack as &mut dyn Interceptor, &mut self.twcc, &mut self.reports] {
            if let Err(error) = stage.handle_read(tagged) {
                tracing::trace!(%error, "a receiving interceptor refused a packet");
                return None;
            }
            tagged = stage.poll_read()?;
        }
        Some(tagged.message.packet)
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    fn accepted(window: &mut Window, seq: u16) -> bool {
        let fresh = window.fresh(seq);
        if fresh {
            window.accept(seq);
        }
        fresh
    }

    #[test]
    fn a_window_takes_each_sequence_number_once_and_nothing_too_old() {
        let mut window = Window::default();
        assert!(accepted(&mut window, 1000));
        assert!(!accepted(&mut window, 1000), "a replay");
        assert!(accepted(&mut window, 1002));
        assert!(accepted(&mut window, 1001), "late, inside the window");
        assert!(!accepted(&mut window, 1001));
        assert!(accepted(&mut window, 1002 + 63 - 2), "ahead");
        assert!(accepted(&mut window, 1002 + 63), "ahead by 63: 1002 is the oldest kept");
        assert!(!accepted(&mut window, 1002), "seen, at the window's edge");
        assert!(!accepted(&mut window, 1001), "too old to tell");
        assert!(accepted(&mut window, 1003), "not seen, at the window's edge");
    }

    #[test]
    fn a_window_wraps_with_the_sequence_numbers() {
        let mut window = Window::default();
        for seq in [65_530u16, 65_535, 0, 3, 65_533] {
            assert!(accepted(&mut window, seq), "{seq}");
        }
        for seq in [65_530u16, 65_535, 0, 3, 65_533] {
            assert!(!accepted(&mut window, seq), "{seq} again");
        }
        assert!(accepted(&mut window, 1));
        // A jump far ahead forgets everything before it.
        assert!(accepted(&mut window, 20_000));
        assert!(!accepted(&mut window, 3), "too old now");
        assert!(accepted(&mut window, 19_999));
    }
}
