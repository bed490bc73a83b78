//! The phone side's session descriptions (RFC 3264 offer/answer, plain RTP):
//! what a SIP peer offers, which codec we take, and the answer we send. The
//! parsing is the `rtc` crate's SDP parser; only the choice is ours.

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use rtc::sdp::description::session::SessionDescription;

/// A phone-side codec. Opus on the phone leg runs at 8 kHz inside (the room
/// is mixed at the telephone's rate) and 48 kHz on the wire, as RFC 7587 has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
    Opus,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// RTP clock ticks per 20 ms frame.
    pub fn ticks_per_frame(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 160,
            Codec::Opus => 960,
        }
    }
}

/// What we agreed with the peer for the call's audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    pub codec: Codec,
    pub payload_type: u8,
    /// RFC 4733 telephone-events, when the peer offered them.
    pub dtmf_payload_type: Option<u8>,
    /// Where the peer wants its RTP (its connection address and port).
    pub remote: SocketAddr,
    /// `a=sendonly` / `inactive` from the peer: it is holding the call.
    pub on_hold: bool,
    /// The direction our answer states (RFC 3264 6.1: the mirror of the offer's).
    pub direction: &'static str,
}

/// Why an offer cannot be taken (answered with 488 Not Acceptable Here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the session description cannot be read: {0}")]
    Malformed(String),
    #[error("no audio stream over plain RTP (RTP/AVP)")]
    NoAudio,
    #[error("none of the offered codecs is PCMU, PCMA or Opus")]
    NoCodec,
    #[error("no usable connection address")]
    NoAddress,
}

/// The largest session description read.
pub const MAX_SDP_BYTES: usize = 16 * 1024;

/// Picks the peer's first offered codec that we speak (its preference order).
pub fn take_offer(sdp: &str) -> Result<Agreed, OfferError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(OfferError::Malformed("too long".into()));
    }
    let mut reader = Cursor::new(sdp.as_bytes());
    let session =
        SessionDescription::unmarshal(&mut reader).map_err(|e| OfferError::Malformed(e.to_string()))?;
    let audio = session
        .media_descriptions
        .iter()
        .find(|m| {
            m.media_name.media == "audio"
                && m.media_name.port.value > 0
                && m.media_name.protos.join("/") == "RTP/AVP"
        })
        .ok_or(OfferError::NoAudio)?;
    // rtpmap names by payload type; static types 0 and 8 need none.
    let rtpmap = |pt: &str| {
        audio.attributes.iter().filter(|a| a.key == "rtpmap").filter_map(|a| a.value.as_deref()).find_map(
            |v| {
                let (number, name) = v.split_once(' ')?;
                (number == pt).then(|| name.to_ascii_lowercase())
            },
        )
    };
    let mut chosen = None;
    let mut dtmf = None;
    for format in &audio.media_name.formats {
        let Ok(pt) = format.parse::<u8>() else { continue };
        let name = rtpmap(format);
        let codec = match (pt, name.as_deref()) {
            (0, None) => Some(Codec::Pcmu),
            (8, None) => Some(Codec::Pcma),
            (_, Some(n)) if n.starts_with("pcmu/8000") => Some(Codec::Pcmu),
            (_, Some(n)) if n.starts_with("pcma/8000") => Some(Codec::Pcma),
            (_, Some(n)) if n.starts_with("opus/48000") => Some(Codec::Opus),
            (_, Some(n)) if n.starts_with("telephone-event/8000") && dtmf.is_none() => {
                dtmf = Some(pt);
                None
            }
            _ => None,
        };
        if let Some(codec) = codec
            && chosen.is_none()
            && pt < 128
        {
            chosen = Some((codec, pt));
        }
    }
    let (codec, payload_type) = chosen.ok_or(OfferError::NoCodec)?;
    let connection = audio.connection_information.as_ref().or(session.connection_information.as_ref());
    let address = connection
        .and_then(|c| c.address.as_ref())
        .and_then(|a| a.address.parse::<IpAddr>().ok())
        .ok_or(OfferError::NoAddress)?;
    let port = u16::try_from(audio.media_name.port.value).map_err(|_| OfferError::NoAddress)?;
    let said = |key: &str| audio.attributes.iter().chain(&session.attributes).any(|a| a.key == key);
    let direction = if said("inactive") || address.is_unspecified() {
        "inactive"
    } else if said("sendonly") {
        "recvonly"
    } else if said("recvonly") {
        "sendonly"
    } else {
        "sendrecv"
    };
    let on_hold = matches!(direction, "inactive" | "recvonly");
    let remote = SocketAddr::new(address, port);
    Ok(Agreed { codec, payload_type, dtmf_payload_type: dtmf, remote, on_hold, direction })
}

/// Our answer: the one codec taken, telephone-events if offered, our RTP address.
pub fn answer(agreed: &Agreed, local: SocketAddr, session_id: u64, version: u64) -> String {
    let Agreed { codec, payload_type, dtmf_payload_type, direction, .. } = agreed;
    offer_or_answer(*codec, *payload_type, *dtmf_payload_type, direction, local, session_id, version)
}

/// Our own offer, for a call we place (a callback): PCMU, PCMA, Opus and telephone-events.
pub fn offer(local: SocketAddr, session_id: u64) -> String {
    let ip = if local.is_ipv4() { "IP4" } else { "IP6" };
    let address = local.ip();
    let port = local.port();
    format!(
        "v=0\r\no=cloudlaw {session_id} 1 IN {ip} {address}\r\ns=cloudlaw\r\nc=IN {ip} {address}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 111 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

fn offer_or_answer(
    codec: Codec,
    pt: u8,
    dtmf: Option<u8>,
    direction: &str,
    local: SocketAddr,
    session_id: u64,
    version: u64,
) -> String {
    let ip = if local.is_ipv4() { "IP4" } else { "IP6" };
    let address = local.ip();
    let port = local.port();
    let mut formats = pt.to_string();
    let mut attributes = match codec {
        Codec::Pcmu => format!("a=rtpmap:{pt} PCMU/8000\r\n"),
        Codec::Pcma => format!("a=rtpmap:{pt} PCMA/8000\r\n"),
        Codec::Opus => format!("a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} useinbandfec=1\r\n"),
    };
    if let Some(dtmf) = dtmf {
        formats.push_str(&format!(" {dtmf}"));
        attributes.push_str(&format!("a=rtpmap:{dtmf} telephone-event/8000\r\na=fmtp:{dtmf} 0-15\r\n"));
    }
    format!(
        "v=0\r\no=cloudlaw {session_id} {version} IN {ip} {address}\r\ns=cloudlaw\r\nc=IN {ip} {address}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {formats}\r\n{attributes}a=ptime:20\r\na={direction}\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 10000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

    #[test]
    fn takes_the_peers_first_codec_and_its_telephone_events() {
        let agreed = take_offer(BARESIP).unwrap();
        assert_eq!(agreed.codec, Codec::Pcmu);
        assert_eq!(agreed.payload_type, 0);
        assert_eq!(agreed.dtmf_payload_type, Some(101));
        assert_eq!(agreed.remote, "127.0.0.1:10000".parse::<SocketAddr>().unwrap());
        assert!(!agreed.on_hold);
        let answer = answer(&agreed, "127.0.0.1:20000".parse().unwrap(), 7, 1);
        assert!(answer.contains("m=audio 20000 RTP/AVP 0 101\r\n"), "{answer}");
        // The answer reads back as what was agreed.
        let again = take_offer(&answer).unwrap();
        assert_eq!((again.codec, again.dtmf_payload_type), (Codec::Pcmu, Some(101)));
    }

    #[test]
    fn static_payload_types_need_no_rtpmap_and_opus_is_taken_when_first() {
        let alaw_only = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 8\r\nc=IN IP4 127.0.0.2\r\n";
        let agreed = take_offer(alaw_only).unwrap();
        assert_eq!((agreed.codec, agreed.dtmf_payload_type), (Codec::Pcma, None));
        assert_eq!(
            agreed.remote,
            "127.0.0.2:4000".parse::<SocketAddr>().unwrap(),
            "the media line's address wins"
        );
        let opus = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 96 0\r\na=rtpmap:96 opus/48000/2\r\na=sendonly\r\n";
        let agreed = take_offer(opus).unwrap();
        assert_eq!((agreed.codec, agreed.payload_type), (Codec::Opus, 96));
        assert!(agreed.on_hold);
        let held = answer(&agreed, "127.0.0.1:5000".parse::<SocketAddr>().unwrap(), 1, 2);
        assert!(held.contains("a=recvonly\r\n"), "held: we only listen: {held}");
    }

    #[test]
    fn refuses_what_it_cannot_take() {
        assert!(matches!(take_offer("not sdp at all"), Err(OfferError::Malformed(_))));
        let video = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=video 4000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(take_offer(video), Err(OfferError::NoAudio));
        let g729 = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        assert_eq!(take_offer(g729), Err(OfferError::NoCodec));
        let srtp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/SAVP 0\r\n";
        assert_eq!(take_offer(srtp), Err(OfferError::NoAudio));
        let no_address = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(take_offer(no_address), Err(OfferError::NoAddress));
        assert!(take_offer(&"a".repeat(MAX_SDP_BYTES + 1)).is_err());
    }
}
