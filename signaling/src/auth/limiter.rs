//! Counting failed attempts (logins, enrollments) per key over a window.
//!
//! Past the limit, attempts are refused before any password is checked, so a
//! guessing run costs the server almost nothing and learns nothing. Counts are
//! per process; with several signaling nodes each tells the others of its
//! failures and of accounts' successful logins
//! ([`super::Limits::share_outcomes`]), which they count too
//! ([`FailureLimiter::failed_elsewhere`], [`FailureLimiter::clear`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct FailureLimiter {
    window: Duration,
    max: u32,
    // A std mutex: held only for a map lookup, never across an await.
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    started: Instant,
    failures: u32,
}

/// A refusal: when to try again, and whether this is the first refusal of the
/// window (worth an audit row; the rest are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after_secs: u64,
    pub first: bool,
}

const MAX_KEYS: usize = 100_000;

impl FailureLimiter {
    pub fn new(window: Duration, max: u32) -> Self {
        Self { window, max, entries: Mutex::new(HashMap::new()) }
    }

    /// Counts an attempt for `key` before it is checked, or refuses it when the
    /// key has used up its attempts in the current window. Counting first means
    /// that concurrent attempts cannot all slip in before any of them fails; an
    /// attempt that succeeds is handed back with [`FailureLimiter::succeeded`].
    pub fn attempt(&self, key: &str, now: Instant) -> Result<(), Blocked> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = self.current(&mut entries, key, now);
        if entry.failures < self.max {
            entry.failures += 1;
            return Ok(());
        }
        let first = entry.failures == self.max;
        // Count refusals too, so `first` is true once per window.
        entry.failures = entry.failures.saturating_add(1);
        let elapsed = now.saturating_duration_since(entry.started);
        Err(Blocked { retry_after_secs: self.window.saturating_sub(elapsed).as_secs().max(1), first })
    }

    /// Another signaling node saw a failed attempt for `key`: it counts here
    /// too (up to the limit, so that the next attempt here is this node's
    /// first refusal).
    pub fn failed_elsewhere(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = self.current(&mut entries, key, now);
        entry.failures = (entry.failures + 1).min(self.max);
    }

    /// The entry of `key` in the current window (a new one when the last
    /// window has passed), making room when there are too many keys.
    fn current<'a>(&self, entries: &'a mut HashMap<String, Entry>, key: &str, now: Instant) -> &'a mut Entry {
        if entries.len() >= MAX_KEYS {
            let window = self.window;
            entries.retain(|_, e| now.saturating_duration_since(e.started) < window);
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry { started: now, failures: 0 });
        if now.saturating_duration_since(entry.started) >= self.window {
            *entry = Entry { started: now, failures: 0 };
        }
        entry
    }

    /// An attempt counted by [`FailureLimiter::attempt`] succeeded: it no longer counts.
    pub fn succeeded(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(key) {
            entry.failures = entry.failures.saturating_sub(1);
        }
    }

    /// Forgets a key (a correct password ends an account's run of failures).
    pub fn clear(&self, key: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_until_the_window_passes() {
        let limiter = FailureLimiter::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.attempt("k", t0).is_ok());
        }
        let blocked = limiter.attempt("k", t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(blocked, Blocked { retry_after_secs: 50, first: true });
        assert!(!limiter.attempt("k", t0 + Duration::from_secs(11)).unwrap_err().first);
        assert!(limiter.attempt("other", t0).is_ok(), "keys are independent");
        assert!(limiter.attempt("k", t0 + Duration::from_secs(60)).is_ok(), "a new window");
    }

    #[test]
    fn concurrent_attempts_cannot_all_slip_in() {
        let limiter = FailureLimiter::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        // A thousand attempts arriving together, none finished yet.
        let admitted = (0..1000).filter(|_| limiter.attempt("k", t0).is_ok()).count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn successes_are_handed_back_and_clear_forgets() {
        let limiter = FailureLimiter::new(Duration::from_secs(60), 1);
        let t0 = Instant::now();
        limiter.attempt("k", t0).unwrap();
        limiter.succeeded("k");
        assert!(limiter.attempt("k", t0).is_ok(), "the success did not count");
        assert!(limiter.attempt("k", t0).is_err());
        limiter.clear("k");
        assert!(limiter.attempt("k", t0).is_ok());
    }

    #[test]
    fn failures_elsewhere_count_up_to_the_limit() {
        let limiter = FailureLimiter::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        limiter.attempt("k", t0).unwrap();
        for _ in 0..5 {
            limiter.failed_elsewhere("k", t0);
        }
        let blocked = limiter.attempt("k", t0).unwrap_err();
        assert!(blocked.first, "this node's first refusal, though the others saw more");
        limiter.failed_elsewhere("other", t0);
        limiter.failed_elsewhere("other", t0);
        assert!(limiter.attempt("other", t0).is_ok());
        assert!(limiter.attempt("other", t0).is_err());
        assert!(limiter.attempt("other", t0 + Duration::from_secs(60)).is_ok(), "a new window");
    }
}
