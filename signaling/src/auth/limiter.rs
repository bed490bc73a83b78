//! Counting failed attempts (logins, enrollments) per key over a window.
//!
//! Past the limit, attempts are refused before any password is checked, so a
//! guessing run costs the server almost nothing and learns nothing. Counts are
//! per process: with several signaling nodes each keeps its own, which bounds
//! an attacker to (nodes × limit) guesses per window.

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

    /// Err when `key` has used up its failures in the current window.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Blocked> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = entries.get_mut(key) else { return Ok(()) };
        let elapsed = now.saturating_duration_since(entry.started);
        if elapsed >= self.window {
            entries.remove(key);
            return Ok(());
        }
        if entry.failures < self.max {
            return Ok(());
        }
        let first = entry.failures == self.max;
        // Count refusals too, so `first` is true once per window.
        entry.failures = entry.failures.saturating_add(1);
        Err(Blocked { retry_after_secs: (self.window - elapsed).as_secs().max(1), first })
    }

    pub fn fail(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_KEYS {
            let window = self.window;
            entries.retain(|_, e| now.saturating_duration_since(e.started) < window);
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry { started: now, failures: 0 });
        if now.saturating_duration_since(entry.started) >= self.window {
            *entry = Entry { started: now, failures: 0 };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

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
            assert!(limiter.check("k", t0).is_ok());
            limiter.fail("k", t0);
        }
        let blocked = limiter.check("k", t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(blocked, Blocked { retry_after_secs: 50, first: true });
        assert!(!limiter.check("k", t0 + Duration::from_secs(11)).unwrap_err().first);
        assert!(limiter.check("other", t0).is_ok(), "keys are independent");
        assert!(limiter.check("k", t0 + Duration::from_secs(60)).is_ok(), "a new window");
    }

    #[test]
    fn clear_forgets() {
        let limiter = FailureLimiter::new(Duration::from_secs(60), 1);
        let t0 = Instant::now();
        limiter.fail("k", t0);
        assert!(limiter.check("k", t0).is_err());
        limiter.clear("k");
        assert!(limiter.check("k", t0).is_ok());
    }
}
