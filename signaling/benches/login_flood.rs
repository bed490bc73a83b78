//! Memory under a login flood: failed logins for names that do not exist, a
//! fixed number at a time, against the real `cloudlaw` binary on a fresh
//! database; prints the server's resident set before, after, and a few
//! seconds later, and the logins' latency.
//!
//! ```text
//! cargo bench -p signaling --bench login_flood                          # 200 logins, 16 at a time
//! cargo bench -p signaling --bench login_flood -- --logins 1000 --concurrency 32
//! cargo bench -p signaling --bench login_flood -- --binary /path/to/an/older/cloudlaw
//! ```
//!
//! The guessing limits are lifted for the run (every login here fails);
//! Linux only (it reads `/proc/PID/status`).

// A load tool: a failed unwrap is a failed run, said loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    logins: usize,
    concurrency: usize,
    binary: String,
}

fn args() -> Args {
    let mut args = Args { logins: 200, concurrency: 16, binary: env!("CARGO_BIN_EXE_cloudlaw").to_owned() };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().expect("a value after the flag");
        match flag.as_str() {
            "--logins" => args.logins = value().parse().expect("--logins N"),
            "--concurrency" => args.concurrency = value().parse().expect("--concurrency N"),
            "--binary" => args.binary = value(),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Server(
        Command::new(&args.binary)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path())
            .env("CLOUDLAW_RELAY__UDP_LISTEN", "127.0.0.1:0")
            .env("CLOUDLAW_AUTH__MAX_FAILED_LOGINS_PER_ACCOUNT", "1000000")
            .env("CLOUDLAW_AUTH__MAX_FAILURES_PER_ADDRESS", "1000000")
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
    while !http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_mib(pid);
    let started = Instant::now();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut tasks = Vec::new();
    for i in 0..args.logins {
        let (http, url, semaphore) = (http.clone(), format!("{base}/api/auth/login"), semaphore.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.unwrap();
            let sent = Instant::now();
            let body = serde_json::json!({"username": format!("nobody-{i}"), "password": "wrong-password"});
            let status = http.post(url).json(&body).send().await.unwrap().status().as_u16();
            (status, sent.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        let (status, latency) = task.await.unwrap();
        *statuses.entry(status).or_insert(0) += 1;
        latencies.push(latency);
    }
    let elapsed = started.elapsed();
    let after = resident_mib(pid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = resident_mib(pid);
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "{} failed logins, {} at a time, in {:.1} s ({:.0}/s); answers {statuses:?}",
        args.logins,
        args.concurrency,
        elapsed.as_secs_f64(),
        args.logins as f64 / elapsed.as_secs_f64()
    );
    println!("login latency: p50 {:.0} ms, p99 {:.0} ms", at(0.5), at(0.99));
    println!(
        "resident set: {before:.0} MiB before, {after:.0} MiB after (+{:.0}), {later:.0} MiB 5 s later (+{:.0})",
        after - before,
        later - before
    );
}
