//! Load on the live path: many authenticated WebSockets held open, lawyers on
//! duty, residents asking at a steady rate. Starts the real `cloudlaw` binary
//! on a fresh database it seeds itself, drives it over loopback, and prints:
//! memory per connection, request-to-ring latency measured by the server
//! (its `cloudlaw_live_request_to_ring_seconds` histogram) and by the clients.
//!
//! ```text
//! cargo bench -p signaling --bench live                        # 1,000 lawyers, 9,000 kiosks, 500/s
//! cargo bench -p signaling --bench live -- --lawyers 200 --terminals 800 --rate 100
//! cargo bench -p signaling --bench live -- --postgres postgres://postgres@localhost/postgres --nodes 2
//! ```
//!
//! Each kiosk asks once; each lawyer accepts at once, talks for `--hold-ms`,
//! hangs up and goes straight back on duty. Needs `ulimit -n` above the
//! connection count (each process holds one side of every connection).
//!
//! `--decline-first`: the first lawyer rung for each request declines it;
//! prints how soon the next is rung. `--interpreters N`: the lawyers speak
//! Chinese only and N interpreters Tibetan and Chinese, so every request is
//! a three-way; prints request to both rung, and to the call started.
//!
//! `--postgres ADMIN_URL` runs on a fresh PostgreSQL database made there (and
//! dropped after). `--nodes 2` (PostgreSQL only) starts two `cloudlaw serve`
//! on it with a relay node in this process: the first runs the live path,
//! every lawyer is connected to the second, and the kiosks alternate between
//! the two, so most requests and every ring cross between the nodes.

// A load tool: a failed unwrap is a failed run, said loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use signaling::auth::tokens::{TokenKind, Tokens};
use signaling::config::Config;
use signaling::domain::{Language, Role, Topic};
use signaling::store::{AuditEntry, NewAccount, NewTerminal, RegionRecord, Store, TeamLinks};
use signaling::unix_now;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
struct Args {
    lawyers: usize,
    terminals: usize,
    rate: f64,
    hold_ms: u64,
    postgres: Option<String>,
    nodes: usize,
    decline_first: bool,
    interpreters: usize,
}

fn args() -> Args {
    let mut args = Args {
        lawyers: 1000,
        terminals: 9000,
        rate: 500.0,
        hold_ms: 1000,
        postgres: None,
        nodes: 1,
        decline_first: false,
        interpreters: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut text = || it.next().expect("a value after the flag");
        let mut value = || text().parse::<f64>().expect("a number after the flag");
        match flag.as_str() {
            "--lawyers" => args.lawyers = value() as usize,
            "--terminals" => args.terminals = value() as usize,
            "--rate" => args.rate = value(),
            "--hold-ms" => args.hold_ms = value() as u64,
            "--nodes" => args.nodes = value() as usize,
            "--decline-first" => args.decline_first = true,
            "--interpreters" => args.interpreters = value() as usize,
            "--postgres" => args.postgres = Some(it.next().expect("an admin URL after --postgres")),
            "--bench" => {}
            other => panic!("unknown flag {other}; see the top of benches/live.rs"),
        }
    }
    assert!(args.nodes >= 1 && (args.nodes == 1 || args.postgres.is_some()), "--nodes 2 needs --postgres");
    args
}

/// A relay node in this process, as `media-relay` serves it; returns its control URL.
async fn relay_node(secret: &str) -> String {
    let config = media_relay::RelayConfig {
        udp_listen: "127.0.0.1:0".parse().unwrap(),
        max_rooms: 5000,
        ..media_relay::RelayConfig::default()
    };
    let config = media_relay::node::NodeConfig {
        relay: config,
        control_token: Some(secret.into()),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = media_relay::node::start(config, listener).await.unwrap();
    let url = format!("ws://{}/control", node.http);
    tokio::spawn(node.serve(std::future::pending));
    url
}

/// Seeds the region, a team posted there, lawyers (and interpreters) on duty
/// round the clock and enrolled kiosks; returns the people's tokens and the kiosks'.
async fn seed(config: &Config, args: &Args) -> (Vec<String>, Vec<String>) {
    let store = Store::open(config).await.expect("open store");
    store.migrate().await.expect("migrate");
    let tokens = Tokens::load(store.clone(), config.auth.clone()).await.expect("keys");
    let region = "load-region";
    store
        .create_region(
            &RegionRecord {
                id: region.into(),
                name: "Load test prefecture".into(),
                parent_id: None,
                time_zone: "Asia/Shanghai".into(),
            },
            &AuditEntry::system("region.created"),
        )
        .await
        .unwrap();
    let regions = [signaling::ids::RegionId::from(region)];
    let links = TeamLinks { regions: Some(&regions), ..TeamLinks::default() };
    let team = store.create_team("Load test team", links, &AuditEntry::system("team.created")).await.unwrap();
    let now = unix_now();
    let ttl = Duration::from_secs(900);
    let mut lawyer_tokens = Vec::new();
    let (bo, zh) = (Language::parse("bo").unwrap(), Language::parse("zh").unwrap());
    for i in 0..args.lawyers + args.interpreters {
        let interpreter = i >= args.lawyers;
        // With interpreters, no lawyer speaks the residents' Tibetan.
        let languages = if args.interpreters > 0 && !interpreter {
            vec![zh.clone()]
        } else {
            vec![bo.clone(), zh.clone()]
        };
        let id = store
            .create_account(
                &NewAccount {
                    username: format!("person-{i}"),
                    display_name: format!("Person {i}"),
                    password_hash: "not-used".into(),
                    time_zone: "Asia/Shanghai".into(),
                    roles: vec![if interpreter { Role::Interpreter } else { Role::Lawyer }],
                    languages,
                    topics: Topic::ALL.to_vec(),
                },
                &[],
                &AuditEntry::system("account.created"),
            )
            .await
            .unwrap();
        if !interpreter {
            store.add_team_member(&team, &id).await.unwrap();
        }
        for weekday in 0..7 {
            store.add_weekly_availability(&id, weekday, 0, 1440).await.unwrap();
        }
        let session =
            store.create_session(&id, now, now + 3600, "load", &AuditEntry::system("login")).await.unwrap();
        lawyer_tokens.push(tokens.issue(TokenKind::Access, &id, &session, ttl, None).0);
    }
    let mut terminal_tokens = Vec::new();
    for i in 0..args.terminals {
        let code = format!("LOAD-{i}");
        let hash = signaling::password::fingerprint(&code);
        store
            .create_terminal(
                &NewTerminal {
                    name: format!("Kiosk {i}"),
                    township: "Township".into(),
                    region_id: region.into(),
                    languages: vec![Language::parse("bo").unwrap()],
                    enrollment_code_hash: hash.clone(),
                    enrollment_expires_at: now + 3600,
                },
                &AuditEntry::system("terminal.registered"),
            )
            .await
            .unwrap();
        let credential = format!("credential-{i}");
        let id = store
            .enroll_terminal(&hash, &credential, now, &AuditEntry::system("terminal.enrolled"))
            .await
            .unwrap()
            .unwrap();
        terminal_tokens.push(tokens.issue(TokenKind::Device, &id, &credential, ttl, None).0);
    }
    store.close().await;
    (lawyer_tokens, terminal_tokens)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, token: &str) -> Socket {
    for _ in 0..50 {
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(format!("{url}?token={token}")).await {
            return socket;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {url}");
}

/// When each request was sent (by request id, learned from `consult.queued`)
/// and when its first offer arrived.
#[derive(Default)]
struct Timings {
    sent: HashMap<String, Instant>,
    rung: HashMap<String, Instant>,
    /// Every offer's arrival (a three-way's lawyer and interpreter).
    offers: HashMap<String, Vec<Instant>>,
    /// When the first lawyer rung declined, and when the next offer arrived.
    declined: HashMap<String, Instant>,
    rung_again: HashMap<String, Instant>,
    /// When the kiosk heard the call started.
    started: HashMap<String, Instant>,
}

fn parse(message: &Message) -> Option<Value> {
    match message {
        Message::Text(text) => serde_json::from_str(text).ok(),
        _ => None,
    }
}

/// A lawyer or an interpreter: accepts every offer at once (or, with
/// `decline_first`, declines a request nobody declined yet), talks for `hold`
/// and hangs up (the lawyer), and goes back on duty.
async fn lawyer(
    mut socket: Socket,
    hold: Duration,
    decline_first: bool,
    timings: Arc<Mutex<Timings>>,
    stop: Instant,
) -> usize {
    socket
        .send(Message::text(json!({"type": "presence.set", "state": "available"}).to_string()))
        .await
        .unwrap();
    let mut taken = 0;
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(stop.saturating_duration_since(Instant::now()), socket.next()).await
    {
        let Some(m) = parse(&message) else { continue };
        let reply = match m["type"].as_str() {
            Some("consult.offer") => {
                let request = m["request"].as_str().unwrap_or_default().to_owned();
                let decline = {
                    let now = Instant::now();
                    let mut timings = timings.lock().unwrap();
                    timings.rung.entry(request.clone()).or_insert(now);
                    timings.offers.entry(request.clone()).or_default().push(now);
                    if timings.declined.contains_key(&request) {
                        timings.rung_again.entry(request.clone()).or_insert(now);
                        false
                    } else if decline_first {
                        timings.declined.insert(request.clone(), Instant::now());
                        true
                    } else {
                        false
                    }
                };
                if decline {
                    let decline = json!({"type": "consult.decline", "request": request});
                    if socket.send(Message::text(decline.to_string())).await.is_err() {
                        break;
                    }
                    continue;
                }
                json!({"type": "consult.accept", "request": request})
            }
            Some("consult.started") if m["role"] == "interpreter" => {
                taken += 1;
                continue;
            }
            Some("consult.started") => {
                taken += 1;
                tokio::time::sleep(hold).await;
                json!({"type": "consult.hangup", "consultation": m["consultation"]})
            }
            Some("consult.ended") => json!({"type": "presence.set", "state": "available"}),
            Some("error") => {
                eprintln!("lawyer got an error: {m}");
                continue;
            }
            _ => continue,
        };
        if socket.send(Message::text(reply.to_string())).await.is_err() {
            break;
        }
    }
    taken
}

async fn terminal(mut socket: Socket, at: Instant, timings: Arc<Mutex<Timings>>, stop: Instant) {
    tokio::time::sleep_until(at.into()).await;
    let sent = Instant::now();
    let ask = json!({"type": "consult.request", "language": "bo", "topic": "land"});
    socket.send(Message::text(ask.to_string())).await.unwrap();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(stop.saturating_duration_since(Instant::now()), socket.next()).await
    {
        let Some(m) = parse(&message) else { continue };
        // The request's id comes with its place in the queue, or with the
        // consultation when a lawyer took it before the place was told.
        if m["type"] == "consult.queued" || m["type"] == "consult.started" {
            let request = m["request"].as_str().unwrap_or_default().to_owned();
            let mut timings = timings.lock().unwrap();
            timings.sent.entry(request.clone()).or_insert(sent);
            if m["type"] == "consult.started" {
                timings.started.entry(request).or_insert_with(Instant::now);
            }
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Quantiles from a Prometheus histogram: the upper bound of the bucket that holds them.
fn histogram_quantiles(metrics: &str, name: &str, qs: &[f64]) -> (u64, Vec<f64>) {
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    for line in metrics.lines().filter(|l| l.starts_with(&format!("{name}_bucket"))) {
        let le = line.split("le=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("+Inf");
        let count: u64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0);
        buckets.push((le.parse().unwrap_or(f64::INFINITY), count));
    }
    let total = buckets.last().map(|b| b.1).unwrap_or(0);
    let values = qs
        .iter()
        .map(|q| {
            let want = (total as f64 * q).ceil() as u64;
            buckets.iter().find(|(_, c)| *c >= want).map(|(le, _)| *le).unwrap_or(f64::NAN)
        })
        .collect();
    (total, values)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = std::env::temp_dir().join(format!("cloudlaw-live-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = match &args.postgres {
        Some(admin) => {
            let name = format!("cloudlaw_live_load_{}", std::process::id());
            Some(signaling::store::create_database(admin, &name).await)
        }
        None => None,
    };
    let config =
        Config { data_dir: dir.clone(), database_url: database.clone().map(Into::into), ..Config::default() };
    let started = Instant::now();
    let (lawyer_tokens, terminal_tokens) = seed(&config, &args).await;
    println!(
        "seeded {} lawyers and {} kiosks in {:.1} s on {}",
        args.lawyers,
        args.terminals,
        started.elapsed().as_secs_f64(),
        if database.is_some() { "PostgreSQL" } else { "SQLite" }
    );

    // Several nodes share relay nodes (a relay in one node's process could not carry the others' calls).
    let config_file = dir.join("load.toml");
    if args.nodes > 1 {
        let secret = "live-load-relay-secret";
        let url = relay_node(secret).await;
        let toml = format!(
            "[[relay_nodes]]\nname = \"load\"\ncontrol_url = \"{url}\"\ncontrol_token = \"{secret}\"\nprobe_secs = 3600\n"
        );
        std::fs::write(&config_file, toml).unwrap();
    } else {
        std::fs::write(&config_file, "").unwrap();
    }
    let http = reqwest::Client::new();
    let mut servers = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..args.nodes {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_cloudlaw"));
        command.args(["serve", "--data-dir"]).arg(&dir).args(["--listen", &format!("127.0.0.1:{port}")]);
        command.arg("--config").arg(&config_file);
        if let Some(url) = &database {
            command.args(["--database-url", url]);
        }
        let server = Server(
            command
                .env("CLOUDLAW_RELAY__UDP_LISTEN", "127.0.0.1:0")
                .env("CLOUDLAW_RELAY__MAX_ROOMS", "5000")
                .env("CLOUDLAW_LIVE__DEFAULT_DAILY_CAP", "1000")
                // Every client of the load is on 127.0.0.1.
                .env("CLOUDLAW_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "0")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start cloudlaw"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        // The first node up runs the live path: wait for it before starting the next.
        while !http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            assert!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        servers.push(server);
        bases.push(base);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids: Vec<u32> = servers.iter().map(|s| s.0.id()).collect();
    let rss = || pids.iter().map(|pid| rss_kib(*pid)).sum::<u64>();
    let idle_rss = rss();

    let ws = |i: usize| bases[i % bases.len()].replace("http://", "ws://") + "/ws";
    let connect_started = Instant::now();
    let mut lawyer_sockets = Vec::new();
    let lawyers_on = ws(args.nodes - 1);
    for chunk in lawyer_tokens.chunks(200) {
        let batch = chunk.iter().map(|t| connect(&lawyers_on, t));
        lawyer_sockets.extend(futures_util::future::join_all(batch).await);
    }
    let mut terminal_sockets = Vec::new();
    for (n, chunk) in terminal_tokens.chunks(200).enumerate() {
        let urls: Vec<String> = (0..chunk.len()).map(|i| ws(n * 200 + i)).collect();
        let batch = chunk.iter().zip(&urls).map(|(t, url)| connect(url, t));
        terminal_sockets.extend(futures_util::future::join_all(batch).await);
    }
    let connections = lawyer_sockets.len() + terminal_sockets.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held_rss = rss();
    println!(
        "{connections} authenticated WebSockets open on {} node(s) in {:.1} s; server RSS {:.1} MiB idle, {:.1} MiB with them: {:.1} KiB per connection",
        args.nodes,
        connect_started.elapsed().as_secs_f64(),
        idle_rss as f64 / 1024.0,
        held_rss as f64 / 1024.0,
        (held_rss.saturating_sub(idle_rss)) as f64 / connections as f64,
    );

    let timings = Arc::new(Mutex::new(Timings::default()));
    let run = Duration::from_secs_f64(args.terminals as f64 / args.rate);
    let begin = Instant::now() + Duration::from_secs(2);
    let stop = begin + run + Duration::from_secs(5) + Duration::from_millis(args.hold_ms * 2);
    let hold = Duration::from_millis(args.hold_ms);
    let lawyers: Vec<_> = lawyer_sockets
        .into_iter()
        .map(|s| tokio::spawn(lawyer(s, hold, args.decline_first, Arc::clone(&timings), stop)))
        .collect();
    let terminals: Vec<_> = terminal_sockets
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let at = begin + Duration::from_secs_f64(i as f64 / args.rate);
            tokio::spawn(terminal(s, at, Arc::clone(&timings), stop))
        })
        .collect();
    let mut taken = 0;
    for l in lawyers {
        taken += l.await.unwrap_or(0);
    }
    for t in terminals {
        let _ = t.await;
    }
    let peak_rss = rss();

    let (mut latencies, rung): (Vec<f64>, usize) = {
        let timings = timings.lock().unwrap();
        let latencies = timings
            .sent
            .iter()
            .filter_map(|(request, sent)| {
                timings.rung.get(request).map(|rung| rung.duration_since(*sent).as_secs_f64() * 1000.0)
            })
            .collect();
        (latencies, timings.rung.len())
    };
    latencies.sort_by(f64::total_cmp);
    // The node that runs the live path measures request to ring.
    let metrics = http.get(format!("{}/metrics", bases[0])).send().await.unwrap().text().await.unwrap();
    let (observed, server) =
        histogram_quantiles(&metrics, "cloudlaw_live_request_to_ring_seconds", &[0.5, 0.99, 0.999]);
    println!(
        "{} requests at {} per second over {:.1} s; {} rung, {} consultations taken",
        args.terminals,
        args.rate,
        run.as_secs_f64(),
        rung,
        taken
    );
    println!(
        "request to lawyer rung, server side ({observed} observed; bucket upper bounds): p50 ≤ {:.2} ms, p99 ≤ {:.2} ms, p99.9 ≤ {:.2} ms",
        server[0] * 1000.0,
        server[1] * 1000.0,
        server[2] * 1000.0
    );
    println!(
        "request to lawyer rung, at the clients (same machine, includes both ends): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    let spans = |pairs: Vec<(Instant, Instant)>| {
        let mut ms: Vec<f64> =
            pairs.iter().map(|(a, b)| b.duration_since(*a).as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        ms
    };
    {
        let timings = timings.lock().unwrap();
        if args.decline_first {
            let after: Vec<f64> = spans(
                timings
                    .declined
                    .iter()
                    .filter_map(|(r, at)| Some((*at, *timings.rung_again.get(r)?)))
                    .collect(),
            );
            println!(
                "decline to the next lawyer rung, at the clients ({} declines, {} rung again): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                timings.declined.len(),
                after.len(),
                quantile(&after, 0.5),
                quantile(&after, 0.99),
                after.last().copied().unwrap_or(f64::NAN)
            );
        }
        if args.interpreters > 0 {
            let both: Vec<f64> = spans(
                timings
                    .sent
                    .iter()
                    .filter_map(|(r, sent)| {
                        let offers = timings.offers.get(r)?;
                        (offers.len() >= 2)
                            .then(|| (*sent, offers[..2].iter().max().copied().unwrap_or(*sent)))
                    })
                    .collect(),
            );
            let started: Vec<f64> = spans(
                timings.sent.iter().filter_map(|(r, sent)| Some((*sent, *timings.started.get(r)?))).collect(),
            );
            println!(
                "three-way, request to lawyer and interpreter both rung, at the clients ({}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                both.len(),
                quantile(&both, 0.5),
                quantile(&both, 0.99),
                both.last().copied().unwrap_or(f64::NAN)
            );
            println!(
                "three-way, request to call started at the kiosk, both accepting at once ({}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                started.len(),
                quantile(&started, 0.5),
                quantile(&started, 0.99),
                started.last().copied().unwrap_or(f64::NAN)
            );
        }
    }
    println!("server RSS at the end: {:.1} MiB", peak_rss as f64 / 1024.0);
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
    if let (Some(admin), Some(_)) = (&args.postgres, &database) {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
        let name = format!("cloudlaw_live_load_{}", std::process::id());
        let drop = format!("DROP DATABASE IF EXISTS \"{name}\"");
        sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await.unwrap();
    }
}
