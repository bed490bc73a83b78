//! Two real `cloudlaw serve` processes on one PostgreSQL database, with two
//! relay nodes: both serve; one runs the live path for both, and what happens
//! on one node reaches the people connected to the other through PostgreSQL.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::live::{Client, request};
use crate::relay_node::{SECRET, start_node};
use crate::support::{CloudlawProcess, cloudlaw, database_args, json_of, postgres_for};

/// Two relay nodes in this process (the tests run on several threads: the
/// nodes serve while a thread waits for a `cloudlaw` to start), and a
/// configuration file that names them.
struct Relays {
    nodes: Vec<media_relay::Relay>,
    config: tempfile::NamedTempFile,
}

async fn relays() -> Relays {
    let mut nodes = Vec::new();
    let mut toml = String::from("[live]\noffer_timeout_secs = 5\nring_after_secs = [1, 2, 3]\n");
    for name in ["first", "second"] {
        let (relay, url) = start_node().await;
        nodes.push(relay);
        // Probe rooms would show in the counts checked here.
        toml += &format!(
            "[[relay_nodes]]\nname = \"{name}\"\ncontrol_url = \"{url}\"\ncontrol_token = \"{SECRET}\"\nprobe_secs = 3600\n"
        );
    }
    let config = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(config.path(), toml).unwrap();
    Relays { nodes, config }
}

fn node(dir: &std::path::Path, relays: &Relays) -> (CloudlawProcess, SocketAddr) {
    let mut command = cloudlaw();
    command
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--config"])
        .arg(relays.config.path())
        .args(database_args(dir));
    let mut process = CloudlawProcess::start(command);
    let addr = process.wait_listening();
    (process, addr)
}

async fn healthy(http: &reqwest::Client, addr: SocketAddr) -> bool {
    let response = http.get(format!("http://{addr}/healthz")).send().await;
    response.is_ok_and(|r| r.status() == 200)
}

async fn login(http: &reqwest::Client, addr: SocketAddr, username: &str) -> String {
    let body = json_of(
        http.post(format!("http://{addr}/api/auth/login"))
            .json(&json!({"username": username, "password": "demo-pass"})),
    )
    .await;
    body["access_token"].as_str().unwrap().to_owned()
}

/// Registers a terminal in the demo region through `addr` and enrolls it;
/// returns its device token.
async fn kiosk_on(http: &reqwest::Client, addr: SocketAddr, admin: &str, name: &str) -> String {
    let terminal = json_of(http.post(format!("http://{addr}/api/terminals")).bearer_auth(admin).json(
        &json!({"name": name, "township": "Kangding", "region_id": "demo-garze", "languages": ["bo", "zh"]}),
    ))
    .await;
    let enroll = json!({"code": terminal["enrollment_code"]});
    let enrolled = json_of(http.post(format!("http://{addr}/api/terminals/enroll")).json(&enroll)).await;
    enrolled["device_token"].as_str().unwrap().to_owned()
}

/// The first node to start leads; the second serves too (no standby).
async fn two_nodes(dir: &std::path::Path, relays: &Relays) -> [(CloudlawProcess, SocketAddr); 2] {
    let http = reqwest::Client::new();
    let first = node(dir, relays);
    assert!(healthy(&http, first.1).await);
    let second = node(dir, relays);
    assert!(healthy(&http, second.1).await, "the second node serves too");
    [first, second]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_on_one_node_talks_with_a_lawyer_on_the_other_and_nobody_is_rung_twice() {
    let dir = tempfile::tempdir().unwrap();
    if postgres_for(dir.path()).is_none() {
        return; // Several nodes share a PostgreSQL database; SQLite is one machine's file.
    }
    let relays = relays().await;
    let [(_leader, a), (_follower, b)] = two_nodes(dir.path(), &relays).await;
    let http = reqwest::Client::new();
    let admin = login(&http, a, "demo-admin").await;

    // A coordinator on the second node watches.
    let mut coordinator = Client::connect_to(b, &login(&http, b, "demo-coordinator").await).await;
    coordinator.send(json!({"type": "live.subscribe"})).await;
    coordinator.expect("live.view").await;

    // One resident asks on the first node, then one on the second.
    let mut first_kiosk = Client::connect_to(a, &kiosk_on(&http, a, &admin, "Kiosk A").await).await;
    first_kiosk.send(request("zh", "family")).await;
    let first_request = first_kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    let mut second_kiosk = Client::connect_to(b, &kiosk_on(&http, b, &admin, "Kiosk B").await).await;
    second_kiosk.send(request("zh", "family")).await;
    let queued = second_kiosk.expect("consult.queued").await;
    assert_eq!(queued["position"], 2, "one line for both nodes: {queued}");
    let second_request = queued["request"].as_str().unwrap().to_owned();

    // The only lawyer on duty is on the second node: rung for the first request, and only for it.
    let drolma_token = login(&http, b, "demo-lawyer").await;
    let mut drolma = Client::connect_to(b, &drolma_token).await;
    drolma.available().await;
    let offer = drolma.expect("consult.offer").await;
    assert_eq!(offer["request"], first_request.as_str(), "first come, first served across nodes");
    drolma.quiet("consult.offer", Duration::from_secs(2)).await;
    drolma.send(json!({"type": "consult.accept", "request": first_request})).await;

    // Both get the call, and join its room through their own nodes: the same relay.
    let kiosk_started = first_kiosk.expect("consult.started").await;
    let lawyer_started = drolma.expect("consult.started").await;
    let consultation = kiosk_started["consultation"].as_str().unwrap().to_owned();
    assert_eq!(lawyer_started["consultation"], consultation.as_str());
    first_kiosk.send(json!({"type": "rtc.join", "token": kiosk_started["token"]})).await;
    drolma.send(json!({"type": "rtc.join", "token": lawyer_started["token"]})).await;
    let kiosk_offer = first_kiosk.expect("rtc.offer").await;
    let lawyer_offer = drolma.expect("rtc.offer").await;
    let port_of = |offer: &Value, relay: &media_relay::Relay| {
        offer["sdp"].as_str().unwrap().contains(&format!(" {} typ host", relay.udp_addr().port()))
    };
    let relay = relays.nodes.iter().find(|r| r.status().rooms == 1).expect("the room is open on a relay");
    assert!(port_of(&kiosk_offer, relay) && port_of(&lawyer_offer, relay), "one relay carries both");
    assert_eq!(relay.status().participants, 2);
    assert_eq!(relays.nodes.iter().map(|r| r.status().rooms).sum::<u64>(), 1);

    // The coordinator on the other node sees the call and who still waits.
    coordinator
        .expect_where("live.view", |v| {
            v["consultations"].as_array().is_some_and(|c| c.len() == 1 && c[0]["id"] == consultation.as_str())
                && v["queue"]
                    .as_array()
                    .is_some_and(|q| q.len() == 1 && q[0]["request"] == second_request.as_str())
        })
        .await;

    // The lawyer hangs up on the second node; the resident on the first hears of it.
    drolma.send(json!({"type": "consult.hangup", "consultation": consultation})).await;
    first_kiosk.expect_where("consult.ended", |m| m["consultation"] == consultation.as_str()).await;
    second_kiosk.quiet("consult.started", Duration::from_millis(500)).await;

    // She logs out through the first node: her connection to the second closes too.
    let out =
        http.post(format!("http://{a}/api/auth/logout")).bearer_auth(&drolma_token).send().await.unwrap();
    assert_eq!(out.status(), 204);
    let revoked = drolma.expect_error("revoked").await;
    assert_eq!(revoked["message"], "logged out", "{revoked}");
    drolma.closed(Duration::from_secs(5)).await;

    // A booking race across the nodes: one slot, one booking.
    let lawyer =
        json_of(http.get(format!("http://{a}/api/me")).bearer_auth(login(&http, a, "demo-lawyer").await))
            .await;
    let terminal = kiosk_on(&http, a, &admin, "Kiosk C").await;
    let kiosk = json_of(http.get(format!("http://{b}/api/me")).bearer_auth(&terminal)).await;
    let (lawyer_id, terminal_id) = (&lawyer["account"]["id"], &kiosk["terminal"]["id"]);
    let start = crate::schedule::rfc(crate::schedule::shanghai(crate::schedule::next_monday(), 9, 0));
    let body = json!({"start": start, "language": "zh", "topic": "family", "terminal_id": terminal_id, "lawyer_id": lawyer_id});
    let mut tasks = Vec::new();
    for i in 0..8 {
        let addr = if i % 2 == 0 { a } else { b };
        let request = http.post(format!("http://{addr}/api/appointments")).bearer_auth(&admin).json(&body);
        tasks.push(tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");

    // Password guessing spread over the nodes meets one limit (10 failures per
    // account), however fast the first node's guesses come.
    let guess = |addr: SocketAddr, username: &'static str| {
        let body = json!({"username": username, "password": "not-it"});
        let request = http.post(format!("http://{addr}/api/auth/login")).json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let on_a = futures_util::future::join_all((0..6).map(|_| guess(a, "guessed-at"))).await;
    assert_eq!(on_a, [401; 6]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut on_b = Vec::new();
    for _ in 0..6 {
        on_b.push(guess(b, "guessed-at").await);
    }
    assert_eq!(on_b, [401, 401, 401, 401, 429, 429], "the second node counts the first's failures");

    // Someone who mistyped nine times and then got in on one node starts
    // afresh on the other too.
    for _ in 0..9 {
        assert_eq!(guess(a, "demo-coordinator").await, 401);
    }
    login(&http, a, "demo-coordinator").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut on_b = Vec::new();
    for _ in 0..10 {
        on_b.push(guess(b, "demo-coordinator").await);
    }
    assert_eq!(on_b, [401; 10], "a login on the first node cleared the account's failures on the second");
}

/// A client whose connection the server closed: it reconnects (to `addr`) as
/// the apps do, and finds its request again.
async fn reconnects_waiting(
    mut client: Client,
    addr: SocketAddr,
    token: &str,
    request: &str,
    started: Instant,
) -> Client {
    client.closed(Duration::from_secs(15)).await;
    let mut client = Client::connect_to(addr, token).await;
    let queued = client.expect("consult.queued").await;
    assert_eq!(queued["request"], request, "{queued}");
    eprintln!("waiting again through {addr} {:?} after the kill", started.elapsed());
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_node_that_runs_the_live_path_loses_nobody_waiting_on_either_node() {
    let dir = tempfile::tempdir().unwrap();
    if postgres_for(dir.path()).is_none() {
        return;
    }
    let relays = relays().await;
    let [(mut leader, a), (_follower, b)] = two_nodes(dir.path(), &relays).await;
    let http = reqwest::Client::new();
    let admin = login(&http, a, "demo-admin").await;
    let on_a = kiosk_on(&http, a, &admin, "Kiosk A").await;
    let on_b = kiosk_on(&http, a, &admin, "Kiosk B").await;
    let mut kiosk_a = Client::connect_to(a, &on_a).await;
    kiosk_a.send(request("zh", "land")).await;
    let request_a = kiosk_a.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    let mut kiosk_b = Client::connect_to(b, &on_b).await;
    kiosk_b.send(request("zh", "land")).await;
    let request_b = kiosk_b.expect("consult.queued").await["request"].as_str().unwrap().to_owned();

    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let killed = Instant::now();
    // The resident on the surviving node is asked to reconnect when it takes
    // over; the one on the dead node reconnects to the survivor.
    let mut kiosk_b = reconnects_waiting(kiosk_b, b, &on_b, &request_b, killed).await;
    let mut kiosk_a = reconnects_waiting(kiosk_a, b, &on_a, &request_a, killed).await;
    assert!(killed.elapsed() < Duration::from_secs(15));

    let mut drolma = Client::connect_to(b, &login(&http, b, "demo-lawyer").await).await;
    drolma.available().await;
    drolma.expect_where("consult.offer", |m| m["request"] == request_a.as_str()).await;
    drolma.send(json!({"type": "consult.accept", "request": request_a})).await;
    kiosk_a.expect("consult.started").await;
    kiosk_b.quiet("consult.started", Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_another_node_its_people_go_off_duty_and_its_residents_wait_on() {
    let dir = tempfile::tempdir().unwrap();
    if postgres_for(dir.path()).is_none() {
        return;
    }
    let relays = relays().await;
    let [(_leader, a), (mut follower, b)] = two_nodes(dir.path(), &relays).await;
    let http = reqwest::Client::new();
    let admin = login(&http, a, "demo-admin").await;
    let mut coordinator = Client::connect_to(a, &login(&http, a, "demo-coordinator").await).await;
    coordinator.send(json!({"type": "live.subscribe"})).await;
    let state_of = |view: &Value, name: &str| {
        let people = view["people"].as_array().cloned().unwrap_or_default();
        let person = people.iter().find(|p| p["name"].as_str().is_some_and(|n| n.contains(name)));
        person.map(|p| p["state"].as_str().unwrap_or("").to_owned())
    };
    let mut drolma = Client::connect_to(b, &login(&http, b, "demo-lawyer").await).await;
    drolma.available().await;
    coordinator.expect_where("live.view", |v| state_of(v, "Drolma").as_deref() == Some("available")).await;
    let on_b = kiosk_on(&http, a, &admin, "Kiosk B").await;
    let mut kiosk = Client::connect_to(b, &on_b).await;
    kiosk.send(request("bo", "land")).await;
    let waiting = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();

    follower.child.kill().unwrap();
    follower.child.wait().unwrap();
    let killed = Instant::now();
    // The lawyer on the dead node is no longer rung; the resident there waits on through the other.
    reconnects_waiting(kiosk, a, &on_b, &waiting, killed).await;
    coordinator.expect_where("live.view", |v| state_of(v, "Drolma").as_deref() == Some("offline")).await;
    eprintln!("the lawyer on the dead node was off duty {:?} after the kill", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(15));
}
