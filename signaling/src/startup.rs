//! Building and running the whole server.
//!
//! [`serve`] is given a bound listener and a shutdown future, so `main` decides
//! where to listen and what stops it, and tests start the real server on port 0
//! and stop it when they are done.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::relay::{RelayStartError, Relays};

use crate::auth::Limits;
use crate::auth::tokens::{KeyError, Tokens};
use crate::config::Config;
use crate::demo::{self, DemoError};
use crate::http::{self, AppState};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::schedule::Scheduler;
use crate::store::{Store, StoreError};
use crate::ws::registry::Connections;
use crate::ws::reminders;
use crate::{checkpoints, cluster};

/// Why the server could not start or stopped with an error. Each variant's
/// message is one line that names what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("demo data: {0}")]
    Demo(#[from] DemoError),
    #[error("media relay: {0}")]
    Relay(#[from] RelayStartError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Audit(#[from] crate::checkpoints::CheckpointError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("phone: {0}")]
    Phone(String),
    #[error("lost the database connection that holds the serving lease; stopped so that one node serves")]
    LeaseLost,
}

/// Opens and migrates the store, seeds demo data when configured.
pub async fn prepare_store(config: &Config) -> Result<Store, StartupError> {
    let store = Store::open(config).await?;
    let applied = store.migrate().await?;
    if applied > 0 {
        tracing::info!(applied, backend = store.backend(), "database migrated");
    }
    if config.demo {
        let seeded = demo::seed(&store).await?;
        tracing::info!(accounts_created = seeded.accounts_created, "demo data ready");
    }
    Ok(store)
}

/// Runs the server on `listener` until `shutdown` completes, then drains open
/// requests, stops the relays and closes the database.
///
/// On PostgreSQL several `serve`s may share one database. With relay nodes
/// (listed or registering), all of them serve and the one holding the serving
/// lease runs the live path for all ([`serve_cluster`]). With the in-process
/// relay, one is active (it holds the lease and runs the live path) and the
/// others stand by: a standby node answers every request with 503 `standby`
/// (so a proxy in front sends clients to the active one) and becomes active
/// within a second or two of the active one's death, restoring who waits and
/// who talks from the database. A node that loses its connection to the
/// lease stops (its successor may be active already), for systemd to restart.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let store = prepare_store(&config).await?;
    let (stop_tx, stop) = watch::channel(false);
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = on_signal.send(true);
    });
    let addr = listener.local_addr()?;
    let audit =
        checkpoints::start(store.clone(), &config.audit, &config.data_dir, stopped(stop.clone())).await?;
    if store.backend() == "postgres" && config.uses_relay_nodes() {
        return serve_cluster(config, store, listener, stop_tx, stop, audit).await;
    }
    // Active at once when the lease is free (always, on SQLite): everything
    // is ready before the first request, as on a single node.
    let mut lease = store.serving_lease().await?;
    let mut active = match lease {
        Some(_) => Some(activate(&config, &store).await?),
        None => None,
    };
    let first = active.as_ref().map_or_else(|| http::standby_router(store.clone()), |a| a.router.clone());
    let (router_tx, current) = watch::channel(first);
    let app = Router::new().fallback(move |request: axum::extract::Request| {
        let router = current.borrow().clone();
        async move { router.oneshot(request).await.unwrap_or_else(|never| match never {}) }
    });
    let server = {
        let (http, proxies, stop) =
            (config.http.clone(), config.trusted_proxies.clone(), stopped(stop.clone()));
        tokio::spawn(async move { http::server::serve(listener, app, &http, &proxies, stop).await })
    };
    tracing::info!(%addr, "cloudlaw listening on http://{addr}");

    let (lease, active) = match (lease.take(), active.take()) {
        (Some(lease), Some(active)) => (lease, active),
        _ => {
            let lease = tokio::select! {
                lease = wait_for_lease(&store) => lease,
                () = stopped(stop.clone()) => {
                    tracing::info!("shutting down (standby)");
                    let served = server.await;
                    let _ = audit.await;
                    store.close().await;
                    return finished(served);
                }
            };
            let active = match lease {
                Ok(lease) => activate(&config, &store).await.map(|active| (lease, active)),
                Err(error) => Err(error),
            };
            match active {
                Ok(active) => active,
                Err(error) => {
                    let _ = stop_tx.send(true);
                    let _ = server.await;
                    let _ = audit.await;
                    store.close().await;
                    return Err(error);
                }
            }
        }
    };
    let _ = router_tx.send(active.router.clone());
    tracing::info!(backend = store.backend(), "serving: this node runs the live path");
    let phone = match start_phone(&config, &store, &active.parts, addr).await {
        Ok(phone) => phone,
        Err(error) => {
            let _ = stop_tx.send(true);
            let _ = server.await;
            active.dispatcher.abort();
            active.reminders.abort();
            let _ = audit.await;
            store.close().await;
            return Err(error);
        }
    };
    let watchdog = {
        let stop_tx = stop_tx.clone();
        let mut lease = lease;
        tokio::spawn(async move {
            lease.lost().await;
            tracing::error!(
                "lost the connection that holds the serving lease: stopping (another node may serve now)"
            );
            let _ = stop_tx.send(true);
            lease
        })
    };
    let served = server.await;
    tracing::info!("shutting down");
    if let Some(phone) = phone {
        phone.shutdown();
    }
    let lease_lost = watchdog.is_finished();
    watchdog.abort();
    active.reminders.abort();
    active.dispatcher.abort();
    active.relays.shutdown().await;
    // The last checkpoint, after the last request's audit rows.
    let _ = audit.await;
    store.close().await;
    finished(served)?;
    if lease_lost {
        return Err(StartupError::LeaseLost);
    }
    Ok(())
}

/// Waits until this node may serve: at once on SQLite, or when it holds the
/// PostgreSQL serving lease (checked every second).
async fn wait_for_lease(store: &Store) -> Result<crate::store::ServingLease, StartupError> {
    let mut told = false;
    loop {
        if let Some(lease) = store.serving_lease().await? {
            if told {
                tracing::info!("the serving lease is free: taking over");
            }
            return Ok(lease);
        }
        if !told {
            tracing::info!("another node serves this database: standing by");
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// What an active node runs beside its router.
struct Active {
    router: Router,
    parts: Parts,
    relays: Relays,
    dispatcher: tokio::task::JoinHandle<()>,
    reminders: tokio::task::JoinHandle<()>,
}

/// What serves requests on every node, leading or not.
#[derive(Clone)]
struct Parts {
    tokens: Tokens,
    relays: Relays,
    metrics: Arc<Metrics>,
    scheduler: Arc<Scheduler>,
    connections: Arc<Connections>,
    limits: Arc<Limits>,
    /// Set when the phone gateway starts (`start_phone`).
    phone: Arc<std::sync::OnceLock<crate::phone::sip::Dialer>>,
}

async fn parts(config: &Config, store: &Store) -> Result<Parts, StartupError> {
    let tokens = Tokens::load(store.clone(), config.auth.clone()).await?;
    let setup = crate::relay::Setup {
        relay: &config.relay,
        nodes: config.relay_node_list(),
        registration: &config.relay_registration,
    };
    let relays = Relays::start(setup, &tokens, store).await?;
    let metrics = Arc::new(Metrics::new(relays.clone(), store.backend()));
    let scheduler = Arc::new(Scheduler::new(store.clone(), config.schedule.clone()));
    for missing in config.web.missing_fonts() {
        tracing::warn!(
            path = %missing.display(),
            "Tibetan webfont not found: kiosks without a Tibetan system font will not render Tibetan \
             (install Debian's fonts-noto-core, or set web.font_dir)"
        );
    }
    let limits = Limits::new(&config.auth);
    Ok(Parts {
        tokens,
        relays,
        metrics,
        scheduler,
        connections: Arc::default(),
        limits,
        phone: Arc::default(),
    })
}

/// Starts the live path (the dispatcher, its writer, the duty and relay
/// watchers), the appointment reminders and the retention sweeps: the
/// dispatcher's handle, its task, and one task for the reminders and sweeps.
async fn start_live(
    config: &Config,
    store: &Store,
    parts: &Parts,
) -> Result<(Live, tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>), StoreError> {
    let (live, dispatcher) = Live::start(
        config.live.clone(),
        store.clone(),
        parts.tokens.clone(),
        parts.relays.clone(),
        Arc::clone(&parts.connections) as Arc<dyn crate::live::Outlet>,
        Arc::clone(&parts.scheduler),
        Arc::clone(&parts.metrics),
    )
    .await?;
    let reminders = reminders::run(
        store.clone(),
        Arc::clone(&parts.connections),
        live.clone(),
        config.schedule.reminder_minutes,
        std::time::Duration::from_secs(config.schedule.reminder_check_secs.into()),
    );
    let sweeps = crate::retention::run(store.clone(), config.retention.clone());
    let reminders = tokio::spawn(async move {
        tokio::join!(reminders, sweeps);
    });
    Ok((live, dispatcher, reminders))
}

fn router(config: &Config, store: &Store, parts: Parts, live: Live) -> Router {
    http::router(AppState {
        limits: parts.limits,
        config: Arc::new(config.clone()),
        store: store.clone(),
        relays: parts.relays,
        metrics: parts.metrics,
        tokens: parts.tokens,
        connections: parts.connections,
        scheduler: parts.scheduler,
        live,
        phone: parts.phone,
    })
}

/// Starts the live path and everything that serves requests.
async fn activate(config: &Config, store: &Store) -> Result<Active, StartupError> {
    let parts = parts(config, store).await?;
    let (live, dispatcher, reminders) = start_live(config, store, &parts).await?;
    let relays = parts.relays.clone();
    Ok(Active { router: router(config, store, parts.clone(), live), parts, relays, dispatcher, reminders })
}

/// Several nodes on one PostgreSQL database with relay nodes: every node
/// serves, and the one holding the serving lease runs the live path for all
/// of them ([`crate::cluster`]).
async fn serve_cluster(
    config: Config,
    store: Store,
    listener: TcpListener,
    stop_tx: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
    audit: tokio::task::JoinHandle<()>,
) -> Result<(), StartupError> {
    let addr = listener.local_addr()?;
    let parts = parts(&config, &store).await?;
    let (live, commands) = Live::forwarding(config.live.clone());
    let start: cluster::StartLive = {
        let (config, store, parts) = (config.clone(), store.clone(), parts.clone());
        Box::new(move || {
            let (config, store, parts) = (config.clone(), store.clone(), parts.clone());
            Box::pin(async move {
                let (live, dispatcher, reminders) = start_live(&config, &store, &parts).await?;
                Ok((live, vec![dispatcher, reminders]))
            })
        })
    };
    let link = cluster::Link::new(store.clone(), parts.connections.clone(), Arc::clone(&parts.limits), start);
    let relays = parts.relays.clone();
    let phone = start_phone(&config, &store, &parts, addr).await?;
    let app = router(&config, &store, parts, live);
    let mut stopped = stop.clone();
    let server = {
        let (http, proxies) = (config.http.clone(), config.trusted_proxies.clone());
        let stop = async move {
            let _ = stopped.wait_for(|stopped| *stopped).await;
        };
        tokio::spawn(async move { http::server::serve(listener, app, &http, &proxies, stop).await })
    };
    tracing::info!(%addr, "cloudlaw listening on http://{addr} (one of several nodes)");
    let ended = link.run(commands, stop).await;
    let _ = stop_tx.send(true);
    let served = server.await;
    tracing::info!("shutting down");
    if let Some(phone) = phone {
        phone.shutdown();
    }
    relays.shutdown().await;
    let _ = audit.await;
    store.close().await;
    finished(served)?;
    match ended? {
        cluster::Ended::Stopped => Ok(()),
        cluster::Ended::LeaseLost => Err(StartupError::LeaseLost),
    }
}

/// Starts the hotline's SIP gateway when `[phone]` is enabled. Its calls
/// speak to this node's own WebSocket endpoint at `addr`.
async fn start_phone(
    config: &Config,
    store: &Store,
    parts: &Parts,
    addr: std::net::SocketAddr,
) -> Result<Option<crate::phone::sip::Gateway>, StartupError> {
    use crate::phone::{call, lines, sip};
    let phone = &config.phone;
    if !phone.enabled {
        return Ok(None);
    }
    for route in &phone.routes {
        if store.region(&route.region).await?.is_none() {
            return Err(StartupError::Phone(format!(
                "route {}: region {:?} does not exist",
                route.number, route.region
            )));
        }
    }
    let hold = match &phone.hold_audio {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| StartupError::Phone(format!("hold_audio {}: {e}", path.display())))?;
            let samples = crate::phone::audio::read_wav(&bytes)
                .map_err(|e| StartupError::Phone(format!("hold_audio {}: {e}", path.display())))?;
            Some(Arc::new(samples))
        }
        None => None,
    };
    let prompts = call::Prompts::load(&phone.prompts_dir, &config.live.languages);
    for language in &config.live.languages {
        if !prompts.has_language(language) {
            tracing::info!(
                %language,
                dir = %phone.prompts_dir.display(),
                "no phone prompts for this language: its callers reach it by number only"
            );
        }
    }
    let context = Arc::new(call::Context {
        config: phone.clone(),
        languages: config.live.languages.clone(),
        server: addr,
        prompts,
        hold,
        metrics: Arc::clone(&parts.metrics),
    });
    let lines = lines::Lines::new(store.clone(), parts.tokens.clone());
    let gateway = sip::start(context, lines).await.map_err(StartupError::Phone)?;
    let _ = parts.phone.set(gateway.dialer.clone());
    Ok(Some(gateway))
}

fn finished(served: Result<(), tokio::task::JoinError>) -> Result<(), StartupError> {
    served.map_err(|error| StartupError::Io(std::io::Error::other(error)))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}
