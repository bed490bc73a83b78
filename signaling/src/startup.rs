//! Building and running the whole server.
//!
//! [`serve`] is given a bound listener and a shutdown future, so `main` decides
//! where to listen and what stops it, and tests start the real server on port 0
//! and stop it when they are done.

use std::future::Future;
use std::sync::Arc;

use std::net::SocketAddr;

use crate::relay::{RelayStartError, Relays};
use tokio::net::TcpListener;

use crate::auth::Limits;
use crate::auth::tokens::{KeyError, Tokens};
use crate::config::Config;
use crate::demo::{self, DemoError};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::schedule::{Scheduler, reminders};
use crate::store::{Store, StoreError};
use crate::ws::registry::Connections;

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
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
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
/// requests, stops the relay and closes the database.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let store = prepare_store(&config).await?;
    let lease = store.serving_lease().await?.ok_or(StoreError::AlreadyServed)?;
    let tokens = Tokens::load(store.clone(), config.auth.clone()).await?;
    tokio::task::spawn_blocking(http::warm_up);
    let relays = Relays::start(&config, &tokens, &store).await?;
    let metrics = Arc::new(Metrics::new(relays.clone(), store.backend()));
    let scheduler = Arc::new(Scheduler::new(store.clone(), config.schedule.clone()));
    let connections: Arc<Connections> = Arc::default();
    let (live, dispatcher) = crate::live::Live::start(
        config.live.clone(),
        store.clone(),
        tokens.clone(),
        relays.clone(),
        Arc::clone(&connections),
        Arc::clone(&scheduler),
        Arc::clone(&metrics),
    )
    .await?;
    let reminders = tokio::spawn(reminders::run(
        store.clone(),
        Arc::clone(&connections),
        live.clone(),
        config.schedule.reminder_minutes,
        std::time::Duration::from_secs(config.schedule.reminder_check_secs.into()),
    ));
    for missing in config.web.missing_fonts() {
        tracing::warn!(
            path = %missing.display(),
            "Tibetan webfont not found: kiosks without a Tibetan system font will not render Tibetan \
             (install Debian's fonts-noto-core, or set web.font_dir)"
        );
    }
    let state = AppState {
        limits: Limits::new(&config.auth),
        config: Arc::new(config),
        store: store.clone(),
        relays: relays.clone(),
        metrics,
        tokens,
        connections,
        scheduler,
        live,
    };
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "cloudlaw listening on http://{addr}");
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    tracing::info!("shutting down");
    reminders.abort();
    dispatcher.abort();
    relays.shutdown().await;
    drop(lease);
    store.close().await;
    served?;
    Ok(())
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
