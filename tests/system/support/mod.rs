//! Helpers for whole-system tests: a real server on a free port with a fresh
//! data directory, in process ([`spawn_app`]) or as the real `cloudlaw` binary
//! ([`CloudlawProcess`]).
//!
//! Set `TEST_LOG=1` to see the server's logs. With `TEST_POSTGRES_URL` set
//! (a superuser URL; `scripts/test` sets it for its PostgreSQL pass), every test
//! server runs on a PostgreSQL database of its own instead of SQLite.

#![allow(dead_code)]

use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use signaling::config::Config;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running inside the test process.
#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub data_dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), signaling::startup::StartupError>>>,
}

/// A configuration for tests: loopback, port 0, a relay on a free UDP port.
pub fn test_config(data_dir: &Path, demo: bool) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        demo,
        database_url: postgres_for(data_dir).map(Into::into),
        ..Config::default()
    };
    config.relay.udp_listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// On a PostgreSQL run, the URL of the database belonging to the test whose
/// data directory is `data_dir` (created on first use, so every handle a test
/// opens finds the same one); `None` on SQLite.
pub fn postgres_for(data_dir: &Path) -> Option<String> {
    std::env::var_os("TEST_POSTGRES_URL")?;
    let mut hasher = std::hash::DefaultHasher::new();
    data_dir.hash(&mut hasher);
    let name = format!("sys_{:016x}", hasher.finish());
    // Callers are sync and often inside a runtime: create it on a thread of its own.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(signaling::store::test_database(&name))
            })
            .join()
            .unwrap()
    })
}

/// The `cloudlaw` arguments that name the database of the test whose data
/// directory is `data_dir`, as an operator would pass them.
pub fn database_args(data_dir: &Path) -> Vec<OsString> {
    match postgres_for(data_dir) {
        Some(url) => vec!["--database-url".into(), url.into()],
        None => vec!["--data-dir".into(), data_dir.into()],
    }
}

/// [`database_args`], with the data directory also on PostgreSQL: where the
/// audit key and checkpoints are.
pub fn data_args(data_dir: &Path) -> Vec<OsString> {
    let mut args = vec!["--data-dir".into(), data_dir.into()];
    if let Some(url) = postgres_for(data_dir) {
        args.extend(["--database-url".into(), url.into()]);
    }
    args
}

/// The server's database, opened directly, to look at or tamper with rows the
/// API does not show. Statements use `$1` placeholders, which both accept.
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    pub async fn open(data_dir: &Path) -> Db {
        match postgres_for(data_dir) {
            Some(url) => Db::Postgres(sqlx::PgPool::connect(&url).await.unwrap()),
            None => {
                let options =
                    sqlx::sqlite::SqliteConnectOptions::new().filename(data_dir.join("cloudlaw.db"));
                Db::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
            }
        }
    }
}

/// Runs `$body` with `$pool` bound to the [`Db`]'s pool, whichever it is.
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match &$db {
            $crate::support::Db::Sqlite($pool) => $body,
            $crate::support::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// Starts the whole server with demo data and waits until `/healthz` says ok.
pub async fn spawn_app() -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(data_dir.path(), true);
    spawn_with(config, data_dir).await
}

pub async fn spawn_with(config: Config, data_dir: TempDir) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        signaling::telemetry::init(&config.log);
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(signaling::startup::serve(config, listener, async move {
        let _ = rx.await;
    }));
    let app = TestApp {
        addr,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        data_dir,
        shutdown: Some(tx),
        task: Some(task),
    };
    app.wait_healthy().await;
    app
}

impl TestApp {
    /// A second handle on the server's database, as an operator's tool would open it.
    pub async fn store(&self) -> signaling::store::Store {
        let config = test_config(self.data_dir.path(), false);
        signaling::store::Store::open(&config).await.expect("open store")
    }

    /// Waits (up to 10 s) for the retention sweep the server runs as it
    /// starts, beside serving, to have written its audit row: tests that
    /// count the audit log's rows count it too.
    pub async fn swept_at_start(&self) {
        let store = self.store().await;
        let swept = async {
            while !store.audit_rows(0, 1000).await.unwrap().iter().any(|r| r.action == "retention.swept") {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), swept).await.expect("the sweep at start");
        store.close().await;
    }

    /// Signs in; panics unless it works. Returns the token response.
    pub async fn login(&self, username: &str) -> serde_json::Value {
        let response = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({"username": username, "password": "demo-pass"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login as {username}");
        response.json().await.unwrap()
    }

    /// An access token for any account and password.
    pub async fn token_for(&self, username: &str, password: &str) -> String {
        let response = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login as {username}");
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An access token for a demo account.
    pub async fn token(&self, username: &str) -> String {
        self.login(username).await["access_token"].as_str().unwrap().to_owned()
    }

    /// A room token for `username` signed with the server's keys, as an
    /// operator's `cloudlaw rooms token` (or, later, a consultation) issues it.
    pub async fn room_token(&self, username: &str, room: &str, publish: &[&str], ttl: Duration) -> String {
        use signaling::auth::tokens::{RoomGrant, TokenKind, Tokens};
        let store = self.store().await;
        let account = store.account_by_username(username).await.unwrap().unwrap();
        let tokens = Tokens::load(store, test_config(self.data_dir.path(), false).auth).await.unwrap();
        let grant = RoomGrant {
            room: room.into(),
            publish: publish.iter().map(|k| k.to_string()).collect(),
            relay: None,
        };
        tokens.issue(TokenKind::Room, &account.id, room, ttl, Some(grant)).0
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: serde_json::Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    /// Enrolls the demo terminal; returns its device token and id.
    pub async fn enroll_demo_terminal(&self) -> (String, String) {
        let response = self
            .http
            .post(self.url("/api/terminals/enroll"))
            .json(&serde_json::json!({"code": "DEMO-TERMINAL-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        (
            body["device_token"].as_str().unwrap().to_owned(),
            body["terminal"]["id"].as_str().unwrap().to_owned(),
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(self.url("/healthz")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "server did not become healthy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server gracefully, checks that it ended without error, and
    /// hands back its data directory (to start again on it, or look inside).
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let ended = self.task.take().unwrap().await.expect("server task panicked");
        ended.expect("server ended with an error");
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.data_dir, placeholder)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Sends `request` and reads its JSON body (for tests that talk to more than one server).
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The real `cloudlaw` binary, started with arguments, its stderr collected.
#[derive(Debug)]
pub struct CloudlawProcess {
    pub child: Child,
    pub addr: Option<SocketAddr>,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

pub fn cloudlaw() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cloudlaw"));
    command
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env("CLOUDLAW_RELAY__UDP_LISTEN", "127.0.0.1:0");
    command
}

impl CloudlawProcess {
    /// Starts `cloudlaw` and, when it serves, waits for the address it logs.
    pub fn start(mut command: Command) -> CloudlawProcess {
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start cloudlaw");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        CloudlawProcess { child, addr: None, lines: rx, log: Vec::new() }
    }

    /// Reads log lines until one names the listening address.
    pub fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let found = line.split("http://").nth(1).and_then(|rest| {
                        rest.split(|c: char| c.is_whitespace() || c == '"').next()?.parse::<SocketAddr>().ok()
                    });
                    self.log.push(line);
                    if let Some(addr) = found {
                        self.addr = Some(addr);
                        return addr;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("cloudlaw never logged its address; log so far:\n{}", self.log.join("\n"));
    }

    /// Sends SIGTERM and waits for the exit status, collecting the rest of the log.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let status = self.wait(Duration::from_secs(20));
        self.drain();
        status
    }

    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("cloudlaw did not exit in {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
    }
}

impl Drop for CloudlawProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cloudlaw` to completion; returns the exit code and standard error.
pub fn run_to_end(mut command: Command) -> (i32, String) {
    let output = command.stdin(Stdio::null()).output().expect("run cloudlaw");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}
