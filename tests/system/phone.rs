//! The hotline's SIP side against what a real network sends besides good
//! calls: garbage, floods, wrong credentials, calls that never send media,
//! re-INVITEs and BYE races. A raw SIP client written here (text over UDP
//! and TCP) plays the peer; baresip plays the good caller in the browser
//! tests (tests/browser/phone.test.mjs).

use std::net::SocketAddr;
use std::time::Duration;

use signaling::phone::{PhoneConfig, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::{TestApp, spawn_with, test_config};

/// A port free for both UDP and TCP on 127.0.0.1 (a moment ago).
fn free_sip_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn phone_config(port: u16) -> PhoneConfig {
    PhoneConfig {
        enabled: true,
        sip_listen: SocketAddr::from(([127, 0, 0, 1], port)),
        peers: vec!["127.0.0.1".into()],
        media_timeout_secs: 2,
        prompts_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts").into(),
        routes: vec![Route {
            number: "zh-land".into(),
            language: "zh".into(),
            topic: "land".into(),
            region: signaling::demo::DEMO_REGION_ID.into(),
        }],
        ..PhoneConfig::default()
    }
}

/// The server with the phone gateway, and a Chinese-speaking lawyer online
/// who never answers: callers wait, ringing (with nobody online they would
/// be told so and let go at once).
async fn start(phone: PhoneConfig) -> (TestApp, SocketAddr, crate::live::Client) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), true);
    let sip = phone.sip_listen;
    config.phone = phone;
    let app = spawn_with(config, data_dir).await;
    let mut lawyer = crate::live::lawyer(&app, "demo-lawyer-2").await;
    lawyer.available().await;
    (app, sip, lawyer)
}

/// A SIP peer that writes its messages by hand.
struct Peer {
    socket: UdpSocket,
    server: SocketAddr,
    local: SocketAddr,
}

/// One response or request as read off the wire: its first line, headers, body.
#[derive(Debug, Clone)]
struct Message {
    first: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Message {
    fn parse(text: &str) -> Option<Message> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let first = lines.next()?.to_owned();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Message { first, headers, body: body.to_owned() })
    }

    fn status(&self) -> Option<u16> {
        self.first.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

/// One call's identity, as the peer keeps it.
#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    from_tag: String,
    to: String,
    number: String,
}

impl Peer {
    async fn new(server: SocketAddr) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        Peer { socket, server, local }
    }

    fn dialog(&self, number: &str) -> Dialog {
        Dialog {
            call_id: format!("{}@test", uuid::Uuid::new_v4()),
            from_tag: format!("{:x}", rand::random::<u32>()),
            to: format!("<sip:{number}@{}>", self.server),
            number: number.into(),
        }
    }

    fn request(&self, method: &str, dialog: &Dialog, cseq: u32, extra: &str, body: &str) -> String {
        let Peer { local, server, .. } = self;
        let branch = format!("z9hG4bK{:x}", rand::random::<u64>());
        let content =
            if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".into() };
        format!(
            "{method} sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:13812345678@127.0.0.1>;tag={tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:13812345678@{local}>\r\n{extra}{content}Content-Length: {len}\r\n\r\n{body}",
            number = dialog.number,
            tag = dialog.from_tag,
            to = dialog.to,
            call_id = dialog.call_id,
            len = body.len(),
        )
    }

    async fn send(&self, text: &str) {
        self.socket.send_to(text.as_bytes(), self.server).await.unwrap();
    }

    /// The next message within `wait` (provisional responses skipped when `final_only`).
    async fn next(&self, wait: Duration, final_only: bool) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let (n, _) =
                tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buffer)).await.ok()?.ok()?;
            let Some(message) = Message::parse(&String::from_utf8_lossy(&buffer[..n])) else { continue };
            if final_only && message.status().is_some_and(|s| s < 200) {
                continue;
            }
            return Some(message);
        }
    }

    /// Sends an INVITE and returns the final response.
    async fn invite(&self, dialog: &Dialog, extra: &str, body: &str) -> Message {
        self.send(&self.request("INVITE", dialog, 1, extra, body)).await;
        self.response(dialog).await
    }

    /// The next final response of `dialog`'s call (others' are passed over).
    async fn response(&self, dialog: &Dialog) -> Message {
        loop {
            let message = self.next(Duration::from_secs(10), true).await.expect("a final response");
            if message.status().is_some() && message.header("call-id") == Some(dialog.call_id.as_str()) {
                return message;
            }
        }
    }

    /// Acknowledges a 2xx, after which the dialog's To carries the server's tag.
    async fn ack(&self, dialog: &mut Dialog, ok: &Message) {
        dialog.to = ok.header("to").unwrap().to_owned();
        self.send(&self.request("ACK", dialog, 1, "", "")).await;
    }

    /// Answers a request the server sent (a BYE) with 200.
    async fn answer(&self, request: &Message) {
        let mut reply = String::from("SIP/2.0 200 OK\r\n");
        for name in ["via", "from", "to", "call-id", "cseq"] {
            if let Some(value) = request.header(name) {
                reply.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        reply.push_str("Content-Length: 0\r\n\r\n");
        self.send(&reply).await;
    }
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn waiting(app: &TestApp) -> usize {
    app.store().await.waiting_requests().await.unwrap().len()
}

/// Waits until `check` holds (or panics with `what` after `limit`).
async fn until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn garbage_is_dropped_and_the_gateway_keeps_answering() {
    let (app, sip, _lawyer) = start(phone_config(free_sip_port())).await;
    let peer = Peer::new(sip).await;
    // Datagrams that are not SIP, or SIP with lies in it.
    for junk in [
        &b"\x00\x01\x02 not sip at all"[..],
        b"INVITE sip:zh-land@127.0.0.1 SIP/2.0\r\n\r\n",
        b"INVITE sip:zh-land@127.0.0.1 SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\nx",
        b"OPTIONS nonsense SIP/9.9\r\nVia: ???\r\n\r\n",
        &[0xFFu8; 9_000][..],
    ] {
        peer.socket.send_to(junk, sip).await.unwrap();
    }
    // The same over TCP, each on a connection of its own.
    for junk in [
        &b"INVITE sip:zh-land@127.0.0.1 SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\n"[..],
        b"GARBAGE\r\n\r\n",
        &[b'A'; 70_000][..],
    ] {
        let mut stream = TcpStream::connect(sip).await.unwrap();
        let _ = stream.write_all(junk).await;
        let mut buffer = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buffer)).await;
    }
    // An INVITE whose offer cannot be read: 488, and nothing waits.
    let dialog = peer.dialog("zh-land");
    let refused = peer.invite(&dialog, "", "v=0\r\nthis is not sdp\r\n").await;
    assert_eq!(refused.status(), Some(488), "{refused:?}");
    // Still answering, over UDP and TCP.
    peer.send(&peer.request("OPTIONS", &peer.dialog("zh-land"), 1, "", "")).await;
    let ok = peer.next(Duration::from_secs(5), true).await.expect("OPTIONS answered");
    assert_eq!(ok.status(), Some(200));
    let mut stream = TcpStream::connect(sip).await.unwrap();
    let options =
        peer.request("OPTIONS", &peer.dialog("zh-land"), 1, "", "").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    stream.write_all(options.as_bytes()).await.unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("SIP/2.0 200"));
    assert_eq!(waiting(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn invite_floods_are_refused_and_calls_without_media_are_hung_up() {
    let mut phone = phone_config(free_sip_port());
    phone.invites_per_second = 5;
    phone.max_calls = 2;
    let (app, sip, _lawyer) = start(phone).await;
    let peer = Peer::new(sip).await;
    // Twenty INVITEs at once, none of which will ever send a packet of sound.
    let dialogs: Vec<Dialog> = (0..20).map(|_| peer.dialog("zh-land")).collect();
    for dialog in &dialogs {
        peer.send(&peer.request("INVITE", dialog, 1, "", &sdp(4_000))).await;
    }
    // Read everything for a while: acknowledge each 200 at once, answer the
    // server's BYEs (the calls send no media, so it hangs up on them).
    let mut finals: std::collections::HashMap<String, u16> = std::collections::HashMap::new();
    let mut byes = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        let Some(message) = peer.next(Duration::from_secs(1), true).await else {
            let answered = finals.values().filter(|s| **s == 200).count();
            if finals.len() == 20 && byes == answered {
                break;
            }
            continue;
        };
        let call = message.header("call-id").unwrap_or_default().to_owned();
        if message.first.starts_with("BYE ") {
            peer.answer(&message).await;
            byes += 1;
        } else if let Some(status) = message.status()
            && finals.insert(call.clone(), status).is_none()
            && status == 200
        {
            let mut dialog = dialogs.iter().find(|d| d.call_id == call).unwrap().clone();
            peer.ack(&mut dialog, &message).await;
        }
    }
    let count = |code: u16| finals.values().filter(|s| **s == code).count();
    assert_eq!(finals.len(), 20, "every INVITE got a final answer: {finals:?}");
    assert!(count(503) >= 15, "beyond 5 a second: 503 ({} of 20)", count(503));
    assert!((1..=2).contains(&count(200)), "at most max_calls answered ({})", count(200));
    assert_eq!(count(200) + count(486) + count(503), 20, "{finals:?}");
    assert_eq!(byes, count(200), "each silent call was hung up");
    until(Duration::from_secs(5), "no call left active", || async {
        metric(&app, "cloudlaw_phone_calls_active").await == 0.0
    })
    .await;
    until(Duration::from_secs(5), "nothing left waiting", || async { waiting(&app).await == 0 }).await;
    assert!(metric(&app, "cloudlaw_phone_calls_total{outcome=\"flood\"}").await >= 15.0);
    app.stop().await;
}

#[tokio::test]
async fn digest_credentials_are_required_when_configured() {
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::sip::headers::auth::{Algorithm, AuthQop};

    let mut phone = phone_config(free_sip_port());
    phone.username = Some("hotline".into());
    phone.password = Some("switch-secret-123".to_owned().into());
    let (app, sip, _lawyer) = start(phone).await;
    let peer = Peer::new(sip).await;
    let dialog = peer.dialog("zh-land");
    let challenge = peer.invite(&dialog, "", &sdp(4_002)).await;
    assert_eq!(challenge.status(), Some(401));
    let www = challenge.header("www-authenticate").expect("a challenge").to_owned();
    let nonce = www.split("nonce=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let uri = format!("sip:zh-land@{sip}");
    let authorization = |password: &str| {
        let qop = AuthQop::Auth { cnonce: "abc123".into(), nc: 1 };
        let response = compute_digest(
            "hotline",
            password,
            "cloudlaw",
            &nonce,
            &rsipstack::sip::Method::Invite,
            &uri,
            Algorithm::Md5,
            Some(&qop),
        );
        format!(
            "Authorization: Digest username=\"hotline\", realm=\"cloudlaw\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abc123\"\r\n"
        )
    };
    let wrong = peer.invite(&peer.dialog("zh-land"), &authorization("guess"), &sdp(4_002)).await;
    assert_eq!(wrong.status(), Some(403), "{wrong:?}");
    let mut dialog = peer.dialog("zh-land");
    let ok = peer.invite(&dialog, &authorization("switch-secret-123"), &sdp(4_002)).await;
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    peer.ack(&mut dialog, &ok).await;
    peer.send(&peer.request("BYE", &dialog, 2, "", "")).await;
    until(Duration::from_secs(5), "the call ended", || async {
        metric(&app, "cloudlaw_phone_calls_active").await == 0.0
    })
    .await;
    // A made-up nonce is challenged afresh, not taken.
    let forged = authorization("switch-secret-123").replace(&nonce, "00000000000000000000000000000000");
    let again = peer.invite(&peer.dialog("zh-land"), &forged, &sdp(4_002)).await;
    assert_eq!(again.status(), Some(401));
    app.stop().await;
}

#[tokio::test]
async fn re_invites_move_the_media_and_bye_races_leave_nothing_behind() {
    let (app, sip, _lawyer) = start(phone_config(free_sip_port())).await;
    let peer = Peer::new(sip).await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let moved = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut dialog = peer.dialog("zh-land");
    let ok = peer.invite(&dialog, "", &sdp(rtp.local_addr().unwrap().port())).await;
    assert_eq!(ok.status(), Some(200));
    assert!(ok.body.contains("m=audio "), "the answer carries our SDP: {}", ok.body);
    peer.ack(&mut dialog, &ok).await;
    let mut buffer = [0u8; 2048];
    // The hold audio (or prompt) arrives where the offer said.
    tokio::time::timeout(Duration::from_secs(5), rtp.recv_from(&mut buffer)).await.expect("RTP").unwrap();
    until(Duration::from_secs(5), "the caller waits", || async { waiting(&app).await == 1 }).await;
    // A re-INVITE moves the media to another port.
    peer.send(&peer.request("INVITE", &dialog, 2, "", &sdp(moved.local_addr().unwrap().port()))).await;
    let reinvite = peer.response(&dialog).await;
    assert_eq!(reinvite.status(), Some(200), "{reinvite:?}");
    peer.send(&peer.request("ACK", &dialog, 2, "", "")).await;
    tokio::time::timeout(Duration::from_secs(5), moved.recv_from(&mut buffer))
        .await
        .expect("RTP at the new port")
        .unwrap();
    // A re-INVITE without a body (a session refresh): we offer what is agreed.
    peer.send(&peer.request("INVITE", &dialog, 3, "", "")).await;
    let refresh = peer.response(&dialog).await;
    assert_eq!(refresh.status(), Some(200), "{refresh:?}");
    assert!(refresh.body.contains("m=audio ") && refresh.body.contains("PCMU/8000"), "{}", refresh.body);
    peer.send(&peer.request("ACK", &dialog, 3, "", "")).await;
    // Two BYEs at once: one ends the call, the other finds nothing.
    peer.send(&peer.request("BYE", &dialog, 4, "", "")).await;
    peer.send(&peer.request("BYE", &dialog, 5, "", "")).await;
    let mut statuses = Vec::new();
    while let Some(message) = peer.next(Duration::from_secs(3), true).await {
        if let Some(status) = message.status() {
            statuses.push(status);
        }
        if statuses.len() == 2 {
            break;
        }
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    until(Duration::from_secs(5), "the request is withdrawn", || async { waiting(&app).await == 0 }).await;
    until(Duration::from_secs(5), "no call left active", || async {
        metric(&app, "cloudlaw_phone_calls_active").await == 0.0
    })
    .await;
    // A BYE for a call that never was.
    let mut stranger = peer.dialog("zh-land");
    stranger.to.push_str(";tag=nosuchcall");
    peer.send(&peer.request("BYE", &stranger, 1, "", "")).await;
    let none = peer.response(&stranger).await;
    assert_eq!(none.status(), Some(481), "{none:?}");
    app.stop().await;
}

/// A consultation between the demo kiosk and demo-lawyer, ended.
async fn ended_consultation(app: &TestApp) -> String {
    use crate::live::{Client, kiosk_token, lawyer, request};
    use serde_json::json;

    let mut drolma = lawyer(app, "demo-lawyer").await;
    drolma.available().await;
    let mut kiosk = Client::connect(app, &kiosk_token(app).await).await;
    kiosk.send(request("bo", "land")).await;
    let offer = drolma.expect("consult.offer").await;
    drolma.send(json!({"type": "consult.accept", "request": offer["request"]})).await;
    let started = drolma.expect("consult.started").await;
    let consultation = started["consultation"].as_str().unwrap().to_owned();
    drolma.send(json!({"type": "consult.hangup", "consultation": consultation})).await;
    drolma.expect("consult.ended").await;
    consultation
}

/// Keeps `number` for `consultation`'s callback, once the live path's writer
/// has stored the consultation (it writes behind the notices).
async fn keep_number(app: &TestApp, consultation: &str, number: &str) {
    let store = app.store().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Err(error) = store.keep_callback_number(&consultation.into(), number).await {
        assert!(tokio::time::Instant::now() < deadline, "{error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /api/consultations/{id}/callback` as `username`: status, error code, body.
async fn call_back(app: &TestApp, username: &str, consultation: &str) -> (u16, String, serde_json::Value) {
    let url = app.url(&format!("/api/consultations/{consultation}/callback"));
    let response = app.http.post(url).bearer_auth(app.token(username).await).send().await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned(), body)
}

#[tokio::test]
async fn only_the_consultations_lawyer_calls_back_and_only_numbers_the_operator_allows() {
    let mut phone = phone_config(free_sip_port());
    // A trunk nobody answers on: the test is about who may dial, not the call.
    phone.outbound_trunk = Some("127.0.0.1:9".into());
    phone.outbound_prefixes = vec!["138".into()];
    let (app, _sip, _other) = start(phone).await;
    let consultation = ended_consultation(&app).await;
    // A kiosk's consultation keeps no number.
    assert_eq!(call_back(&app, "demo-lawyer", &consultation).await.1, "no_number");
    // Another lawyer, the coordinator: not theirs.
    assert_eq!(call_back(&app, "demo-lawyer-2", &consultation).await.0, 404);
    assert_eq!(call_back(&app, "demo-coordinator", &consultation).await.0, 403);
    // A number outside the allowed prefixes (an emergency number, say) is refused and audited.
    keep_number(&app, &consultation, "110").await;
    let (status, code, _) = call_back(&app, "demo-lawyer", &consultation).await;
    assert_eq!((status, code.as_str()), (403, "not_allowed"));
    keep_number(&app, &consultation, "13812345678").await;
    let (status, _, body) = call_back(&app, "demo-lawyer", &consultation).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["number"], "138****5678");
    let audit = app
        .http
        .get(app.url("/api/audit?limit=200"))
        .bearer_auth(app.token("demo-admin").await)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("phone.callback_refused") && audit.contains("\"phone.callback\""), "{audit}");
    assert!(!audit.contains("13812345678") && !audit.contains("\"110\""), "numbers are audited masked");
    app.stop().await;
}

#[tokio::test]
async fn calling_back_is_off_unless_a_trunk_is_configured() {
    let (app, _sip, _lawyer) = start(phone_config(free_sip_port())).await;
    let consultation = ended_consultation(&app).await;
    keep_number(&app, &consultation, "13812345678").await;
    let (status, code, _) = call_back(&app, "demo-lawyer", &consultation).await;
    assert_eq!((status, code.as_str()), (409, "callback_off"));
    app.stop().await;
}

#[tokio::test]
async fn a_caller_who_hangs_up_at_once_leaves_nothing_for_the_lines_next_caller() {
    let (app, sip, _lawyer) = start(phone_config(free_sip_port())).await;
    let peer = Peer::new(sip).await;
    // In and out before the request is even stored.
    let mut first = peer.dialog("zh-land");
    let ok = peer.invite(&first, "", &sdp(4_010)).await;
    assert_eq!(ok.status(), Some(200));
    peer.ack(&mut first, &ok).await;
    peer.send(&peer.request("BYE", &first, 2, "", "")).await;
    until(Duration::from_secs(5), "no call left active", || async {
        metric(&app, "cloudlaw_phone_calls_active").await == 0.0
    })
    .await;
    until(Duration::from_secs(5), "nothing left waiting", || async { waiting(&app).await == 0 }).await;
    // The next caller gets the same line, and waits for themself alone.
    let mut second = peer.dialog("zh-land");
    let ok = peer.invite(&second, "", &sdp(4_012)).await;
    assert_eq!(ok.status(), Some(200));
    peer.ack(&mut second, &ok).await;
    until(Duration::from_secs(5), "the second caller waits", || async { waiting(&app).await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(waiting(&app).await, 1, "one request: the first caller's is gone");
    let lines = app.store().await.phone_lines(&signaling::demo::DEMO_REGION_ID.into(), 0).await.unwrap();
    assert_eq!(lines.len(), 1, "the line was reused");
    peer.send(&peer.request("BYE", &second, 2, "", "")).await;
    until(Duration::from_secs(5), "nothing left waiting", || async { waiting(&app).await == 0 }).await;
    app.stop().await;
}

/// `POST /api/appointments` by phone, as `token`: status and body.
async fn book_by_phone(app: &TestApp, token: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = app.post("/api/appointments", token, body).await;
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

/// `POST /api/appointments/{id}/callback` as `username`: status and error code.
async fn call_appointment(app: &TestApp, username: &str, id: &str) -> (u16, String) {
    let token = app.token(username).await;
    let response = app.post(&format!("/api/appointments/{id}/callback"), &token, serde_json::json!({})).await;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn appointments_by_phone_are_booked_by_coordinators_for_allowed_numbers_held_once_and_masked() {
    use crate::schedule::{next_monday, rfc, shanghai};
    use serde_json::json;

    let mut phone = phone_config(free_sip_port());
    phone.outbound_trunk = Some("127.0.0.1:9".into());
    phone.outbound_prefixes = vec!["138".into(), "139".into()];
    let (app, _sip, _lawyer) = start(phone).await;
    let coordinator = app.token("demo-coordinator").await;
    let (kiosk, terminal_id) = app.enroll_demo_terminal().await;
    let start = rfc(shanghai(next_monday(), 10, 0));
    let by_phone = |number: &str| json!({"start": start, "language": "zh", "topic": "land", "phone": number, "region_id": "demo-garze"});

    // Refused, and nothing written.
    let mut with_terminal = by_phone("13812345678");
    with_terminal["terminal_id"] = terminal_id.clone().into();
    let mut no_region = by_phone("13812345678");
    no_region["region_id"] = serde_json::Value::Null;
    let cases = [
        (&coordinator, by_phone("110"), 400, "invalid_field"),
        (&coordinator, by_phone("138 1234"), 400, "invalid_field"),
        (&coordinator, with_terminal, 400, "invalid_field"),
        (&coordinator, no_region, 400, "invalid_field"),
        (&kiosk, by_phone("13812345678"), 403, "forbidden"),
    ];
    for (token, body, status, code) in cases {
        let (got, reply) = book_by_phone(&app, token, body.clone()).await;
        assert_eq!((got, reply["error"]["code"].as_str()), (status, Some(code)), "{body}: {reply}");
    }
    let store = app.store().await;
    let region = signaling::ids::RegionId::from("demo-garze");
    let all = || store.appointments(signaling::store::AppointmentScope::Region(&region), 0, i64::MAX);
    assert!(all().await.unwrap().is_empty());

    // Booked: on one of the region's phone lines, the number masked in what comes back.
    let (status, first) = book_by_phone(&app, &coordinator, by_phone("13812345678")).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!((first["channel"].as_str(), first["phone"].as_str()), (Some("phone"), Some("138****5678")));
    let line = store.terminal(&first["terminal_id"].as_str().unwrap().into()).await.unwrap().unwrap();
    assert_eq!(line.channel, "phone");
    // The same number cannot hold two appointments at once, though a lawyer is free...
    let (status, reply) = book_by_phone(&app, &coordinator, by_phone("13812345678")).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (409, Some("terminal_busy")), "{reply}");
    // ...another number can, on the same line.
    let (status, second) = book_by_phone(&app, &coordinator, by_phone("13987654321")).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["terminal_id"], first["terminal_id"]);
    assert_ne!(second["lawyer_id"], first["lawyer_id"]);

    // The lawyer sees it masked; the whole number is in no answer and in no audit entry.
    let lawyer = store.account(&first["lawyer_id"].as_str().unwrap().into()).await.unwrap().unwrap();
    let listed = app.get("/api/appointments", &app.token(&lawyer.username).await).await.text().await.unwrap();
    assert!(listed.contains("138****5678") && !listed.contains("13812345678"), "{listed}");
    let audit = app.get("/api/audit?limit=200", &app.token("demo-admin").await).await.text().await.unwrap();
    assert!(audit.contains("138****5678") && !audit.contains("13812345678"), "{audit}");

    // Calling: only its lawyer, only from a quarter of an hour before; a kiosk's has no number.
    let id = first["id"].as_str().unwrap();
    assert_eq!(call_appointment(&app, &lawyer.username, id).await, (409, "not_now".into()));
    let other = if lawyer.username == "demo-lawyer" { "demo-lawyer-2" } else { "demo-lawyer" };
    assert_eq!(call_appointment(&app, other, id).await.0, 404);
    assert_eq!(call_appointment(&app, "demo-coordinator", id).await.0, 403);
    let (status, at_kiosk) = book_by_phone(
        &app,
        &kiosk,
        json!({"start": rfc(shanghai(next_monday(), 11, 0)), "language": "zh", "topic": "land"}),
    )
    .await;
    assert_eq!(status, 201, "{at_kiosk}");
    let kiosk_lawyer = store.account(&at_kiosk["lawyer_id"].as_str().unwrap().into()).await.unwrap().unwrap();
    let (status, code) =
        call_appointment(&app, &kiosk_lawyer.username, at_kiosk["id"].as_str().unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "no_number"));

    // A hotline caller's follow-up, booked from the record in one step: by
    // phone, to the number kept from their call, with the same lawyer.
    let drolma = store.account_by_username("demo-lawyer").await.unwrap().unwrap();
    let hotline = store
        .create_consultation(&signaling::store::NewConsultation {
            terminal_id: line.id.clone(),
            region_id: region.clone(),
            lawyer_id: drolma.id.clone(),
            interpreter_id: None,
            topic: signaling::domain::Topic::Debt,
            language: "zh".into(),
            started_at: signaling::unix_now() - 600,
        })
        .await
        .unwrap();
    store.keep_callback_number(&hotline, "13955556666").await.unwrap();
    let follow_up = app
        .post(
            &format!("/api/consultations/{hotline}/follow-up"),
            &app.token("demo-lawyer").await,
            json!({"start": rfc(shanghai(next_monday(), 14, 0))}),
        )
        .await;
    assert_eq!(follow_up.status(), 201);
    let follow_up: serde_json::Value = follow_up.json().await.unwrap();
    assert_eq!(
        (follow_up["channel"].as_str(), follow_up["phone"].as_str()),
        (Some("phone"), Some("139****6666"))
    );
    assert_eq!(
        (follow_up["lawyer_id"].as_str(), follow_up["topic"].as_str()),
        (Some(drolma.id.as_str()), Some("debt"))
    );
    let kept = store.appointment(&follow_up["id"].as_str().unwrap().into()).await.unwrap().unwrap();
    assert_eq!(kept.phone_number.as_deref(), Some("13955556666"));

    // Numbers go once past phone.callback_days after the appointment; the channel stays.
    store.forget_callback_numbers(i64::MAX).await.unwrap();
    let kept = store.appointment(&id.into()).await.unwrap().unwrap();
    assert_eq!((kept.channel.as_str(), kept.phone_number), ("phone", None));
    app.stop().await;
}

#[tokio::test]
async fn booking_by_phone_is_refused_where_calling_is_off() {
    use crate::schedule::{next_monday, rfc, shanghai};

    let (app, _sip, _lawyer) = start(phone_config(free_sip_port())).await;
    let body = serde_json::json!({
        "start": rfc(shanghai(next_monday(), 10, 0)), "language": "zh", "topic": "land",
        "phone": "13812345678", "region_id": "demo-garze",
    });
    let (status, reply) = book_by_phone(&app, &app.token("demo-coordinator").await, body).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (409, Some("callback_off")), "{reply}");
    app.stop().await;
}

#[tokio::test]
async fn a_phone_appointment_is_kept_when_its_lawyer_calls_and_the_resident_answers() {
    use serde_json::json;

    // The peer is the trunk: the server's INVITE comes to it.
    let port = free_sip_port();
    let peer = Peer::new(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let mut phone = phone_config(port);
    phone.outbound_trunk = Some(peer.local.to_string());
    phone.outbound_prefixes = vec!["138".into()];
    let (app, _sip, mut lawyer) = start(phone).await;
    let store = app.store().await;
    // An appointment by phone with demo-lawyer-2 that started a minute ago
    // (booked in the store: the API books only ahead).
    let line = store.phone_lines(&signaling::demo::DEMO_REGION_ID.into(), 1).await.unwrap().remove(0);
    let lawyer_id = store.account_by_username("demo-lawyer-2").await.unwrap().unwrap().id;
    let now = signaling::unix_now();
    let booked = store
        .book(
            &signaling::store::Booking {
                terminal_id: line.id.clone(),
                region_id: signaling::demo::DEMO_REGION_ID.into(),
                lawyer_id: lawyer_id.clone(),
                language: "zh".into(),
                topic: "land".into(),
                starts_at: now - 60,
                ends_at: now + 1740,
                buffer_secs: 0,
                booked_by: "test".into(),
                day: (0, i64::MAX),
                daily_cap: 100,
                phone: Some("13812345678".into()),
            },
            &signaling::store::AuditEntry::system("appointment.booked"),
        )
        .await
        .unwrap();
    let signaling::store::BookOutcome::Booked(id) = booked else { panic!("{booked:?}") };
    // Its start makes no request at the line: nobody walks up to a phone line.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(waiting(&app).await, 0);

    assert_eq!(call_appointment(&app, "demo-lawyer-2", &id).await, (202, String::new()));
    // The second press while it rings is refused.
    assert_eq!(call_appointment(&app, "demo-lawyer-2", &id).await, (409, "in_progress".into()));
    let invite = loop {
        let message = peer.next(Duration::from_secs(10), false).await.expect("the server's INVITE");
        if message.first.starts_with("INVITE ") {
            break message;
        }
    };
    assert!(invite.first.starts_with("INVITE sip:13812345678@"), "{}", invite.first);
    // The resident answers, and talks (RTP to where the offer said).
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let their_port: u16 = invite
        .body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("an audio port in the offer");
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for name in ["via", "from", "call-id", "cseq"] {
        ok.push_str(&format!("{name}: {}\r\n", invite.header(name).unwrap()));
    }
    let answer = sdp(rtp.local_addr().unwrap().port());
    ok.push_str(&format!(
        "to: {};tag=resident\r\ncontact: <sip:13812345678@{}>\r\ncontent-type: application/sdp\r\ncontent-length: {}\r\n\r\n{answer}",
        invite.header("to").unwrap(),
        peer.local,
        answer.len(),
    ));
    peer.send(&ok).await;
    let talking = tokio::spawn(async move {
        let mut packet = vec![0u8; 172];
        packet[0] = 0x80;
        for seq in 0u16..1_500 {
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            packet[8..12].copy_from_slice(&0x5eed_u32.to_be_bytes());
            let _ = rtp.send_to(&packet, ("127.0.0.1", their_port)).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    // The appointment's lawyer is rung first, and taking it keeps the appointment.
    let offer = lawyer.expect("consult.offer").await;
    lawyer.send(json!({"type": "consult.accept", "request": offer["request"]})).await;
    let started = lawyer.expect("consult.started").await;
    let consultation = started["consultation"].as_str().unwrap().to_owned();
    until(Duration::from_secs(10), "the appointment is kept", || async {
        store.appointment(&id).await.unwrap().is_some_and(|a| a.status == "completed")
    })
    .await;
    let kept = store.appointment(&id).await.unwrap().unwrap();
    assert_eq!(kept.consultation_id.as_deref(), Some(consultation.as_str()));
    let audit = app.get("/api/audit?limit=200", &app.token("demo-admin").await).await.text().await.unwrap();
    assert!(audit.contains("\"phone.callback\"") && !audit.contains("13812345678"), "{audit}");

    // The lawyer hangs up; the resident hangs up during the rating prompt.
    lawyer.send(json!({"type": "consult.hangup", "consultation": consultation})).await;
    lawyer.expect("consult.ended").await;
    let dialog = Dialog {
        call_id: invite.header("call-id").unwrap().to_owned(),
        from_tag: "resident".into(),
        to: invite.header("from").unwrap().to_owned(),
        number: "cloudlaw".into(),
    };
    peer.send(&peer.request("BYE", &dialog, 1, "", "")).await;
    assert_eq!(peer.response(&dialog).await.status(), Some(200));
    talking.abort();
    until(Duration::from_secs(5), "no call left active", || async {
        metric(&app, "cloudlaw_phone_calls_active").await == 0.0
    })
    .await;
    app.stop().await;
}
