//! What a stranger with a script cannot do: hold connections open, grow the
//! server's memory with failed logins, or make a browser or proxy keep a copy
//! of a token.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{CloudlawProcess, cloudlaw, spawn_with, test_config};

/// Reads until the server closes the connection (or `limit` passes); returns
/// what was read and whether it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), false);
    config.http.header_timeout_secs = 1;
    let app = spawn_with(config, dir).await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        // Says nothing at all.
        let mut silent = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5));
        assert!(closed, "a silent connection stays open");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

        // Trickles its headers, a byte every 200 ms (slowloris).
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
        let started = Instant::now();
        let mut closed = false;
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter().cycle().take(100) {
            std::thread::sleep(Duration::from_millis(200));
            if slow.write_all(&[*byte]).is_err() {
                closed = true;
                break;
            }
            let (_, gone) = read_until_closed(&mut slow, Duration::from_millis(1));
            if gone {
                closed = true;
                break;
            }
        }
        assert!(closed, "a slowloris connection stays open");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

        // A real request is answered; the connection, then idle, is closed.
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(5));
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        assert!(closed, "an idle keep-alive connection stays open");
    })
    .await
    .unwrap();
    app.stop().await;
}

fn refused_so_far(metrics: &str) -> u64 {
    let line = metrics.lines().find(|l| l.starts_with("cloudlaw_http_connections_refused_total")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn one_address_holds_a_bounded_number_of_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), false);
    config.http.max_connections_per_address = 3;
    config.http.header_timeout_secs = 3;
    let app = spawn_with(config, dir).await;
    let addr = app.addr;
    // A client that keeps no idle connection, so that it holds none of the three.
    let once = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let metrics = || async { once.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    // The start-up check's pooled connections time out first.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let refused_before = refused_so_far(&metrics().await);
    tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // Let the server take them in before the next one.
        std::thread::sleep(Duration::from_millis(300));
        let mut fourth = TcpStream::connect(addr).unwrap();
        let _ = fourth.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let (answer, closed) = read_until_closed(&mut fourth, Duration::from_secs(2));
        assert!(
            closed && answer.is_empty(),
            "a fourth connection was served: {}",
            String::from_utf8_lossy(&answer)
        );
        // One goes; another may come.
        drop(held);
        std::thread::sleep(Duration::from_millis(300));
        let mut again = TcpStream::connect(addr).unwrap();
        again.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let (answer, _) = read_until_closed(&mut again, Duration::from_secs(5));
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    })
    .await
    .unwrap();
    // The counter is the process's; other tests in this binary refuse none.
    assert_eq!(refused_so_far(&metrics().await), refused_before + 1);
    app.stop().await;
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Forty failed logins, eight at a time, for names that do not exist, once
/// grew the server by half a gigabyte for good. The hashing threads now reuse
/// their memory: the growth stays under 50 MiB (two 19 MiB Argon2 buffers).
#[tokio::test]
async fn failed_logins_do_not_grow_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = cloudlaw();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("CLOUDLAW_AUTH__MAX_FAILED_LOGINS_PER_ACCOUNT", "100000")
        .env("CLOUDLAW_AUTH__MAX_FAILURES_PER_ADDRESS", "100000");
    let mut server = CloudlawProcess::start(command);
    let addr = server.wait_listening();
    let pid = server.child.id();
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/auth/login");
    // One request first, so that what is measured is the logins, not the first request's set-up.
    http.get(format!("http://{addr}/healthz")).send().await.unwrap();
    let before = resident_kib(pid);
    for round in 0..5 {
        let mut batch = Vec::new();
        for i in 0..8 {
            let (http, url) = (http.clone(), url.clone());
            batch.push(tokio::spawn(async move {
                let body = json!({"username": format!("nobody-{round}-{i}"), "password": "wrong-password"});
                http.post(url).json(&body).send().await.unwrap().status().as_u16()
            }));
        }
        for answer in batch {
            assert_eq!(answer.await.unwrap(), 401);
        }
    }
    let after = resident_kib(pid);
    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    assert!(grown_mib < 50.0, "resident set grew {grown_mib:.1} MiB ({before} KiB to {after} KiB)");
    server.terminate();
}

#[tokio::test]
async fn tokens_and_personal_data_are_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(test_config(dir.path(), true), dir).await;
    let login = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": "demo-lawyer", "password": "demo-pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()["cache-control"], "no-store");
    assert_eq!(login.headers()["x-content-type-options"], "nosniff");
    let tokens: serde_json::Value = login.json().await.unwrap();
    let refresh = app
        .http
        .post(app.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 200);
    assert_eq!(refresh.headers()["cache-control"], "no-store");
    let me = app.get("/api/me", tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me.headers()["cache-control"], "no-store");
    let refused = app.get("/api/me", "not-a-token").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["cache-control"], "no-store");
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");

    // The apps may connect only to the origin they came from.
    let page = app.http.get(app.url("/lawyer")).send().await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let host = format!("127.0.0.1:{}", app.addr.port());
    assert!(policy.contains(&format!("connect-src 'self' ws://{host} wss://{host};")), "{policy}");
    assert!(!policy.contains(" ws: ") && !policy.contains("wss:;"), "{policy}");
    let forged =
        app.http.get(app.url("/lawyer")).header("host", "evil\"; script-src *").send().await.unwrap();
    let policy = forged.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("connect-src 'self';") && !policy.contains("evil"), "{policy}");
    app.stop().await;
}

#[tokio::test]
async fn bad_query_strings_get_the_json_error_after_authorization() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(test_config(dir.path(), true), dir).await;
    let coordinator = app.token("demo-coordinator").await;
    let admin = app.token("demo-admin").await;
    // Who may not ask learns that, not what the parameters are.
    assert_eq!(app.get("/api/audit?limit=abc", &coordinator).await.status(), 403);
    assert_eq!(app.get("/api/audit?limit=abc", "").await.status(), 401);
    for (path, token) in [
        ("/api/audit?limit=abc", &admin),
        ("/api/audit?limit=0", &admin),
        ("/api/reports/consultations", &coordinator),
        ("/api/regions/demo-garze/coverage?from=2026-12-01", &coordinator),
        ("/api/appointments/slots?language=bo", &coordinator),
    ] {
        let answer = app.get(path, token).await;
        assert_eq!(answer.status(), 400, "{path}");
        assert_eq!(answer.headers()["content-type"], "application/json", "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
    }
    // axum's own answers take the same shape: a method the route lacks, a path that does not decode.
    let wrong_method = app.http.delete(app.url("/api/me")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert!(wrong_method.headers().contains_key("allow"));
    let body: serde_json::Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let undecodable = app.get("/api/accounts/%FF%FE", &admin).await;
    assert_eq!(undecodable.status(), 400);
    let body: serde_json::Value = undecodable.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    // A plain GET of the WebSocket: who is asking first, then that it is not an upgrade.
    assert_eq!(app.http.get(app.url("/ws")).send().await.unwrap().status(), 401);
    let plain = app.get("/ws", &admin).await;
    assert_eq!(plain.status(), 400);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_websocket");
    app.stop().await;
}

#[tokio::test]
async fn the_document_lists_the_errors_every_operation_can_give() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(test_config(dir.path(), false), dir).await;
    let doc: serde_json::Value =
        app.http.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|r| !r.is_empty())));
            if secured {
                assert!(responses.contains_key("401"), "{method} {path}: 401 not listed");
            }
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("400") && responses.contains_key("413"), "{method} {path}");
            }
            for (status, response) in responses {
                // (`/healthz` answers 503 with its own report.)
                if path.starts_with("/api/") && (status.starts_with('4') || status.starts_with('5')) {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} operations");
    // Query parameters are in the query, with the limits the server enforces.
    let audit = doc["paths"]["/api/audit"]["get"]["parameters"].as_array().unwrap();
    let limit = audit.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["in"], "query");
    assert_eq!(limit["schema"]["maximum"], 500);
    app.stop().await;
}
