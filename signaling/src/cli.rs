//! The `cloudlaw` command line.
//!
//! Every failure ends in one line on standard error, `cloudlaw: <what went
//! wrong>`, and a non-zero exit status; usage errors exit with 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, LogOverrides, Overrides};
use crate::startup;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(name = "cloudlaw", version, about = "Cloud Law Office: remote video legal consultations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: API, WebSocket, media relay and web apps.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(CommonArgs),
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The keys that sign tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Media rooms on the relay.
    Rooms {
        #[command(subcommand)]
        command: RoomsCommand,
    },
    /// Administrators' accounts, for a new deployment's first sign-in.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an administrator. The password is read from standard input (one
    /// line), never from the command line, where other users could see it.
    Create(AdminCreateArgs),
}

#[derive(Debug, Args)]
struct AdminCreateArgs {
    /// The sign-in name: 1 to 64 of a-z, 0-9, '.', '_', '-'.
    #[arg(long)]
    username: String,
    /// The name people see.
    #[arg(long)]
    display_name: String,
    /// The administrator's IANA time zone.
    #[arg(long, default_value = "Asia/Shanghai")]
    time_zone: String,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Subcommand)]
enum RoomsCommand {
    /// Print a room token, for checking the media path by hand (a test call
    /// between two browsers). Consultations get theirs from the server.
    Token(RoomTokenArgs),
}

#[derive(Debug, Args)]
struct RoomTokenArgs {
    /// The room to join (any name; it opens on first join).
    #[arg(long)]
    room: String,
    /// Who joins: an account's username or a terminal's id.
    #[arg(long)]
    participant: String,
    /// What the holder may send: audio, video, both (comma-separated) or none.
    #[arg(long, default_value = "audio,video")]
    publish: String,
    /// How long the token may be used to join, in seconds.
    #[arg(long, default_value_t = 300)]
    ttl_secs: u64,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every row's hash and the chain between rows; report the first
    /// row that was altered, removed or inserted. Exit 1 if any was.
    Verify(CommonArgs),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List the signing keys that verify tokens (the first one signs).
    List(CommonArgs),
    /// Create a new signing key. Running servers keep verifying old tokens;
    /// restart them to sign with the new key.
    Rotate(CommonArgs),
    /// Retire a key: every token it signed stops working (sessions and
    /// terminal credentials included).
    Retire {
        /// The key id, as `keys list` shows it.
        kid: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// TOML configuration file (see config.example.toml).
    #[arg(long, short, env = "CLOUDLAW_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the embedded database and other state.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Database URL (default: SQLite in the data directory).
    #[arg(long)]
    database_url: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Seed demo accounts, a region, a terminal and round-the-clock duty hours.
    #[arg(long)]
    demo: bool,
    /// Allow --demo on a non-loopback address (the demo passwords are public).
    #[arg(long, requires = "demo")]
    allow_public_demo: bool,
}

impl CommonArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            log: self.log_format.map(|format| LogOverrides { format }),
            ..Overrides::default()
        }
    }
}

/// Parses the command line and runs it.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            let code = match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 2,
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Migrate(args) => migrate(args).await,
            Command::Audit { command: AuditCommand::Verify(args) } => audit_verify(args).await,
            Command::Keys { command } => keys(command).await,
            Command::Rooms { command: RoomsCommand::Token(args) } => room_token(args).await,
            Command::Admin { command: AdminCommand::Create(args) } => admin_create(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("cloudlaw: {message}");
    ExitCode::FAILURE
}

fn load(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Config, String> {
    let config = Config::load(file, overrides).map_err(|e| e.to_string())?;
    crate::telemetry::init(&config.log);
    Ok(config)
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let overrides = Overrides {
        listen: args.listen,
        demo: args.demo,
        allow_public_demo: args.allow_public_demo,
        ..args.common.overrides()
    };
    let config = load(args.common.config.as_deref(), &overrides)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    startup::serve(config, listener, startup::shutdown_signal()).await.map_err(|e| e.to_string())
}

/// Opens and migrates the configured store, for the one-shot subcommands.
async fn open_store(args: &CommonArgs) -> Result<(Store, usize), String> {
    let config = load(args.config.as_deref(), &args.overrides())?;
    let store = Store::open(&config).await.map_err(|e| e.to_string())?;
    let applied = store.migrate().await.map_err(|e| e.to_string())?;
    Ok((store, applied))
}

async fn migrate(args: CommonArgs) -> Result<(), String> {
    let (store, applied) = open_store(&args).await?;
    store.close().await;
    println!("{applied} migration(s) applied; the database is up to date");
    Ok(())
}

/// Walks the whole chain, then checks it against the signed checkpoints
/// (`[audit]`; the key must be there: without it nothing can be checked).
async fn audit_verify(args: CommonArgs) -> Result<(), String> {
    let config = load(args.config.as_deref(), &args.overrides())?;
    let key_path = config.audit.key_path(&config.data_dir);
    if !key_path.is_file() {
        return Err(format!(
            "no audit key at {} (set [audit] key_file): the checkpoints cannot be checked without it",
            key_path.display()
        ));
    }
    let key = crate::checkpoints::load_or_create_key(&key_path).map_err(|e| e.to_string())?;
    let file = config.audit.checkpoint_path(&config.data_dir);
    let (store, _) = open_store(&args).await?;
    let verdict =
        crate::checkpoints::verify_all(&store, &key.verifying_key(), &file).await.map_err(|e| e.to_string());
    store.close().await;
    match verdict? {
        Ok((rows, checkpoints)) => {
            println!(
                "audit log intact: {rows} row(s), every hash and link checked; {checkpoints} signed checkpoint(s) in {} match",
                file.display()
            );
            Ok(())
        }
        Err(problem) => Err(format!("audit log tampered with: {problem}")),
    }
}

async fn keys(command: KeysCommand) -> Result<(), String> {
    let args = match &command {
        KeysCommand::List(args) | KeysCommand::Rotate(args) | KeysCommand::Retire { common: args, .. } => {
            args
        }
    };
    let (store, _) = open_store(args).await?;
    let result = match &command {
        KeysCommand::List(_) => store.signing_keys().await.map_err(|e| e.to_string()).map(|keys| {
            for (i, key) in keys.iter().enumerate() {
                println!("{}\tcreated {}{}", key.kid, key.created_at, if i == 0 { "\tsigning" } else { "" });
            }
        }),
        KeysCommand::Rotate(_) => crate::auth::tokens::create_signing_key(&store)
            .await
            .map(|key| println!("new signing key {}", key.kid))
            .map_err(|e| e.to_string()),
        KeysCommand::Retire { kid, .. } => {
            let remaining = store.signing_keys().await.map_err(|e| e.to_string())?;
            if remaining.len() == 1 && remaining[0].kid == *kid {
                Err("cannot retire the only signing key; rotate first".to_owned())
            } else {
                match store.retire_signing_key(kid, crate::unix_now()).await {
                    Ok(true) => {
                        println!("retired {kid}");
                        Ok(())
                    }
                    Ok(false) => Err(format!("no unretired key {kid:?}")),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    };
    store.close().await;
    result
}

async fn room_token(args: RoomTokenArgs) -> Result<(), String> {
    let publish: Vec<String> = match args.publish.as_str() {
        "none" | "" => Vec::new(),
        list => list.split(',').map(|k| k.trim().to_owned()).collect(),
    };
    media_relay::session::kinds(&publish)?;
    if args.ttl_secs == 0 || args.ttl_secs > 3600 {
        return Err("--ttl-secs must be between 1 and 3600".into());
    }
    let config = load(args.common.config.as_deref(), &args.common.overrides())?;
    let store = Store::open(&config).await.map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let result = async {
        let subject = match store.account_by_username(&args.participant).await.map_err(|e| e.to_string())? {
            Some(account) => account.id.into_string(),
            None => {
                match store.terminal(&args.participant.as_str().into()).await.map_err(|e| e.to_string())? {
                    Some(terminal) => terminal.id.into_string(),
                    None => return Err(format!("no account or terminal {:?}", args.participant)),
                }
            }
        };
        let tokens = crate::auth::tokens::Tokens::load(store.clone(), config.auth.clone())
            .await
            .map_err(|e| e.to_string())?;
        let grant = crate::auth::tokens::RoomGrant { room: args.room.as_str().into(), publish, relay: None };
        let (token, _) = tokens.issue(
            crate::auth::tokens::TokenKind::Room,
            &subject,
            &args.room,
            std::time::Duration::from_secs(args.ttl_secs),
            Some(grant),
        );
        println!("{token}");
        Ok(())
    }
    .await;
    store.close().await;
    result
}

/// Creates an administrator with a password from standard input.
async fn admin_create(args: AdminCreateArgs) -> Result<(), String> {
    use crate::domain::{check_display_name, check_password, check_time_zone, check_username};
    check_username(&args.username).map_err(|e| e.to_string())?;
    let display_name = check_display_name(&args.display_name).map_err(|e| e.to_string())?;
    check_time_zone(&args.time_zone).map_err(|e| e.to_string())?;
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).map_err(|e| format!("cannot read the password: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    check_password(&password).map_err(|e| e.to_string())?;

    let config = load(args.common.config.as_deref(), &args.common.overrides())?;
    let store = Store::open(&config).await.map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let result = async {
        if store.account_by_username(&args.username).await.map_err(|e| e.to_string())?.is_some() {
            return Err(format!("an account {:?} exists already", args.username));
        }
        let password_hash = crate::password::hash_blocking(password).await.map_err(|e| e.to_string())?;
        let account = crate::store::NewAccount {
            username: args.username.clone(),
            display_name,
            password_hash,
            time_zone: args.time_zone.clone(),
            roles: vec![crate::domain::Role::Admin],
            languages: Vec::new(),
            topics: Vec::new(),
        };
        let audit = crate::store::AuditEntry::new(
            "cli",
            "account.created",
            "",
            serde_json::json!({"username": args.username, "roles": ["admin"]}),
            "cli",
        );
        let id = store.create_account(&account, &[], &audit).await.map_err(|e| e.to_string())?;
        println!("{id}");
        Ok(())
    }
    .await;
    store.close().await;
    result
}
