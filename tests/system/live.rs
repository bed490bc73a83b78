//! The live path with real WebSocket clients against the real server: a
//! resident asks at a terminal, lawyers are rung, accept or decline, and the
//! consultation starts, drops, resumes and ends; the coordinator watches.
//!
//! Timeouts are shortened (`fast_config`) so that rings, offer timeouts and
//! grace periods pass in seconds.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Db, TestApp, on_db, spawn_with, test_config};
use signaling::config::Config;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for a message it expects.
const WAIT: Duration = Duration::from_secs(10);

fn fast_config(dir: &std::path::Path) -> Config {
    let mut config = test_config(dir, true);
    config.live.offer_timeout_secs = 2;
    config.live.ring_after_secs = [1, 2, 3];
    config.live.grace_secs = 2;
    config.live.decline_cooldown_secs = 60;
    config.live.wrap_up_secs = 60;
    config
}

async fn spawn_fast() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_with(fast_config(dir.path()), dir).await
}

/// A WebSocket client that keeps what it received. Expectations take the
/// first matching message, wherever it is among those not yet taken, so a
/// test does not depend on the order of unrelated pushes.
pub(crate) struct Client {
    socket: Socket,
    seen: Vec<Value>,
    unread: std::collections::VecDeque<Value>,
}

impl Client {
    pub(crate) async fn connect(app: &TestApp, token: &str) -> Client {
        Client::connect_to(app.addr, token).await
    }

    /// Connects to the server at `addr` (any node).
    pub(crate) async fn connect_to(addr: std::net::SocketAddr, token: &str) -> Client {
        let (socket, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}")).await.expect("connect");
        let mut client = Client { socket, seen: Vec::new(), unread: Default::default() };
        client.expect("welcome").await;
        client
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.socket.send(Message::text(message.to_string())).await.unwrap();
    }

    async fn next(&mut self, within: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(within, self.socket.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    self.seen.push(value.clone());
                    return Some(value);
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The first message of type `kind` that satisfies `check`.
    pub(crate) async fn expect_where(&mut self, kind: &str, check: impl Fn(&Value) -> bool) -> Value {
        let found = |m: &Value| m["type"] == kind && check(m);
        if let Some(i) = self.unread.iter().position(found) {
            return self.unread.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(message) = self.next(left).await else {
                panic!("no {kind} within {WAIT:?}; received {:#?}", self.seen)
            };
            if found(&message) {
                return message;
            }
            assert_ne!(message["type"], "error", "unexpected error while waiting for {kind}: {message}");
            self.unread.push_back(message);
        }
    }

    pub(crate) async fn expect(&mut self, kind: &str) -> Value {
        self.expect_where(kind, |_| true).await
    }

    pub(crate) async fn expect_error(&mut self, code: &str) -> Value {
        if let Some(i) = self.unread.iter().position(|m| m["type"] == "error") {
            let message = self.unread.remove(i).unwrap();
            assert_eq!(message["code"], code, "{message}");
            return message;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message =
                self.next(left).await.unwrap_or_else(|| panic!("no {code} error; {:#?}", self.seen));
            if message["type"] == "error" {
                assert_eq!(message["code"], code, "{message}");
                return message;
            }
            self.unread.push_back(message);
        }
    }

    /// Asserts that no message of type `kind` arrives within `within`.
    pub(crate) async fn quiet(&mut self, kind: &str, within: Duration) {
        assert!(!self.unread.iter().any(|m| m["type"] == kind), "unexpected {kind}: {:#?}", self.unread);
        let deadline = tokio::time::Instant::now() + within;
        while let Some(message) =
            self.next(deadline.saturating_duration_since(tokio::time::Instant::now())).await
        {
            assert_ne!(message["type"], kind, "unexpected {kind}: {message}");
            self.unread.push_back(message);
        }
    }

    /// Waits until the server closes this connection.
    pub(crate) async fn closed(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.next(deadline.saturating_duration_since(tokio::time::Instant::now())).await.is_some() {}
        assert!(tokio::time::Instant::now() < deadline, "the connection stayed open for {within:?}");
    }

    /// Goes on duty and waits until the server says so.
    pub(crate) async fn available(&mut self) {
        self.send(json!({"type": "presence.set", "state": "available"})).await;
        // Rung at once when someone waits: that counts too.
        self.expect_where("presence", |m| {
            (m["state"] == "available" || m["state"] == "ringing") && m["on_duty"] == true
        })
        .await;
    }
}

pub(crate) async fn lawyer(app: &TestApp, username: &str) -> Client {
    let token = app.token(username).await;
    Client::connect(app, &token).await
}

/// The demo terminal's device token.
pub(crate) async fn kiosk_token(app: &TestApp) -> String {
    app.enroll_demo_terminal().await.0
}

/// Registers and enrolls another terminal in the demo region; returns its device token.
pub(crate) async fn another_kiosk(app: &TestApp, admin: &str, n: usize) -> String {
    let response = app
        .post(
            "/api/terminals",
            admin,
            json!({"name": format!("Kiosk {n}"), "township": "Xinduqiao", "region_id": "demo-garze", "languages": ["bo", "zh"]}),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    let code = body["enrollment_code"].as_str().unwrap();
    let response =
        app.http.post(app.url("/api/terminals/enroll")).json(&json!({"code": code})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["device_token"].as_str().unwrap().to_owned()
}

pub(crate) fn request(language: &str, topic: &str) -> Value {
    json!({"type": "consult.request", "language": language, "topic": topic})
}

#[tokio::test]
async fn a_resident_is_matched_talks_and_rates_and_the_lawyer_writes_the_record() {
    let app = spawn_fast().await;
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    drolma.available().await;
    let kiosk_token = kiosk_token(&app).await;
    let mut kiosk = Client::connect(&app, &kiosk_token).await;
    kiosk.send(request("bo", "land")).await;
    let queued = kiosk.expect("consult.queued").await;
    assert_eq!(queued["position"], 1);
    assert_eq!(queued["nobody_on_duty"], false);
    assert!(queued["estimated_wait_secs"].as_u64().is_some());
    let request_id = queued["request"].as_str().unwrap().to_owned();

    let offer = drolma.expect("consult.offer").await;
    assert_eq!(offer["request"], request_id.as_str());
    assert_eq!(offer["language"], "bo");
    assert_eq!(offer["topic"], "land");
    assert_eq!(offer["region_id"], "demo-garze");
    assert!(offer["region_name"].as_str().unwrap().contains("Garz"));
    assert_eq!(offer["role"], "lawyer");
    assert_eq!(offer["three_way"], false);
    drolma.expect_where("presence", |m| m["state"] == "ringing").await;
    drolma.send(json!({"type": "consult.accept", "request": request_id})).await;

    let started = drolma.expect("consult.started").await;
    let kiosk_started = kiosk.expect("consult.started").await;
    let consultation = started["consultation"].as_str().unwrap().to_owned();
    assert_eq!(kiosk_started["consultation"], consultation.as_str());
    assert_eq!(started["role"], "lawyer");
    assert_eq!(kiosk_started["role"], "resident");
    assert_eq!(kiosk_started["peers"][0]["role"], "lawyer");
    assert!(kiosk_started["peers"][0]["name"].as_str().unwrap().contains("Drolma"));
    // Peers name the id their media streams carry: the terminal's, the lawyer's account.
    let me: Value = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(&kiosk_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(started["peers"][0]["participant"], me["terminal"]["id"]);
    assert_eq!(started["peers"][0]["role"], "resident");
    assert!(kiosk_started["peers"][0]["participant"].as_str().is_some_and(|id| !id.is_empty()));
    assert_ne!(started["token"], kiosk_started["token"], "each participant has its own room token");
    drolma.expect_where("presence", |m| m["state"] == "in_consultation").await;

    // The room tokens open the relay's room over this same WebSocket.
    for (client, started) in [(&mut kiosk, &kiosk_started), (&mut drolma, &started)] {
        client.send(json!({"type": "rtc.join", "token": started["token"]})).await;
        let offer = client.expect("rtc.offer").await;
        assert_eq!(offer["room"], consultation.as_str());
        assert!(offer["sdp"].as_str().unwrap().starts_with("v=0"));
    }

    // A rating during the call is refused; the resident hangs up.
    kiosk.send(json!({"type": "consult.rate", "consultation": consultation, "rating": 5})).await;
    kiosk.expect_error("conflict").await;
    kiosk.send(json!({"type": "consult.hangup", "consultation": consultation})).await;
    let ended = drolma.expect("consult.ended").await;
    assert_eq!(ended["reason"], "hung_up");
    assert!(ended["wrap_up_until"].as_i64().is_some());
    kiosk.expect_where("consult.ended", |m| m["requeued"] == false).await;
    kiosk.expect_where("rtc.closed", |m| m["room"] == consultation.as_str()).await;
    drolma
        .expect_where("presence", |m| m["state"] == "wrap_up" && m["consultation"] == consultation.as_str())
        .await;

    // The resident rates once; the lawyer writes the record, which ends the wrap-up.
    kiosk.send(json!({"type": "consult.rate", "consultation": consultation, "rating": 5})).await;
    kiosk.expect_where("consult.rated", |m| m["rating"] == 5).await;
    kiosk.send(json!({"type": "consult.rate", "consultation": consultation, "rating": 1})).await;
    kiosk.expect_error("conflict").await;
    // The room closed with the call: its tokens do not reopen it.
    kiosk.send(json!({"type": "rtc.join", "token": kiosk_started["token"]})).await;
    assert!(kiosk.expect_error("unauthorized").await["message"].as_str().unwrap().contains("ended"));
    let lawyer_token = app.token("demo-lawyer").await;
    let response = app
        .http
        .put(app.url(&format!("/api/consultations/{consultation}/record")))
        .bearer_auth(&lawyer_token)
        .json(&json!({"summary": "Grazing boundary; advised mediation at the township.", "outcome": "referred_mediation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drolma.expect_where("presence", |m| m["state"] == "available").await;

    // The end of the wrap-up is on disk before the lawyer is told they are available.
    let mine: Value =
        app.get(&format!("/api/consultations/{consultation}"), &lawyer_token).await.json().await.unwrap();
    assert_eq!(mine["status"], "ended");
    assert_eq!(mine["rating"], 5);
    assert_eq!(mine["outcome"], "referred_mediation");
    assert!(mine["summary"].as_str().unwrap().contains("Grazing"));
    let theirs: Value =
        app.get(&format!("/api/consultations/{consultation}"), &kiosk_token).await.json().await.unwrap();
    assert_eq!(theirs["rating"], 5);
    assert!(theirs.get("summary").is_none(), "a terminal sees a summary of its own, not the record");

    // What was persisted: the request matched, the offer accepted.
    let store = app.store().await;
    let waiting = store.waiting_requests().await.unwrap();
    assert!(waiting.is_empty());
    assert!(store.open_consultations().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_decline_and_a_timeout_move_the_request_on_and_missed_offers_mean_a_break() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config(dir.path());
    config.live.max_missed = 1;
    let app = spawn_with(config, dir).await;
    let mut drolma = lawyer(&app, "demo-lawyer").await; // the region's team
    let mut wang = lawyer(&app, "demo-lawyer-2").await; // not in the team
    wang.available().await;
    drolma.available().await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    kiosk.send(request("zh", "family")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();

    // Ring 0 is the region's team, even though Wang has been idle longer.
    drolma.expect_where("consult.offer", |m| m["request"] == request_id.as_str()).await;
    drolma.send(json!({"type": "consult.decline", "request": request_id})).await;
    drolma.expect_where("presence", |m| m["state"] == "available").await;
    // Ring 1 (after a second): anyone with the language and topic.
    wang.expect_where("consult.offer", |m| m["request"] == request_id.as_str()).await;
    // Wang lets it ring out: withdrawn, and one missed offer is a break here.
    wang.expect_where("consult.offer_withdrawn", |m| m["request"] == request_id.as_str()).await;
    wang.expect_where("presence", |m| m["state"] == "break").await;
    drolma.quiet("consult.offer", Duration::from_millis(1500)).await;

    // Too late to accept now.
    wang.send(json!({"type": "consult.accept", "request": request_id})).await;
    wang.expect_error("not_found").await;
    // Back from the break, Wang is rung again... after the decline cooldown, so
    // nobody is rung for now; the resident still waits, first in line.
    wang.available().await;
    kiosk.send(json!({"type": "ping"})).await;
    kiosk.expect("pong").await;

    let store = app.store().await;
    let waiting = store.waiting_requests().await.unwrap();
    assert_eq!(waiting.len(), 1, "the request still waits");
    drop(store);
    // The offers' outcomes are on record.
    let outcomes = offer_outcomes(&app, &request_id).await;
    assert_eq!(outcomes, vec!["declined".to_owned(), "timed_out".to_owned()]);
}

async fn offer_outcomes(app: &TestApp, request: &str) -> Vec<String> {
    let db = Db::open(app.data_dir.path()).await;
    // Each ring starts a second or more after the one before.
    on_db!(db, |pool| {
        sqlx::query_scalar(
            "SELECT outcome FROM consultation_offers WHERE request_id = $1 ORDER BY offered_at",
        )
        .bind(request)
        .fetch_all(pool)
        .await
        .unwrap()
    })
}

/// A server with the default rings (30, 60 and 90 s) and a long offer timeout:
/// whatever happens within a test's seconds happens because a ring was
/// empty or someone answered, never because the clock widened it.
async fn spawn_default_rings() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config(dir.path());
    config.live.ring_after_secs = [30, 60, 90];
    config.live.offer_timeout_secs = 30;
    spawn_with(config, dir).await
}

/// The server's own request-to-ring histogram: how many requests were rung,
/// and how many of them within a second (its buckets are 0.1 ms × 1.5ᵏ; the
/// last at or under 1 s is 0.75 s).
async fn rung_within_a_second(app: &TestApp) -> (u64, u64) {
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let bucket = |line: &str| -> Option<(f64, u64)> {
        let rest = line.strip_prefix("cloudlaw_live_request_to_ring_seconds_bucket{le=\"")?;
        let (le, count) = rest.split_once("\"} ")?;
        Some((le.parse().unwrap_or(f64::INFINITY), count.trim().parse().ok()?))
    };
    let buckets: Vec<(f64, u64)> = text.lines().filter_map(bucket).collect();
    let total = buckets.last().map(|b| b.1).unwrap_or(0);
    let within = buckets.iter().filter(|(le, _)| *le <= 1.0).map(|b| b.1).max().unwrap_or(0);
    (total, within)
}

#[tokio::test]
async fn a_three_way_starts_only_when_both_have_accepted_whoever_is_first() {
    for lawyer_first in [true, false] {
        let app = spawn_default_rings().await;
        let mut wang = lawyer(&app, "demo-lawyer-2").await; // Chinese only
        let mut tsering = lawyer(&app, "demo-interpreter").await; // Tibetan and Chinese
        // The interpreter has a second tab open.
        let mut tsering_tab = lawyer(&app, "demo-interpreter").await;
        wang.available().await;
        tsering.available().await;
        let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
        let asked = std::time::Instant::now();
        kiosk.send(request("bo", "labour")).await;
        let queued = kiosk.expect("consult.queued").await;
        assert_eq!(queued["nobody_on_duty"], false, "an interpreter can make it work");
        let request_id = queued["request"].as_str().unwrap().to_owned();
        // No lawyer speaks Tibetan: rings 0 to 2 are empty and the pair is rung at once.
        let offer = wang.expect("consult.offer").await;
        assert!(asked.elapsed() < Duration::from_secs(1), "rung after {:?}", asked.elapsed());
        assert_eq!((offer["three_way"].clone(), offer["role"].clone()), (json!(true), json!("lawyer")));
        let offer = tsering.expect("consult.offer").await;
        assert_eq!(offer["role"], "interpreter");

        let (first, second) =
            if lawyer_first { (&mut wang, &mut tsering) } else { (&mut tsering, &mut wang) };
        first.send(json!({"type": "consult.accept", "request": request_id, "id": "a1"})).await;
        let accepted = first.expect("consult.accepted").await;
        assert_eq!(accepted["id"], "a1");
        assert_eq!(accepted["waiting_for"], if lawyer_first { "interpreter" } else { "lawyer" });
        // Nothing starts with one of the two.
        first.quiet("consult.started", Duration::from_millis(700)).await;
        kiosk.quiet("consult.started", Duration::from_millis(10)).await;
        second.send(json!({"type": "consult.accept", "request": request_id, "id": "a2"})).await;
        let accepted = second.expect("consult.accepted").await;
        assert_eq!(accepted["id"], "a2");
        assert!(accepted.get("waiting_for").is_none(), "{accepted}");
        let mut roles = Vec::new();
        for client in [&mut wang, &mut tsering, &mut kiosk] {
            let started = client.expect("consult.started").await;
            assert_eq!(started["peers"].as_array().unwrap().len(), 2, "{started}");
            assert_eq!(started["elsewhere"], false, "{started}");
            roles.push(started["role"].as_str().unwrap().to_owned());
        }
        assert_eq!(roles, ["lawyer", "interpreter", "resident"]);
        // The tab that did not accept hears that the call is elsewhere.
        let other = tsering_tab.expect("consult.started").await;
        assert_eq!(other["elsewhere"], true);
        // The server's own measure: rung within a second.
        let (rung, within) = rung_within_a_second(&app).await;
        assert_eq!((rung, within), (1, 1), "request to ring, by the server's histogram");
    }
}

#[tokio::test]
async fn a_three_way_partner_who_declines_releases_the_other_unmarked() {
    let app = spawn_default_rings().await;
    let mut wang = lawyer(&app, "demo-lawyer-2").await;
    let mut tsering = lawyer(&app, "demo-interpreter").await;
    wang.available().await;
    tsering.available().await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    kiosk.send(request("bo", "labour")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    wang.expect("consult.offer").await;
    tsering.expect("consult.offer").await;
    wang.send(json!({"type": "consult.accept", "request": request_id})).await;
    wang.expect_where("consult.accepted", |m| m["waiting_for"] == "interpreter").await;
    tsering.send(json!({"type": "consult.decline", "request": request_id, "id": "d1"})).await;
    assert_eq!(tsering.expect("consult.declined").await["id"], "d1");
    // The lawyer is freed, available again; the offer is withdrawn, not missed.
    wang.expect_where("consult.offer_withdrawn", |m| m["request"] == request_id.as_str()).await;
    wang.expect_where("presence", |m| m["state"] == "available").await;
    // The interpreter declined: nobody else can make it work for now; the resident waits.
    kiosk.quiet("consult.started", Duration::from_millis(500)).await;
    let outcomes = offer_outcomes(&app, &request_id).await;
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes.contains(&"declined".to_owned()) && outcomes.contains(&"withdrawn".to_owned()),
        "{outcomes:?}"
    );
    // A late accept, with an id, gets an error that echoes it.
    wang.send(json!({"type": "consult.accept", "request": request_id, "id": "late-1"})).await;
    assert_eq!(wang.expect_error("not_found").await["id"], "late-1");
    // An id longer than 64 bytes is refused.
    let long = "x".repeat(65);
    wang.send(json!({"type": "consult.accept", "request": request_id, "id": long})).await;
    wang.expect_error("invalid").await;
}

#[tokio::test]
async fn a_decline_rings_the_next_available_lawyer_at_once() {
    let app = spawn_default_rings().await;
    let mut drolma = lawyer(&app, "demo-lawyer").await; // the region's team
    let mut wang = lawyer(&app, "demo-lawyer-2").await; // not in the team
    wang.available().await;
    drolma.available().await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    kiosk.send(request("zh", "family")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    drolma.expect_where("consult.offer", |m| m["request"] == request_id.as_str()).await;
    let declined = std::time::Instant::now();
    drolma.send(json!({"type": "consult.decline", "request": request_id})).await;
    // Ring 0 has nobody else: Wang, available all along, is rung at once, not after 30 s.
    wang.expect_where("consult.offer", |m| m["request"] == request_id.as_str()).await;
    assert!(declined.elapsed() < Duration::from_secs(1), "rung {:?} after the decline", declined.elapsed());
    let (rung, within) = rung_within_a_second(&app).await;
    assert_eq!(rung, within, "every request rung within a second, by the server's histogram");
    assert!(rung >= 1);
}

#[tokio::test]
async fn a_lawyer_who_goes_offline_in_the_wrap_up_no_longer_counts_as_on_duty() {
    let app = spawn_default_rings().await;
    let mut drolma = lawyer(&app, "demo-lawyer").await; // speaks Tibetan
    drolma.available().await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    kiosk.send(request("bo", "family")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    drolma.expect("consult.offer").await;
    drolma.send(json!({"type": "consult.accept", "request": request_id})).await;
    let consultation = drolma.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    kiosk.expect("consult.started").await;
    kiosk.send(json!({"type": "consult.hangup", "consultation": consultation})).await;
    drolma.expect_where("presence", |m| m["state"] == "wrap_up").await;
    // In the wrap-up, on duty: a Tibetan request is told someone could take it.
    let mut other =
        Client::connect(&app, &another_kiosk(&app, &app.token("demo-admin").await, 2).await).await;
    other.send(request("bo", "land")).await;
    let queued = other.expect("consult.queued").await;
    assert_eq!(queued["nobody_on_duty"], false);
    // The lawyer goes offline during the wrap-up: nobody left who speaks Tibetan.
    drolma.send(json!({"type": "presence.set", "state": "offline"})).await;
    other.expect_where("consult.queued", |m| m["nobody_on_duty"] == true).await;
}

#[tokio::test]
async fn a_cancelled_request_withdraws_the_offer_and_nobody_on_duty_is_said_at_once() {
    let app = spawn_fast().await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    kiosk.send(request("bo", "debt")).await;
    let queued = kiosk.expect("consult.queued").await;
    assert_eq!(queued["nobody_on_duty"], true, "nobody is on line: say so at once");
    assert!(queued.get("estimated_wait_secs").is_none());
    let request_id = queued["request"].as_str().unwrap().to_owned();
    // Asking twice is a conflict; the first request is unchanged.
    kiosk.send(request("bo", "debt")).await;
    kiosk.expect_error("conflict").await;

    // Someone comes on duty: the waiting resident is served.
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    drolma.available().await;
    drolma.expect_where("consult.offer", |m| m["request"] == request_id.as_str()).await;
    kiosk.expect_where("consult.queued", |m| m["nobody_on_duty"] == false).await;
    kiosk.send(json!({"type": "consult.cancel", "request": request_id})).await;
    kiosk.expect("consult.cancelled").await;
    drolma.expect_where("consult.offer_withdrawn", |m| m["request"] == request_id.as_str()).await;
    drolma.send(json!({"type": "consult.accept", "request": request_id})).await;
    drolma.expect_error("not_found").await;
    // The kiosk heard of the cancel once it was on disk.
    assert!(app.store().await.waiting_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_dropped_resident_rejoins_the_same_room_or_goes_back_to_the_front() {
    let app = spawn_fast().await;
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    drolma.available().await;
    let token = kiosk_token(&app).await;
    let mut kiosk = Client::connect(&app, &token).await;
    kiosk.send(request("bo", "family")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    drolma.expect("consult.offer").await;
    drolma.send(json!({"type": "consult.accept", "request": request_id})).await;
    let consultation = drolma.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    kiosk.expect("consult.started").await;

    // The kiosk's network drops and comes back within the grace period.
    drop(kiosk);
    drolma.expect_where("consult.peer", |m| m["role"] == "resident" && m["present"] == false).await;
    let mut kiosk = Client::connect(&app, &token).await;
    let resumed = kiosk.expect("consult.started").await;
    assert_eq!(resumed["consultation"], consultation.as_str());
    assert_eq!(resumed["room"], consultation.as_str(), "the same room");
    assert_eq!(resumed["resumed"], true);
    drolma.expect_where("consult.peer", |m| m["role"] == "resident" && m["present"] == true).await;
    kiosk.send(json!({"type": "rtc.join", "token": resumed["token"]})).await;
    kiosk.expect("rtc.offer").await;

    // Now it stays away past the grace period: the call ends, the resident is requeued.
    drop(kiosk);
    let ended = drolma.expect("consult.ended").await;
    assert_eq!(ended["reason"], "resident_lost");
    assert_eq!(ended["requeued"], true);
    let mut kiosk = Client::connect(&app, &token).await;
    let queued = kiosk.expect("consult.queued").await;
    assert_eq!(queued["position"], 1);
    let requeued = queued["request"].as_str().unwrap().to_owned();
    assert_ne!(requeued, request_id);
    // The same lawyer is offered the returning resident first once the wrap-up ends.
    drolma.available().await;
    drolma.expect_where("consult.offer", |m| m["request"] == requeued.as_str()).await;
}

#[tokio::test]
async fn a_lost_lawyer_puts_the_resident_back_in_front() {
    let app = spawn_fast().await;
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    drolma.available().await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    kiosk.send(request("zh", "criminal")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    drolma.expect("consult.offer").await;
    drolma.send(json!({"type": "consult.accept", "request": request_id})).await;
    kiosk.expect("consult.started").await;
    drop(drolma);
    kiosk.expect_where("consult.peer", |m| m["role"] == "lawyer" && m["present"] == false).await;
    let ended = kiosk.expect("consult.ended").await;
    assert_eq!(ended["reason"], "lawyer_lost");
    assert_eq!(ended["requeued"], true);
    kiosk.expect_where("consult.queued", |m| m["position"] == 1).await;
    // Another lawyer takes it.
    let mut wang = lawyer(&app, "demo-lawyer-2").await;
    wang.available().await;
    wang.expect("consult.offer").await;
}

#[tokio::test]
async fn after_a_restart_waiting_residents_and_open_calls_resume() {
    let dir = tempfile::tempdir().unwrap();
    let config = fast_config(dir.path());
    let app = spawn_with(config.clone(), dir).await;
    let kiosk_token = kiosk_token(&app).await;
    let admin = app.token("demo-admin").await;
    let second_token = another_kiosk(&app, &admin, 2).await;
    let lawyer_token = app.token("demo-lawyer").await;

    // One resident waits (nobody on duty), another is in a call.
    let mut waiting = Client::connect(&app, &kiosk_token).await;
    waiting.send(request("bo", "land")).await;
    let request_id = waiting.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    let mut wang = lawyer(&app, "demo-lawyer-2").await;
    wang.available().await;
    let mut calling = Client::connect(&app, &second_token).await;
    calling.send(request("zh", "labour")).await;
    let call_request = calling.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    wang.expect_where("consult.offer", |m| m["request"] == call_request.as_str()).await;
    wang.send(json!({"type": "consult.accept", "request": call_request})).await;
    let consultation = wang.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    calling.expect("consult.started").await;
    let wang_token = app.token("demo-lawyer-2").await;
    drop((waiting, wang, calling));
    let dir = app.stop().await;

    let app = spawn_with(config, dir).await;
    // The waiting resident is still waiting, with the same request.
    let mut waiting = Client::connect(&app, &kiosk_token).await;
    let queued = waiting.expect("consult.queued").await;
    assert_eq!(queued["request"], request_id.as_str());
    // The call resumes in the same consultation for both.
    let mut wang = Client::connect(&app, &wang_token).await;
    let resumed = wang.expect("consult.started").await;
    assert_eq!(resumed["consultation"], consultation.as_str());
    assert_eq!(resumed["resumed"], true);
    let mut calling = Client::connect(&app, &second_token).await;
    assert_eq!(calling.expect("consult.started").await["consultation"], consultation.as_str());
    // A lawyer who comes on duty is rung for the one who waited through the restart.
    let mut drolma = Client::connect(&app, &lawyer_token).await;
    drolma.available().await;
    drolma.expect_where("consult.offer", |m| m["request"] == request_id.as_str()).await;
    // Nothing is both open and ended.
    let store = app.store().await;
    let open = store.open_consultations().await.unwrap();
    assert_eq!(open.len(), 1);
    assert!(open[0].ended_at.is_none());
}

#[tokio::test]
async fn many_simultaneous_requests_never_give_a_lawyer_two_consultations() {
    let app = spawn_fast().await;
    let admin = app.token("demo-admin").await;
    let mut lawyers = Vec::new();
    for name in ["demo-lawyer", "demo-lawyer-2"] {
        let mut client = lawyer(&app, name).await;
        client.available().await;
        lawyers.push(client);
    }
    let mut kiosks = Vec::new();
    for n in 0..8 {
        let token = another_kiosk(&app, &admin, n).await;
        kiosks.push(Client::connect(&app, &token).await);
    }
    let sends = kiosks.iter_mut().map(|k| k.send(request("zh", "debt")));
    futures_util::future::join_all(sends).await;
    // Each lawyer accepts every offer it gets, as fast as it can, for a while.
    let mut started = Vec::new();
    for client in &mut lawyers {
        let mut mine = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        while let Some(message) =
            client.next(deadline.saturating_duration_since(tokio::time::Instant::now())).await
        {
            match message["type"].as_str() {
                Some("consult.offer") => {
                    client.send(json!({"type": "consult.accept", "request": message["request"]})).await;
                }
                Some("consult.started") => mine.push(message["consultation"].as_str().unwrap().to_owned()),
                _ => {}
            }
        }
        assert_eq!(mine.len(), 1, "one consultation per lawyer: {:#?}", client.seen);
        started.extend(mine);
    }
    assert_ne!(started[0], started[1]);
    // The starts reach the database through the ordered writer, just after the messages.
    let store = app.store().await;
    let mut counts = (0, 0);
    for _ in 0..100 {
        counts =
            (store.waiting_requests().await.unwrap().len(), store.open_consultations().await.unwrap().len());
        if counts == (6, 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counts, (6, 2), "the rest still wait, none lost; two consultations open");
}

#[tokio::test]
async fn bad_and_foreign_messages_get_typed_errors_and_change_nothing() {
    let app = spawn_fast().await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    let mut coordinator = lawyer(&app, "demo-coordinator").await;
    kiosk.send(json!({"type": "presence.set", "state": "available"})).await;
    kiosk.expect_error("forbidden").await;
    drolma.send(request("bo", "land")).await;
    drolma.expect_error("forbidden").await;
    coordinator.send(json!({"type": "consult.accept", "request": "x"})).await;
    coordinator.expect_error("forbidden").await;
    drolma.send(json!({"type": "live.subscribe"})).await;
    drolma.expect_error("forbidden").await;
    kiosk.send(request("fr", "land")).await;
    kiosk.expect_error("invalid").await;
    kiosk.send(request("bo", "taxes")).await;
    kiosk.expect_error("malformed").await;
    kiosk.send(json!({"type": "presence.set", "state": "sleeping"})).await;
    kiosk.expect_error("malformed").await;
    kiosk.send(json!({"type": "consult.cancel", "request": "not-mine"})).await;
    kiosk.expect_error("not_found").await;
    kiosk.send(json!({"type": "consult.rate", "consultation": "nope", "rating": 6})).await;
    kiosk.expect_error("invalid").await;
    kiosk.send(json!({"type": "consult.rate", "consultation": "nope", "rating": 4})).await;
    kiosk.expect_error("not_found").await;
    drolma.send(json!({"type": "consult.hangup", "consultation": "someone-elses"})).await;
    drolma.expect_error("not_found").await;
    drolma.send(json!({"type": "consult.decline", "request": "never-offered"})).await;
    drolma.expect_error("not_found").await;
    // The connections live on, and nothing was recorded.
    kiosk.send(json!({"type": "ping", "id": "still"})).await;
    assert_eq!(kiosk.expect("pong").await["id"], "still");
    assert!(app.store().await.waiting_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_coordinator_sees_the_queue_and_the_people_change_live() {
    let app = spawn_fast().await;
    let mut coordinator = lawyer(&app, "demo-coordinator").await;
    coordinator.send(json!({"type": "live.subscribe"})).await;
    let first = coordinator.expect("live.view").await;
    assert_eq!(first["queue"], json!([]));
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    kiosk.send(request("bo", "administrative")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    let view =
        coordinator.expect_where("live.view", |v| v["queue"].as_array().is_some_and(|q| q.len() == 1)).await;
    assert_eq!(view["queue"][0]["request"], request_id.as_str());
    assert_eq!(view["queue"][0]["region_id"], "demo-garze");
    assert_eq!(view["regions"][0]["waiting"], 1);
    drolma.available().await;
    drolma.expect("consult.offer").await;
    coordinator
        .expect_where("live.view", |v| {
            v["people"].as_array().is_some_and(|p| p.iter().any(|p| p["state"] == "ringing"))
        })
        .await;
    drolma.send(json!({"type": "consult.accept", "request": request_id})).await;
    let view = coordinator
        .expect_where("live.view", |v| v["consultations"].as_array().is_some_and(|c| c.len() == 1))
        .await;
    assert_eq!(view["queue"], json!([]));
    let consultation = &view["consultations"][0];
    assert_eq!(consultation["topic"], "administrative");
    assert!(consultation.get("summary").is_none(), "no content in the live view");
}

/// Books an appointment that has just started, straight in the database (booking
/// through the API needs notice; the API's rules are tested in schedule.rs).
async fn started_appointment(app: &TestApp, terminal: &str, lawyer: &str) -> String {
    let db = Db::open(app.data_dir.path()).await;
    let id = format!("appointment-{terminal}");
    let now = signaling::unix_now();
    on_db!(db, |pool| {
        let lawyer: String = sqlx::query_scalar("SELECT id FROM accounts WHERE username = $1")
            .bind(lawyer)
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO appointments (id, terminal_id, region_id, lawyer_id, language, topic, starts_at, ends_at, status, booked_by, created_at, updated_at)
             VALUES ($1, $2, 'demo-garze', $3, 'zh', 'labour', $4, $5, 'booked', 'test', $6, $7)",
        )
        .bind(&id)
        .bind(terminal)
        .bind(&lawyer)
        .bind(now - 5)
        .bind(now + 1800)
        .bind(now - 3600)
        .bind(now - 3600)
        .execute(pool)
        .await
        .unwrap();
    });
    id
}

async fn appointment_status(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/appointments/{id}"), token).await.json().await.unwrap()
}

/// The appointment once its status is `status` (it changes through the ordered
/// writer, just after the messages), or a failure naming the last one seen.
async fn appointment_becomes(app: &TestApp, token: &str, id: &str, status: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let appointment = appointment_status(app, token, id).await;
        if appointment["status"] == status {
            return appointment;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {status}: {appointment}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_appointment_becomes_a_consultation_with_its_lawyer_or_a_no_show() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config(dir.path());
    config.schedule.reminder_check_secs = 1;
    config.live.request_hold_secs = 2;
    let app = spawn_with(config, dir).await;
    let (kiosk_token, kiosk_id) = app.enroll_demo_terminal().await;
    // Wang (not in the region's team, idle longer) has the appointment; Drolma is also on duty.
    let mut wang = lawyer(&app, "demo-lawyer-2").await;
    wang.available().await;
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    drolma.available().await;
    let mut kiosk = Client::connect(&app, &kiosk_token).await;
    let appointment = started_appointment(&app, &kiosk_id, "demo-lawyer-2").await;

    kiosk.expect("appointment_started").await;
    wang.expect("appointment_started").await;
    let offer = wang.expect("consult.offer").await;
    assert_eq!(offer["topic"], "labour");
    drolma.quiet("consult.offer", Duration::from_millis(500)).await;
    wang.send(json!({"type": "consult.accept", "request": offer["request"]})).await;
    let consultation = kiosk.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    let wang_token = app.token("demo-lawyer-2").await;
    let status =
        appointment_becomes(&app, &wang_token, &appointment, "completed", Duration::from_millis(2500)).await;
    assert_eq!(status["consultation_id"], consultation.as_str());

    // A second terminal's appointment, and that terminal never comes: a no-show.
    let admin = app.token("demo-admin").await;
    let response = app
        .post(
            "/api/terminals",
            &admin,
            json!({"name": "Absent kiosk", "township": "Tagong", "region_id": "demo-garze", "languages": ["zh"]}),
        )
        .await;
    let absent: Value = response.json().await.unwrap();
    let absent_id = absent["terminal"]["id"].as_str().unwrap();
    let appointment = started_appointment(&app, absent_id, "demo-lawyer").await;
    drolma.expect("appointment_started").await;
    drolma.quiet("consult.offer", Duration::from_secs(1)).await;
    let drolma_token = app.token("demo-lawyer").await;
    appointment_becomes(&app, &drolma_token, &appointment, "no_show", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn an_appointment_that_starts_during_another_call_at_its_terminal_is_next_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config(dir.path());
    config.schedule.reminder_check_secs = 1;
    let app = spawn_with(config, dir).await;
    let (kiosk_token, kiosk_id) = app.enroll_demo_terminal().await;
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    drolma.available().await;
    let mut wang = lawyer(&app, "demo-lawyer-2").await;
    wang.available().await;
    let mut kiosk = Client::connect(&app, &kiosk_token).await;
    // Someone else is talking to Drolma at the terminal when Wang's appointment starts.
    kiosk.send(request("bo", "land")).await;
    let offer = drolma.expect("consult.offer").await;
    let first_request = offer["request"].clone();
    drolma.send(json!({"type": "consult.accept", "request": first_request})).await;
    let first = kiosk.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    let appointment = started_appointment(&app, &kiosk_id, "demo-lawyer-2").await;
    kiosk.expect("appointment_started").await;
    wang.expect("appointment_started").await;
    wang.quiet("consult.offer", Duration::from_millis(500)).await;
    let wang_token = app.token("demo-lawyer-2").await;
    assert_eq!(appointment_status(&app, &wang_token, &appointment).await["status"], "booked");

    // The call ends: the appointment's resident is next, at the front, for Wang.
    kiosk.send(json!({"type": "consult.hangup", "consultation": first})).await;
    kiosk.expect("consult.ended").await;
    // (The first request may have been told its place while Drolma's phone rang.)
    let queued = kiosk.expect_where("consult.queued", |m| m["request"] != first_request).await;
    assert_eq!(queued["position"], 1);
    let offer = wang.expect("consult.offer").await;
    assert_eq!(offer["request"], queued["request"]);
    assert_eq!(offer["topic"], "labour");
    wang.send(json!({"type": "consult.accept", "request": offer["request"]})).await;
    let second = kiosk.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    let status =
        appointment_becomes(&app, &wang_token, &appointment, "completed", Duration::from_millis(2500)).await;
    assert_eq!(status["consultation_id"], second.as_str());
}

#[tokio::test]
async fn coordinators_see_aggregates_of_their_regions_only() {
    let app = spawn_fast().await;
    let mut drolma = lawyer(&app, "demo-lawyer").await;
    drolma.available().await;
    let mut kiosk = Client::connect(&app, &kiosk_token(&app).await).await;
    // One consultation, rated 4; one request cancelled.
    kiosk.send(request("bo", "land")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    drolma.expect("consult.offer").await;
    drolma.send(json!({"type": "consult.accept", "request": request_id})).await;
    let consultation = kiosk.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    kiosk.send(json!({"type": "consult.hangup", "consultation": consultation})).await;
    kiosk.expect("consult.ended").await;
    kiosk.send(json!({"type": "consult.rate", "consultation": consultation, "rating": 4})).await;
    kiosk.expect("consult.rated").await;
    drolma.send(json!({"type": "presence.set", "state": "offline"})).await;
    kiosk.send(request("bo", "land")).await;
    let second = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    kiosk.send(json!({"type": "consult.cancel", "request": second})).await;
    kiosk.expect("consult.cancelled").await;

    use signaling::schedule::civil::{date_of, local_day_minute};
    let (today, _) =
        local_day_minute(&jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(), signaling::unix_now());
    let range = format!("from={}&to={}", date_of(today - 1), date_of(today + 2));
    let coordinator = app.token("demo-coordinator").await;
    let path = format!("/api/reports/consultations?{range}&period=month");
    let report: Value = app.get(&path, &coordinator).await.json().await.unwrap();
    let lines = report["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{report}");
    let line = &lines[0];
    assert_eq!(line["region_id"], "demo-garze");
    assert_eq!((line["requests"].as_u64(), line["consultations"].as_u64()), (Some(2), Some(1)));
    assert_eq!(line["abandonment_rate"], 0.5);
    assert_eq!(line["rating_avg"], 4.0);
    assert!(line["wait_p50_secs"].as_i64().is_some());
    assert!(line.get("summary").is_none() && line.get("lawyer_id").is_none(), "aggregates only");
    // The waits of the week and of the report, in the region and over all: the one match.
    let waits = report["waits"].as_array().unwrap();
    assert_eq!(waits.len(), 4, "{report}");
    assert!(waits.iter().all(|w| w["waits"] == 1 && w["wait_p50_secs"] == line["wait_p50_secs"]), "{report}");
    let scopes: Vec<_> =
        waits.iter().map(|w| (w["period_start"].is_null(), w["region_id"].is_null())).collect();
    for scope in [(false, false), (false, true), (true, false), (true, true)] {
        assert!(scopes.contains(&scope), "{report}");
    }

    let response = app.get(&format!("/api/reports/consultations?{range}&format=csv"), &coordinator).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.text().await.unwrap();
    assert!(text.lines().nth(1).unwrap().contains("\"demo-garze\",bo,land,2,1,1,0.500"), "{text}");

    // A lawyer sees no report; a coordinator of another region sees nothing of this one.
    let lawyer_token = app.token("demo-lawyer").await;
    assert_eq!(app.get(&path, &lawyer_token).await.status(), 403);
    let admin = app.token("demo-admin").await;
    app.post(
        "/api/regions",
        &admin,
        json!({"id": "elsewhere", "name": "Elsewhere", "time_zone": "Asia/Shanghai"}),
    )
    .await;
    let response = app
        .post(
            "/api/accounts",
            &admin,
            json!({"username": "far-coordinator", "display_name": "Far", "password": "far-coordinator-pass",
                   "roles": ["coordinator"], "regions": ["elsewhere"]}),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let far = app.token_for("far-coordinator", "far-coordinator-pass").await;
    let report: Value = app.get(&path, &far).await.json().await.unwrap();
    assert_eq!(report["lines"], json!([]));
    // Bad ranges and values are refused.
    for bad in [
        "from=2026-13-01&to=2026-12-01",
        "from=2026-12-01&to=2026-11-01",
        "from=2026-01-01&to=2027-06-01",
        &format!("{range}&period=day"),
        &format!("{range}&format=xml"),
    ] {
        let response = app.get(&format!("/api/reports/consultations?{bad}"), &coordinator).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

/// Two real `cloudlaw serve` processes on one PostgreSQL database: the first
/// serves, the second stands by. A resident waits on the first; the first is
/// killed (SIGKILL, no goodbye); the second takes over, the kiosk reconnects
/// to it and still waits with the same request, and a lawyer connected there
/// gets it and talks with the resident.
#[tokio::test]
async fn kill_9_of_the_serving_node_the_standby_takes_over_and_nobody_waiting_is_lost() {
    use crate::support::{CloudlawProcess, cloudlaw, database_args};
    let dir = tempfile::tempdir().unwrap();
    if crate::support::postgres_for(dir.path()).is_none() {
        return; // Several nodes share a PostgreSQL database; SQLite is one machine's file.
    }
    let node = || {
        let mut command = cloudlaw();
        command.args(["serve", "--demo", "--listen", "127.0.0.1:0"]).args(database_args(dir.path()));
        let mut process = CloudlawProcess::start(command);
        let addr = process.wait_listening();
        (process, addr)
    };
    let http = reqwest::Client::new();
    let status = |addr: std::net::SocketAddr| {
        let http = http.clone();
        async move {
            http.get(format!("http://{addr}/healthz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
        }
    };
    let (mut first, a) = node();
    assert_eq!(status(a).await, 200);
    let (_second, b) = node();
    assert_eq!(status(b).await, 503, "the second stands by");

    let enrolled: Value = http
        .post(format!("http://{a}/api/terminals/enroll"))
        .json(&json!({"code": "DEMO-TERMINAL-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = enrolled["device_token"].as_str().unwrap().to_owned();
    let mut kiosk = Client::connect_to(a, &device).await;
    kiosk.send(request("zh", "family")).await;
    // Told only once stored.
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();

    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let killed = std::time::Instant::now();
    while status(b).await != 200 {
        assert!(killed.elapsed() < Duration::from_secs(15), "the standby did not take over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("the standby served {:?} after kill -9", killed.elapsed());

    // The kiosk's reconnecting finds the other node: still waiting, same request.
    let mut kiosk = Client::connect_to(b, &device).await;
    let queued = kiosk.expect("consult.queued").await;
    assert_eq!(queued["request"], request_id.as_str(), "{queued}");
    let login: Value = http
        .post(format!("http://{b}/api/auth/login"))
        .json(&json!({"username": "demo-lawyer", "password": "demo-pass"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut drolma = Client::connect_to(b, login["access_token"].as_str().unwrap()).await;
    drolma.available().await;
    drolma.expect_where("consult.offer", |m| m["request"] == request_id.as_str()).await;
    drolma.send(json!({"type": "consult.accept", "request": request_id})).await;
    let started = kiosk.expect("consult.started").await;
    assert_eq!(started["request"], request_id.as_str());
}
