//! What a part of this node hands to the other signaling nodes, without
//! knowing whether there are any: the cluster (when there is one) connects
//! the other end. Used by the limits on guessing (`auth`), which sits below
//! the cluster, and by the connection registry (`ws::registry`), which sits
//! above it; the pushes and revocations that travel between nodes are
//! defined here, below both.

use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::ids::{AccountId, TerminalId};

/// What one part of this node tells the other signaling nodes (a revocation,
/// a failed login): nothing while the node runs alone; once the cluster's link has
/// connected it, each item goes to the link, which sends it on (`cluster::Link`).
#[derive(Debug)]
pub struct ToOthers<T>(Mutex<Option<mpsc::UnboundedSender<T>>>);

impl<T> Default for ToOthers<T> {
    fn default() -> Self {
        ToOthers(Mutex::new(None))
    }
}

impl<T> ToOthers<T> {
    pub fn send(&self, item: T) {
        if let Some(link) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = link.send(item);
        }
    }

    /// From now on, items go to `link`.
    pub fn connect(&self, link: mpsc::UnboundedSender<T>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(link);
    }
}

/// Connections to close: a session's, an account's or a terminal's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    pub of: Revoked,
    /// Told to the client in the `revoked` error.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Revoked {
    Session(String),
    Account(AccountId),
    Terminal(TerminalId),
}

/// A push to a person's or a terminal's connections, as it travels to other
/// signaling nodes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pushed {
    /// An account id, or a terminal id when `terminal`.
    pub to: String,
    pub terminal: bool,
    /// The message, as sent to the client.
    pub text: String,
    /// Only to this connection of the owner (by its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<String>,
    /// To every connection of the owner but this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
}
