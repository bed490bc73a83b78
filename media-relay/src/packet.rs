//! Small pure parsers on the hot path: which peer a datagram belongs to, and
//! whether a VP8 packet starts a keyframe. Both read bytes and allocate nothing.
//! Also the interceptor that lets keyframe requests through to the application.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet as ChainPacket, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;

/// The STUN magic cookie (RFC 5389), at bytes 4..8 of every STUN message.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// True when the datagram looks like a STUN message (RFC 7983 demultiplexing:
/// first byte 0..=3, plus the magic cookie).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= 20 && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// True when the datagram looks like SRTCP: RTP version 2 (RFC 7983: first
/// byte 128..=191) and an RTCP packet type (RFC 5761: 192..=223, the range
/// no RTP payload type of a WebRTC session takes).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && (128..=191).contains(&datagram[0]) && (192..=223).contains(&datagram[1])
}

/// A STUN binding success response (RFC 5389: class success, method binding).
/// Coming out of a peer connection, it answers a check whose integrity the
/// ICE agent verified.
pub fn is_binding_success(datagram: &[u8]) -> bool {
    is_stun(datagram) && datagram[0] == 0x01 && datagram[1] == 0x01
}

/// The local ICE username fragment a STUN binding request is addressed to:
/// the part of its USERNAME attribute before the colon ("local:remote").
/// `None` for anything that is not a STUN message with a well-formed USERNAME.
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(20..20 + declared)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _remote) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        // Attributes are padded to a multiple of four bytes.
        let padded = (len + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

/// True when this VP8 RTP payload (RFC 7741) is the first packet of a keyframe.
pub fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else { return false };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&x) = payload.get(1) else { return false };
        at = 2;
        if x & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let Some(&pid) = payload.get(at) else { return false };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID / KEYIDX
        }
    }
    // The VP8 payload header: the P bit (inverse key frame flag) is bit 0.
    payload.get(at).is_some_and(|header| header & 0x01 == 0)
}

/// An interceptor that lets keyframe requests (PLI, FIR) and NACKs reach the
/// application: the relay passes a receiver's keyframe requests on to the
/// publisher through the room's limiter and answers the NACKs for what it
/// sent itself, and a synthetic publisher (tests, the load tool) answers
/// keyframe requests. Every other RTCP packet ends in the interceptor chain,
/// as usual.
///
/// In the relay's peer connections ([`KeyframeTap::relaying`]) it also lets
/// sender reports through, and notes the remote streams the peer connection
/// binds: the relay receives media with interceptors of its own, which need
/// both (see `reception::Reception`).
#[derive(Default)]
pub struct KeyframeTap {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
    streams: Option<Arc<RemoteStreams>>,
}

/// Remote streams bound (`true`) and unbound by a peer connection, in order,
/// until taken.
#[derive(Debug, Default)]
pub struct RemoteStreams(Mutex<Vec<(bool, StreamInfo)>>);

impl RemoteStreams {
    /// What was bound and unbound since the last take.
    pub fn take(&self) -> Vec<(bool, StreamInfo)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, bound: bool, info: &StreamInfo) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((bound, info.clone()));
    }
}

impl std::fmt::Debug for KeyframeTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyframeTap")
    }
}

impl KeyframeTap {
    /// Its place in an interceptor chain: after every standard interceptor,
    /// nearest the application.
    pub const SLOT: usize = 20_000;

    /// The relay's: sender reports delivered too, remote streams noted in `streams`.
    pub fn relaying(streams: Arc<RemoteStreams>) -> KeyframeTap {
        KeyframeTap { streams: Some(streams), ..KeyframeTap::default() }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let ChainPacket::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| {
                let p = p.as_any();
                p.is::<PictureLossIndication>()
                    || p.is::<FullIntraRequest>()
                    || p.is::<TransportLayerNack>()
                    || (self.streams.is_some() && p.is::<SenderReport>())
            })
        {
            msg.message.attributes.push(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for KeyframeTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(streams) = &self.streams {
            streams.push(true, info);
        }
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(streams) = &self.streams {
            streams.push(false, info);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn binding_request(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        // An attribute before USERNAME, to prove the walk skips it.
        attrs.extend_from_slice(&0x0025u16.to_be_bytes()); // USE-CANDIDATE, empty
        attrs.extend_from_slice(&0u16.to_be_bytes());
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn recognises_binding_success_responses() {
        let mut response = vec![0x01, 0x01, 0, 0];
        response.extend_from_slice(&MAGIC_COOKIE);
        response.extend_from_slice(&[7; 12]);
        assert!(is_binding_success(&response));
        response[1] = 0x11; // an error response
        assert!(!is_binding_success(&response));
        response[0] = 0x00;
        response[1] = 0x01; // a request
        assert!(!is_binding_success(&response));
        assert!(!is_binding_success(&[0x01, 0x01]));
    }

    #[test]
    fn tells_rtcp_from_rtp() {
        // A receiver report (PT 201), a sender report (200), a NACK (205).
        for pt in [200u8, 201, 205] {
            assert!(is_rtcp(&[0x81, pt, 0, 7, 1, 2, 3, 4]), "{pt}");
        }
        // RTP: VP8 (96) and Opus (111), with the marker bit (+128) too.
        for pt in [96u8, 111, 96 + 128, 111 + 128] {
            assert!(!is_rtcp(&[0x80, pt, 0, 1, 0, 0, 0, 0]), "{pt}");
        }
        assert!(!is_rtcp(&[0x81, 200, 0]), "too short");
        assert!(!is_rtcp(&[0x16, 254, 253, 0, 0, 0, 0, 0]), "DTLS");
    }

    #[test]
    fn finds_the_local_ufrag() {
        assert_eq!(stun_local_ufrag(&binding_request("relayufrag:browser")), Some("relayufrag"));
        assert_eq!(stun_local_ufrag(&binding_request("abc:d")), Some("abc"));
    }

    #[test]
    fn refuses_what_is_not_a_well_formed_binding() {
        assert_eq!(stun_local_ufrag(&binding_request("nocolon")), None);
        assert_eq!(stun_local_ufrag(&binding_request(":remote")), None);
        let mut truncated = binding_request("a:b");
        truncated.truncate(26);
        assert_eq!(stun_local_ufrag(&truncated), None);
        // RTP (first byte 0x80) and DTLS (20..=63) are not STUN.
        let mut rtp = binding_request("a:b");
        rtp[0] = 0x80;
        assert_eq!(stun_local_ufrag(&rtp), None);
        assert!(!is_stun(&[22; 40]));
    }

    #[test]
    fn recognises_vp8_keyframes() {
        // S=1, PID=0, no extension; payload header P=0.
        assert!(vp8_starts_keyframe(&[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        // Same with P=1: an interframe.
        assert!(!vp8_starts_keyframe(&[0x10, 0x01]));
        // Not the start of a partition.
        assert!(!vp8_starts_keyframe(&[0x00, 0x00]));
        // Extended: X=1, I=1 with a 15-bit PictureID, then the payload header.
        assert!(vp8_starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x01]));
        // Extended with I, L, T: 7-bit PictureID, TL0PICIDX, TID byte.
        assert!(vp8_starts_keyframe(&[0x90, 0xE0, 0x05, 0x01, 0x20, 0x00]));
        assert!(!vp8_starts_keyframe(&[]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80]));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = stun_local_ufrag(&bytes);
            let _ = vp8_starts_keyframe(&bytes);
        }

        #[test]
        fn any_ufrag_round_trips(local in "[A-Za-z0-9+/]{1,32}", remote in "[A-Za-z0-9+/]{1,32}") {
            let msg = binding_request(&format!("{local}:{remote}"));
            prop_assert_eq!(stun_local_ufrag(&msg), Some(local.as_str()));
        }
    }
}
