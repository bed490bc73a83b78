//! Load on the live path: many authenticated WebSockets held open, lawyers on
//! duty, residents asking at a steady rate. Starts the real `cloudlaw` binary
//! on a fresh database it seeds itself, drives it over loopback, and prints:
//! memory per connection, request-to-ring latency measured by the server
//! (its `cloudlaw_live_request_to_ring_seconds` histogram) and by the clients.
//!
//! ```text
//! cargo bench -p signaling --bench live                        # 1,000 lawyers, 9,000 kiosks, 500/s
//! cargo bench -p signaling --bench live -- --lawyers 200 --terminals 800 --rate 100
//! ```
//!
//! Each kiosk asks once; each lawyer accepts at once, talks for `--hold-ms`,
//! hangs up and goes straight back on duty. Needs `ulimit -n` above the
//! connection count (each process holds one side of every connection).

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
use signaling::store::{NewAccount, NewTerminal, RegionRecord, Store};
use signaling::unix_now;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
struct Args {
    lawyers: usize,
    terminals: usize,
    rate: f64,
    hold_ms: u64,
}

fn args() -> Args {
    let mut args = Args { lawyers: 1000, terminals: 9000, rate: 500.0, hold_ms: 1000 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<f64>().ok()).expect("a number after the flag");
        match flag.as_str() {
            "--lawyers" => args.lawyers = value() as usize,
            "--terminals" => args.terminals = value() as usize,
            "--rate" => args.rate = value(),
            "--hold-ms" => args.hold_ms = value() as u64,
            "--bench" => {}
            other => panic!("unknown flag {other}; see the top of benches/live.rs"),
        }
    }
    args
}

/// Seeds the region, a team posted there, lawyers on duty round the clock and
/// enrolled kiosks; returns their tokens.
async fn seed(config: &Config, args: &Args) -> (Vec<String>, Vec<String>) {
    let store = Store::open(config).await.expect("open store");
    store.migrate().await.expect("migrate");
    let tokens = Tokens::load(store.clone(), config.auth.clone()).await.expect("keys");
    let region = "load-region";
    store
        .create_region(&RegionRecord {
            id: region.into(),
            name: "Load test prefecture".into(),
            parent_id: None,
            time_zone: "Asia/Shanghai".into(),
        })
        .await
        .unwrap();
    let team = store.create_team("Load test team").await.unwrap();
    store.assign_team_region(&team, region).await.unwrap();
    let now = unix_now();
    let ttl = Duration::from_secs(900);
    let mut lawyer_tokens = Vec::new();
    for i in 0..args.lawyers {
        let id = store
            .create_account(&NewAccount {
                username: format!("lawyer-{i}"),
                display_name: format!("Lawyer {i}"),
                password_hash: "not-used".into(),
                time_zone: "Asia/Shanghai".into(),
                roles: vec![Role::Lawyer],
                languages: vec![Language::parse("bo").unwrap(), Language::parse("zh").unwrap()],
                topics: Topic::ALL.to_vec(),
            })
            .await
            .unwrap();
        store.add_team_member(&team, &id).await.unwrap();
        for weekday in 0..7 {
            store.add_weekly_availability(&id, weekday, 0, 1440).await.unwrap();
        }
        let session = store.create_session(&id, now, now + 3600, "load").await.unwrap();
        lawyer_tokens.push(tokens.issue(TokenKind::Access, &id, &session, ttl, None).0);
    }
    let mut terminal_tokens = Vec::new();
    for i in 0..args.terminals {
        let code = format!("LOAD-{i}");
        let hash = signaling::password::fingerprint(&code);
        store
            .create_terminal(&NewTerminal {
                name: format!("Kiosk {i}"),
                township: "Township".into(),
                region_id: region.into(),
                languages: vec![Language::parse("bo").unwrap()],
                enrollment_code_hash: hash.clone(),
                enrollment_expires_at: now + 3600,
            })
            .await
            .unwrap();
        let credential = format!("credential-{i}");
        let id = store.enroll_terminal(&hash, &credential, now).await.unwrap().unwrap();
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
}

fn parse(message: &Message) -> Option<Value> {
    match message {
        Message::Text(text) => serde_json::from_str(text).ok(),
        _ => None,
    }
}

async fn lawyer(mut socket: Socket, hold: Duration, timings: Arc<Mutex<Timings>>, stop: Instant) -> usize {
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
                timings.lock().unwrap().rung.entry(request.clone()).or_insert_with(Instant::now);
                json!({"type": "consult.accept", "request": request})
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
            timings.lock().unwrap().sent.entry(request).or_insert(sent);
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
    let config = Config { data_dir: dir.clone(), ..Config::default() };
    let started = Instant::now();
    let (lawyer_tokens, terminal_tokens) = seed(&config, &args).await;
    println!(
        "seeded {} lawyers and {} kiosks in {:.1} s",
        args.lawyers,
        args.terminals,
        started.elapsed().as_secs_f64()
    );

    let port = free_port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_cloudlaw"))
            .args(["serve", "--data-dir"])
            .arg(&dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("CLOUDLAW_RELAY__UDP_LISTEN", "127.0.0.1:0")
            .env("CLOUDLAW_RELAY__MAX_ROOMS", "5000")
            .env("CLOUDLAW_LIVE__DEFAULT_DAILY_CAP", "1000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cloudlaw"),
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(pid);

    let url = format!("ws://127.0.0.1:{port}/ws");
    let connect_started = Instant::now();
    let mut lawyer_sockets = Vec::new();
    for chunk in lawyer_tokens.chunks(200) {
        let batch = chunk.iter().map(|t| connect(&url, t));
        lawyer_sockets.extend(futures_util::future::join_all(batch).await);
    }
    let mut terminal_sockets = Vec::new();
    for chunk in terminal_tokens.chunks(200) {
        let batch = chunk.iter().map(|t| connect(&url, t));
        terminal_sockets.extend(futures_util::future::join_all(batch).await);
    }
    let connections = lawyer_sockets.len() + terminal_sockets.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held_rss = rss_kib(pid);
    println!(
        "{connections} authenticated WebSockets open in {:.1} s; server RSS {:.1} MiB idle, {:.1} MiB with them: {:.1} KiB per connection",
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
        .map(|s| tokio::spawn(lawyer(s, hold, Arc::clone(&timings), stop)))
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
    let peak_rss = rss_kib(pid);

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
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
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
    println!("server RSS at the end: {:.1} MiB", peak_rss as f64 / 1024.0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
