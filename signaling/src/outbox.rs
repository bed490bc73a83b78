//! What a part of this node hands to the other signaling nodes, without
//! knowing whether there are any: the cluster (when there is one) connects
//! the other end. Used by the limits on guessing (`auth`) and by
//! revocations (`ws::registry`), which sit below the cluster.

use std::sync::Mutex;

use tokio::sync::mpsc;

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
