//! Phone lines: which of a region's phone-line terminals a call holds. A
//! line is held for the whole call (waiting, talking, rating) and let go when
//! the call ends, so a line never has two callers' requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::tokens::{TokenKind, Tokens};
use crate::ids::{RegionId, TerminalId};
use crate::store::{Store, StoreError};

/// A device token for a line lives this long: it is checked when the call's
/// connection opens, and the connection lasts the call.
const LINE_TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Clone)]
pub struct Lines {
    store: Store,
    tokens: Tokens,
    /// Lines held by calls, and their regions.
    busy: Busy,
}

type Busy = Arc<Mutex<HashMap<TerminalId, RegionId>>>;

/// A line held by a call; let go when dropped.
#[derive(Debug)]
pub struct Line {
    pub terminal: TerminalId,
    pub token: String,
    busy: Busy,
}

impl Drop for Line {
    fn drop(&mut self) {
        self.busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.terminal);
    }
}

/// What a free line shows where a caller's masked number was.
const NO_CALLER: &str = "-";

impl Lines {
    pub fn new(store: Store, tokens: Tokens) -> Lines {
        Lines { store, tokens, busy: Arc::default() }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Lets a line go, clearing the caller's number from it.
    pub async fn release(&self, line: Line) {
        if let Err(error) = self.store.set_phone_line_caller(&line.terminal, NO_CALLER).await {
            tracing::warn!(%error, "phone line not cleared");
        }
        drop(line);
    }

    /// A free line of `region`, made if the region has none free (at most
    /// `limit` lines a region), showing `caller` (a masked number).
    pub async fn take(
        &self,
        region: &RegionId,
        caller: &str,
        limit: usize,
    ) -> Result<Option<Line>, StoreError> {
        let busy_here = {
            let busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            busy.values().filter(|r| *r == region).count()
        };
        // One more than are busy here; once more if another call took the free one meanwhile.
        let mut chosen = None;
        for want in [busy_here + 1, busy_here + 2] {
            let lines = self.store.phone_lines(region, want.min(limit)).await?;
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            chosen = lines.into_iter().find(|line| !busy.contains_key(&line.id));
            if let Some(line) = &chosen {
                busy.insert(line.id.clone(), region.clone());
                break;
            }
        }
        let Some(line) = chosen else { return Ok(None) };
        let held = Line { terminal: line.id.clone(), token: String::new(), busy: Arc::clone(&self.busy) };
        self.store.set_phone_line_caller(&line.id, caller).await?;
        let Some(credential) = line.credential_id else { return Ok(None) };
        let (token, _) = self.tokens.issue(TokenKind::Device, &line.id, &credential, LINE_TOKEN_TTL, None);
        let mut held = held;
        held.token = token;
        Ok(Some(held))
    }
}
