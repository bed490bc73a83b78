//! How long what residents and volunteers told us is kept (`[retention]`),
//! and the sweep that deletes what has expired: at start and then every
//! `sweep_hours`, on the node that serves. Each sweep appends one audit row
//! saying how many of each kind went (zeros too, so the log shows it ran).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{Expiry, Store, StoreError, Swept};

/// A proposal nobody answered within this is gone (the kiosk's resident has left).
pub const PROPOSAL_SECS: i64 = 30 * 60;

const DAY: i64 = 86_400;

/// Days each kind is kept; 0 keeps it for ever.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// A consultation's written record (the lawyer's summary), from the
    /// consultation's end; the counts (who, when, how long, the rating) stay.
    pub record_days: u32,
    /// A closed referral, with its caseworkers' notes, from its closing.
    pub referral_days: u32,
    /// The contact a resident gave for a referral, from the referral's closing.
    pub contact_days: u32,
    /// Hours between sweeps (1 to 168).
    pub sweep_hours: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { record_days: 5 * 365, referral_days: 5 * 365, contact_days: 30, sweep_hours: 24 }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=168).contains(&self.sweep_hours) {
            return Err("retention.sweep_hours: 1 to 168".into());
        }
        if self.contact_days > self.referral_days && self.referral_days > 0 {
            return Err(
                "retention.contact_days: not longer than referral_days (the referral goes with it)".into()
            );
        }
        Ok(())
    }

    /// What has expired at `now`.
    pub fn expiry(&self, now: i64) -> Expiry {
        let before = |days: u32| (days > 0).then(|| now - i64::from(days) * DAY);
        Expiry {
            records_before: before(self.record_days),
            referrals_before: before(self.referral_days),
            contacts_before: before(self.contact_days),
            proposals_before: now - PROPOSAL_SECS,
        }
    }
}

/// One sweep, as of now.
pub async fn sweep(store: &Store, config: &RetentionConfig) -> Result<Swept, StoreError> {
    store.sweep_expired(&config.expiry(crate::unix_now())).await
}

/// Sweeps at once (beside serving: a sweep after a long pause may take a
/// while), then every `sweep_hours`, for as long as the task runs.
pub async fn run(store: Store, config: RetentionConfig) {
    let mut every = tokio::time::interval(Duration::from_secs(u64::from(config.sweep_hours) * 3600));
    loop {
        every.tick().await;
        match sweep(&store, &config).await {
            Ok(swept) if swept.any() => tracing::info!(?swept, "retention: expired data deleted"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention: the sweep failed; it runs again later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_keeps_for_ever_and_the_proposals_always_expire() {
        let config = RetentionConfig { record_days: 0, referral_days: 10, contact_days: 2, sweep_hours: 24 };
        let expiry = config.expiry(100 * DAY);
        assert_eq!(expiry.records_before, None);
        assert_eq!(expiry.referrals_before, Some(90 * DAY));
        assert_eq!(expiry.contacts_before, Some(98 * DAY));
        assert_eq!(expiry.proposals_before, 100 * DAY - PROPOSAL_SECS);
        assert!(config.validate().is_ok());
        assert!(RetentionConfig { contact_days: 11, ..config.clone() }.validate().is_err());
        assert!(RetentionConfig { sweep_hours: 0, ..config }.validate().is_err());
    }
}
