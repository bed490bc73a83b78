//! The `cloudlaw` binary as an operator runs it: start, serve, stop, and every
//! kind of bad input ending in one clear line and a non-zero exit.

use std::time::Duration;

use crate::support::{CloudlawProcess, cloudlaw, run_to_end};

/// One line on stderr, starting with the program's name, and no panic trace.
fn assert_one_line_error(stderr: &str, mentions: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with("cloudlaw: "), "{stderr}");
    assert!(lines[0].contains(mentions), "{mentions:?} not in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serve_demo_from_any_directory_then_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = cloudlaw();
    command
        .current_dir(elsewhere.path())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("fresh"));
    let mut server = CloudlawProcess::start(command);
    let addr = server.wait_listening();
    assert_ne!(addr.port(), 0, "the bound port is logged, not 0");

    let body = reqwest::blocking::get(format!("http://{addr}/healthz")).unwrap();
    assert_eq!(body.status(), 200);
    let health: serde_json::Value = body.json().unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["backend"], "sqlite");
    assert_eq!(health["relay"]["running"], true);
    let terminal = reqwest::blocking::get(format!("http://{addr}/terminal")).unwrap();
    assert_eq!(terminal.status(), 200, "web assets are embedded, whatever the working directory");
    assert!(data.path().join("fresh/cloudlaw.db").is_file());

    let status = server.terminate();
    assert!(status.success(), "graceful SIGTERM exits 0, got {status:?}; log:\n{}", server.log.join("\n"));
    assert!(server.log.iter().any(|l| l.contains("SIGTERM")), "{}", server.log.join("\n"));
}

#[test]
fn json_logs_carry_request_ids() {
    let data = tempfile::tempdir().unwrap();
    let mut command = cloudlaw();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "info,tower_http=debug");
    let mut server = CloudlawProcess::start(command);
    let addr = server.wait_listening();
    let client = reqwest::blocking::Client::new();
    let response =
        client.get(format!("http://{addr}/healthz")).header("x-request-id", "req-abc-123").send().unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-abc-123", "a caller's request id is kept");
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    for line in &server.log {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
    }
    assert!(
        server.log.iter().any(|l| l.contains("req-abc-123")),
        "the request id appears in the request's log lines:\n{}",
        server.log.join("\n")
    );
}

#[test]
fn migrate_creates_then_reports_up_to_date() {
    let data = tempfile::tempdir().unwrap();
    let mut first = cloudlaw();
    first.args(["migrate", "--data-dir"]).arg(data.path());
    let output = first.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("applied"));
    let mut second = cloudlaw();
    second.args(["migrate", "--data-dir"]).arg(data.path());
    let output = second.output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("0 migration(s)"));
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let mut command = cloudlaw();
    command.args(["serve", "--bogus"]);
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 2);
    assert!(stderr.contains("--bogus"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unwritable_data_dir_is_named() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let bad = file.path().join("inside-a-file");
    let mut command = cloudlaw();
    command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&bad);
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 1);
    assert_one_line_error(&stderr, &bad.display().to_string());
}

#[test]
fn malformed_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloudlaw.toml");
    std::fs::write(&path, "listen = [this is not toml").unwrap();
    let mut command = cloudlaw();
    command.args(["serve", "--config"]).arg(&path);
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 1);
    assert_one_line_error(&stderr, "cloudlaw.toml");

    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n[relay]\nmax_rooms = \"many\"\n").unwrap();
    let mut command = cloudlaw();
    command.args(["serve", "--config"]).arg(&path);
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 1);
    assert_one_line_error(&stderr, "relay.max_rooms");

    let mut command = cloudlaw();
    command.args(["serve", "--config"]).arg(dir.path().join("missing.toml"));
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 1);
    assert_one_line_error(&stderr, "missing.toml: not found");
}

#[test]
fn occupied_port_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let mut command = cloudlaw();
    command.args(["serve", "--listen", &addr, "--data-dir"]).arg(data.path());
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 1);
    assert_one_line_error(&stderr, &addr);
}

#[test]
fn unreachable_database_is_named_without_secrets() {
    let mut command = cloudlaw();
    command.args(["migrate", "--database-url", "sqlite:/nonexistent-dir/sub/cloudlaw.db"]);
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 1);
    assert_one_line_error(&stderr, "cannot open the database");

    let mut command = cloudlaw();
    command.args(["migrate", "--database-url", "mysql://admin:hunter2@127.0.0.1:1/x"]);
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 1);
    assert_one_line_error(&stderr, "database_url");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn demo_refuses_a_public_address() {
    let data = tempfile::tempdir().unwrap();
    let mut command = cloudlaw();
    command.args(["serve", "--demo", "--listen", "0.0.0.0:0", "--data-dir"]).arg(data.path());
    let (code, stderr) = run_to_end(command);
    assert_eq!(code, 1);
    assert_one_line_error(&stderr, "--allow-public-demo");
    assert!(!data.path().join("cloudlaw.db").exists(), "nothing was created");
}

/// Runs `cloudlaw admin create` with a password on standard input.
fn admin_create(data: &std::path::Path, username: &str, password: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cloudlaw()
        .args(["admin", "create", "--username", username, "--display-name", "Bureau IT", "--data-dir"])
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_new_deployment_gets_its_first_admin_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    // Too short a password, a bad username: refused, nothing created.
    let short = admin_create(data.path(), "it.admin", "short");
    assert!(!short.status.success());
    assert_one_line_error(&String::from_utf8_lossy(&short.stderr), "password");
    let bad = admin_create(data.path(), "IT Admin", "a long enough password");
    assert_one_line_error(&String::from_utf8_lossy(&bad.stderr), "username");

    let created = admin_create(data.path(), "it.admin", "a long enough password");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let id = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert_eq!(id.len(), 36, "prints the new account's id: {id}");
    let again = admin_create(data.path(), "it.admin", "another long password");
    assert_one_line_error(&String::from_utf8_lossy(&again.stderr), "exists already");

    // Without --demo, the admin signs in with that password; the audit log says who made it.
    let mut command = cloudlaw();
    command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data.path());
    let mut server = CloudlawProcess::start(command);
    let addr = server.wait_listening();
    let http = reqwest::blocking::Client::new();
    let login = http
        .post(format!("http://{addr}/api/auth/login"))
        .json(&serde_json::json!({"username": "it.admin", "password": "a long enough password"}))
        .send()
        .unwrap();
    assert_eq!(login.status(), 200);
    let body: serde_json::Value = login.json().unwrap();
    assert_eq!(body["account"]["roles"], serde_json::json!(["admin"]));
    let token = body["access_token"].as_str().unwrap();
    let audit: serde_json::Value =
        http.get(format!("http://{addr}/api/audit")).bearer_auth(token).send().unwrap().json().unwrap();
    let rows = audit.as_array().or_else(|| audit["rows"].as_array()).expect("audit rows");
    assert!(
        rows.iter()
            .any(|r| r["action"] == "account.created" && r["actor"] == "cli" && r["subject"] == id.as_str()),
        "{audit}"
    );
    assert!(server.terminate().success());
}
