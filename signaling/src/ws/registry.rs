//! Open WebSocket connections by owner, so that revoking a session,
//! deactivating an account or revoking a terminal closes its connections at
//! once, and so that the server can push a message to a person or a terminal.
//!
//! Within one process. With several signaling nodes, the pushes of the node
//! that runs the live path also go to the others ([`Connections::fan_out`],
//! [`crate::cluster`]), which deliver them to their own connections, and a
//! revocation made on one node closes the connections it names on all
//! ([`Connections::share_revocations`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::{Message, Utf8Bytes};
use tokio::sync::{mpsc, oneshot};

use super::protocol::ServerMessage;
use crate::cluster::LocalConnections;
use crate::ids::{AccountId, TerminalId};
use crate::live::{Notice, Outlet, Reach, To};
pub use crate::outbox::{Pushed, Revocation, Revoked};

/// The reason that closes a connection for its client to reconnect at once
/// (close code 1012), not because its credentials were revoked: the node that
/// runs the live path changed, and every connection announces itself again.
pub const RECONNECT: &str = "reconnect";

/// Who holds a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Account { account_id: AccountId, session_id: String },
    Terminal { terminal_id: TerminalId },
}

#[derive(Debug)]
struct Entry {
    owner: Owner,
    /// The connection's id (as in `welcome`).
    connection: String,
    kick: oneshot::Sender<String>,
    /// The connection's outgoing queue (bounded; see `ws::SEND_QUEUE`).
    outbox: Option<mpsc::Sender<Message>>,
}

#[derive(Debug, Default)]
pub struct Connections {
    next: AtomicU64,
    // A std mutex: held for map operations only, never across an await.
    open: Mutex<Open>,
    /// Where pushes also go, for other signaling nodes' connections.
    fanout: Mutex<Option<mpsc::UnboundedSender<Pushed>>>,
    /// Where revocations also go, for other signaling nodes' connections.
    revocations: crate::outbox::ToOthers<Revocation>,
}

/// The open connections, and their ids by account or terminal, so that a
/// push to one person does not look at every connection.
#[derive(Debug, Default)]
struct Open {
    entries: HashMap<u64, Entry>,
    by_owner: HashMap<String, Vec<u64>>,
}

impl Owner {
    /// The account or terminal id (they are UUIDs: they never collide).
    fn key(&self) -> &str {
        match self {
            Owner::Account { account_id, .. } => account_id,
            Owner::Terminal { terminal_id } => terminal_id,
        }
    }
}

impl Open {
    fn insert(&mut self, id: u64, entry: Entry) {
        self.by_owner.entry(entry.owner.key().to_owned()).or_default().push(id);
        self.entries.insert(id, entry);
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        let key = entry.owner.key();
        if let Some(ids) = self.by_owner.get_mut(key) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_owner.remove(key);
            }
        }
        Some(entry)
    }
}

/// A registered connection; unregisters itself when dropped.
#[derive(Debug)]
pub struct Registration<'a> {
    id: u64,
    connections: &'a Connections,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.connections.open.lock().unwrap_or_else(|p| p.into_inner()).remove(self.id);
    }
}

impl Connections {
    /// Registers a connection; the receiver yields a reason when it must close.
    /// Pushed messages go into `outbox`.
    pub fn register(
        &self,
        owner: Owner,
        connection: &str,
        outbox: Option<mpsc::Sender<Message>>,
    ) -> (Registration<'_>, oneshot::Receiver<String>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (kick, kicked) = oneshot::channel();
        let entry = Entry { owner, connection: connection.to_owned(), kick, outbox };
        self.open.lock().unwrap_or_else(|p| p.into_inner()).insert(id, entry);
        (Registration { id, connections: self }, kicked)
    }

    /// Queues `message` on this process's connections of the account or
    /// terminal `key` (and hands it to the fan-out, if any); returns how many
    /// connections here took it.
    fn push_to_owner(&self, key: &str, message: &ServerMessage, terminal: bool, reach: &Reach) -> usize {
        let Ok(text) = serde_json::to_string(message) else { return 0 };
        let (only, except) = match reach {
            Reach::All => (None, None),
            Reach::Only(c) => (Some(c.clone()), None),
            Reach::Except(c) => (None, Some(c.clone())),
        };
        let pushed = Pushed { to: key.to_owned(), terminal, text, only, except };
        if let Some(fanout) = self.fanout.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = fanout.send(pushed.clone());
        }
        self.deliver(&pushed)
    }

    /// Queues a push on this process's connections of its owner; returns how
    /// many took it. A connection whose queue is full is skipped (it is being
    /// disconnected for not reading).
    pub fn deliver(&self, pushed: &Pushed) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ids) = open.by_owner.get(&pushed.to) else { return 0 };
        let text = Utf8Bytes::from(pushed.text.as_str());
        let matches = |e: &Entry| {
            matches!(e.owner, Owner::Terminal { .. }) == pushed.terminal
                && pushed.only.as_ref().is_none_or(|c| *c == e.connection)
                && pushed.except.as_ref().is_none_or(|c| *c != e.connection)
        };
        ids.iter()
            .filter_map(|id| open.entries.get(id))
            .filter(|e| matches(e))
            .filter_map(|e| e.outbox.as_ref())
            .filter(|outbox| outbox.try_send(Message::Text(text.clone())).is_ok())
            .count()
    }

    pub fn push_to_account(&self, account_id: &AccountId, message: &ServerMessage) -> usize {
        self.push_to_owner(account_id, message, false, &Reach::All)
    }

    /// Pushes to some of an account's connections: the one that asked, or the others.
    pub fn push_to_account_reach(
        &self,
        account_id: &AccountId,
        reach: &Reach,
        message: &ServerMessage,
    ) -> usize {
        self.push_to_owner(account_id, message, false, reach)
    }

    pub fn push_to_terminal(&self, terminal_id: &TerminalId, message: &ServerMessage) -> usize {
        self.push_to_owner(terminal_id, message, true, &Reach::All)
    }

    /// From now on, every push also goes to `fanout` (or, with `None`, no
    /// longer): the node that runs the live path sends its pushes to the
    /// other nodes this way.
    pub fn fan_out(&self, fanout: Option<mpsc::UnboundedSender<Pushed>>) {
        *self.fanout.lock().unwrap_or_else(|p| p.into_inner()) = fanout;
    }

    /// Closes every connection whose owner matches; returns how many.
    pub fn close_where(&self, reason: &str, matches: impl Fn(&Owner) -> bool) -> usize {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let ids: Vec<u64> =
            open.entries.iter().filter(|(_, e)| matches(&e.owner)).map(|(id, _)| *id).collect();
        for id in &ids {
            if let Some(entry) = open.remove(*id) {
                let _ = entry.kick.send(reason.to_owned());
            }
        }
        ids.len()
    }

    /// Closes the connections of a revoked session, on this node and (with
    /// several nodes) on the others.
    pub fn close_session(&self, session_id: &str, reason: &str) -> usize {
        self.revoke(Revocation { of: Revoked::Session(session_id.to_owned()), reason: reason.to_owned() })
    }

    pub fn close_account(&self, account_id: &AccountId, reason: &str) -> usize {
        self.revoke(Revocation { of: Revoked::Account(account_id.clone()), reason: reason.to_owned() })
    }

    pub fn close_terminal(&self, terminal_id: &TerminalId, reason: &str) -> usize {
        self.revoke(Revocation { of: Revoked::Terminal(terminal_id.clone()), reason: reason.to_owned() })
    }

    fn revoke(&self, revocation: Revocation) -> usize {
        self.revocations.send(revocation.clone());
        self.apply(&revocation)
    }

    /// Closes this node's connections that `revocation` names; returns how many.
    pub fn apply(&self, revocation: &Revocation) -> usize {
        let reason = revocation.reason.as_str();
        match &revocation.of {
            Revoked::Session(id) => {
                self.close_where(reason, |o| matches!(o, Owner::Account { session_id: s, .. } if s == id))
            }
            Revoked::Account(id) => {
                self.close_where(reason, |o| matches!(o, Owner::Account { account_id: a, .. } if a == id))
            }
            Revoked::Terminal(id) => {
                self.close_where(reason, |o| matches!(o, Owner::Terminal { terminal_id: t } if t == id))
            }
        }
    }

    /// From now on, revocations made here also go to `others`, for the other
    /// signaling nodes to close their connections too.
    pub fn share_revocations(&self, others: mpsc::UnboundedSender<Revocation>) {
        self.revocations.connect(others);
    }

    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the cluster does with this node's connections.
impl LocalConnections for Connections {
    fn deliver(&self, pushed: &Pushed) -> usize {
        Connections::deliver(self, pushed)
    }

    fn apply(&self, revocation: &Revocation) -> usize {
        Connections::apply(self, revocation)
    }

    fn share_revocations(&self, others: mpsc::UnboundedSender<Revocation>) {
        Connections::share_revocations(self, others);
    }

    fn fan_out(&self, fanout: Option<mpsc::UnboundedSender<Pushed>>) {
        Connections::fan_out(self, fanout);
    }

    fn reconnect_all(&self) -> usize {
        self.close_where(RECONNECT, |_| true)
    }
}

/// The live path's notices go to the connections of the person or terminal they name.
impl Outlet for Connections {
    fn push(&self, to: &To, notice: &Notice) {
        let message = ServerMessage::Live(notice.clone());
        match to {
            To::Account { account, reach } => self.push_to_account_reach(account, reach, &message),
            To::Terminal(terminal) => self.push_to_terminal(terminal, &message),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_only_what_matches() {
        let connections = Connections::default();
        let owner = |a: &str, s: &str| Owner::Account { account_id: a.into(), session_id: s.into() };
        let (_r1, mut k1) = connections.register(owner("a", "s1"), "c1", None);
        let (_r2, mut k2) = connections.register(owner("a", "s2"), "c2", None);
        let (_r3, mut k3) = connections.register(Owner::Terminal { terminal_id: "t".into() }, "c3", None);
        assert_eq!(connections.close_session("s1", "revoked"), 1);
        assert_eq!(k1.try_recv().as_deref(), Ok("revoked"));
        assert!(k2.try_recv().is_err());
        assert_eq!(connections.close_account(&"a".into(), "deactivated"), 1);
        assert_eq!(k2.try_recv().as_deref(), Ok("deactivated"));
        assert_eq!(connections.close_terminal(&"t".into(), "revoked"), 1);
        assert_eq!(k3.try_recv().as_deref(), Ok("revoked"));
        assert!(connections.is_empty());
    }

    #[test]
    fn pushes_reach_the_owner_only() {
        let connections = Connections::default();
        let (tx, mut rx) = mpsc::channel(4);
        let (other_tx, mut other_rx) = mpsc::channel(4);
        let (_r1, _k1) = connections.register(Owner::Terminal { terminal_id: "t".into() }, "c1", Some(tx));
        let (_r2, _k2) =
            connections.register(Owner::Terminal { terminal_id: "u".into() }, "c2", Some(other_tx));
        let message = ServerMessage::Pong { id: Some("x".into()) };
        assert_eq!(connections.push_to_terminal(&"t".into(), &message), 1);
        assert!(matches!(rx.try_recv(), Ok(Message::Text(t)) if t.as_str().contains("pong")));
        assert!(other_rx.try_recv().is_err());
        assert_eq!(connections.push_to_account(&"t".into(), &message), 0);
    }

    #[test]
    fn a_push_can_reach_one_connection_or_all_but_one() {
        let connections = Connections::default();
        let owner = |s: &str| Owner::Account { account_id: "a".into(), session_id: s.into() };
        let (tx1, mut rx1) = mpsc::channel(4);
        let (tx2, mut rx2) = mpsc::channel(4);
        let (_r1, _k1) = connections.register(owner("s1"), "c1", Some(tx1));
        let (_r2, _k2) = connections.register(owner("s2"), "c2", Some(tx2));
        let message = ServerMessage::Pong { id: None };
        assert_eq!(connections.push_to_account_reach(&"a".into(), &Reach::Only("c2".into()), &message), 1);
        assert!(rx1.try_recv().is_err());
        assert!(rx2.try_recv().is_ok());
        assert_eq!(connections.push_to_account_reach(&"a".into(), &Reach::Except("c2".into()), &message), 1);
        assert!(rx1.try_recv().is_ok());
        assert!(rx2.try_recv().is_err());
    }

    #[test]
    fn revocations_go_to_the_other_nodes_and_apply_there() {
        let here = Connections::default();
        let there = Connections::default();
        let (others, mut shared) = mpsc::unbounded_channel();
        here.share_revocations(others);
        let owner = Owner::Account { account_id: "a".into(), session_id: "s".into() };
        let (_r, mut kicked) = there.register(owner, "c1", None);
        assert_eq!(here.close_session("s", "logged out"), 0);
        let revocation = shared.try_recv().unwrap();
        assert_eq!(revocation.of, Revoked::Session("s".into()));
        assert_eq!(there.apply(&revocation), 1);
        assert_eq!(kicked.try_recv().as_deref(), Ok("logged out"));
    }

    #[test]
    fn dropping_the_registration_unregisters() {
        let connections = Connections::default();
        let (registration, _kicked) =
            connections.register(Owner::Terminal { terminal_id: "t".into() }, "c1", None);
        assert_eq!(connections.len(), 1);
        drop(registration);
        assert!(connections.is_empty());
    }
}
