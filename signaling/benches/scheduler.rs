//! Scheduler benchmark: 5,000 lawyers with weekly availability in 50 regions.
//!
//! Run: `cargo bench -p signaling --bench scheduler` (release build). Prints
//! the figures recorded in BENCHMARKS.md: snapshot load, "on duty now for
//! region R", "on duty anywhere", a week's coverage of a region, eligibility
//! for one appointment slot, and booking throughput with concurrent clients.

// A benchmark, like a test, should stop loudly at the first surprise.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use signaling::config::Config;
use signaling::domain::{Language, Role, Topic};
use signaling::ids::{AccountId, RegionId};
use signaling::schedule::Snapshot;
use signaling::store::{
    AuditEntry, BookOutcome, Booking, NewAccount, NewTerminal, RegionRecord, RosterRow, Store, TeamLinks,
};

const LAWYERS: usize = 5_000;
const REGIONS: usize = 50;
const ZONES: [&str; 4] = ["Asia/Shanghai", "Asia/Shanghai", "Asia/Shanghai", "Europe/London"];

/// A small deterministic generator, so every run builds the same data.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    format!(
        "p50 {:>9.3} ms   p99 {:>9.3} ms   max {:>9.3} ms   (n = {})",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        samples.len()
    )
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let store = Store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    let mut rng = Lcg(7);

    let started = Instant::now();
    for r in 0..REGIONS {
        store
            .ensure_region(&RegionRecord {
                id: format!("region-{r}").into(),
                name: format!("Region {r}"),
                parent_id: None,
                time_zone: "Asia/Shanghai".into(),
            })
            .await
            .unwrap();
    }
    let mut teams = Vec::new();
    for t in 0..REGIONS * 2 {
        let regions = [RegionId::from(format!("region-{}", t / 2))];
        let links = TeamLinks { regions: Some(&regions), ..TeamLinks::default() };
        let id = store
            .create_team(&format!("Team {t}"), links, &AuditEntry::system("team.created"))
            .await
            .unwrap();
        teams.push(id);
    }
    let languages = ["zh", "bo", "en"];
    let mut lawyer_ids = Vec::with_capacity(LAWYERS);
    for i in 0..LAWYERS {
        let mut langs = vec![Language::parse("zh").unwrap()];
        if rng.next(4) == 0 {
            langs.push(Language::parse(languages[1 + rng.next(2) as usize]).unwrap());
        }
        let id = store
            .create_account(
                &NewAccount {
                    username: format!("lawyer-{i}"),
                    display_name: format!("Lawyer {i}"),
                    password_hash: "not-used".into(),
                    time_zone: ZONES[i % ZONES.len()].into(),
                    roles: vec![Role::Lawyer],
                    languages: langs,
                    topics: Topic::ALL.to_vec(),
                },
                &[],
                &AuditEntry::system("account.created"),
            )
            .await
            .unwrap();
        // Three weekly windows of 2 to 5 hours.
        for _ in 0..3 {
            let weekday = rng.next(7) as u8;
            let start = (rng.next(18) * 60 + 6 * 60) as u16;
            let end = (start + 120 + rng.next(4) as u16 * 60).min(1440);
            store.add_weekly_availability(&id, weekday, start, end).await.unwrap();
        }
        store.add_team_member(&teams[i % teams.len()], &id).await.unwrap();
        lawyer_ids.push(id);
    }
    for (t, team) in teams.iter().enumerate() {
        store
            .create_roster(
                &RosterRow {
                    id: String::new(),
                    team_id: team.clone(),
                    region_id: format!("region-{}", t / 2).into(),
                    weekdays: 0b0000101,
                    start_minute: 14 * 60,
                    end_minute: 18 * 60,
                    starts_on: "2026-01-01".into(),
                    ends_on: "2027-12-31".into(),
                },
                &AuditEntry::system("roster.created"),
            )
            .await
            .unwrap();
    }
    println!(
        "data: {LAWYERS} lawyers, {} weekly windows, {REGIONS} regions, {} teams with rosters (built in {:.1} s)",
        LAWYERS * 3,
        teams.len(),
        started.elapsed().as_secs_f64()
    );

    let mut loads = Vec::new();
    let mut snapshot = None;
    for _ in 0..5 {
        let t = Instant::now();
        snapshot = Some(Snapshot::load(&store).await.unwrap());
        loads.push(t.elapsed());
    }
    let snapshot = snapshot.unwrap();
    println!("snapshot load (from SQLite)        {}", percentiles(loads));

    let base = 1_796_083_200; // 2026-12-01T00:00:00Z
    let mut samples = Vec::new();
    let mut found = 0;
    for i in 0..2_000 {
        let at = base + rng.next(7 * 86_400) as i64;
        let region = RegionId::from(format!("region-{}", i % REGIONS));
        let t = Instant::now();
        found += snapshot.on_duty_for_region(&region, at).len();
        samples.push(t.elapsed());
    }
    println!(
        "on duty now for region R           {}   avg {:.1} people",
        percentiles(samples),
        found as f64 / 2000.0
    );

    let mut samples = Vec::new();
    let mut found = 0;
    for _ in 0..500 {
        let at = base + rng.next(7 * 86_400) as i64;
        let t = Instant::now();
        found += snapshot.on_duty(at).len();
        samples.push(t.elapsed());
    }
    println!(
        "on duty anywhere (all 5,000)       {}   avg {:.0} people",
        percentiles(samples),
        found as f64 / 500.0
    );

    let zh = Language::parse("zh").unwrap();
    let mut samples = Vec::new();
    for i in 0..200 {
        let region = RegionId::from(format!("region-{}", i % REGIONS));
        let t = Instant::now();
        let covered = snapshot.coverage(&region, &zh, base, base + 7 * 86_400);
        samples.push(t.elapsed());
        assert!(!covered.is_empty());
    }
    println!("a week's coverage of region R (zh) {}", percentiles(samples));

    let mut samples = Vec::new();
    for i in 0..200 {
        let start = base + (rng.next(7 * 48) as i64) * 1800;
        let t = Instant::now();
        let _ = snapshot.eligible_lawyers(
            &format!("region-{}", i % REGIONS).into(),
            &zh,
            Topic::Land,
            start,
            start + 1800,
        );
        samples.push(t.elapsed());
    }
    println!("eligible lawyers for one slot      {}", percentiles(samples));

    // Booking throughput: concurrent clients booking distinct slots in the database.
    let mut terminals = Vec::new();
    for i in 0..64 {
        terminals.push(
            store
                .create_terminal(
                    &NewTerminal {
                        name: format!("Kiosk {i}"),
                        township: "T".into(),
                        region_id: format!("region-{}", i % REGIONS).into(),
                        languages: vec![zh.clone()],
                        enrollment_code_hash: format!("c{i}"),
                        enrollment_expires_at: 0,
                    },
                    &AuditEntry::system("terminal.registered"),
                )
                .await
                .unwrap(),
        );
    }
    for clients in [1usize, 8, 32] {
        let per_client = 200;
        let t = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let store = store.clone();
            let terminal = terminals[c % terminals.len()].clone();
            let lawyers: Vec<AccountId> =
                lawyer_ids.iter().skip(c * per_client).take(per_client).cloned().collect();
            let offset = clients as i64 * 86_400 * 400;
            tasks.push(tokio::spawn(async move {
                let mut booked = 0;
                for (k, lawyer) in lawyers.iter().enumerate() {
                    let start = base + offset + (k as i64) * 3600;
                    let outcome = store
                        .book(
                            &Booking {
                                terminal_id: terminal.clone(),
                                region_id: "region-0".into(),
                                lawyer_id: lawyer.clone(),
                                language: "zh".into(),
                                topic: "land".into(),
                                starts_at: start,
                                ends_at: start + 1800,
                                buffer_secs: 600,
                                booked_by: "bench".into(),
                                day: (start - 3600, start + 3600),
                                daily_cap: 6,
                                phone: None,
                            },
                            &AuditEntry::system("appointment.booked"),
                        )
                        .await
                        .unwrap();
                    booked += usize::from(matches!(outcome, BookOutcome::Booked(_)));
                }
                booked
            }));
        }
        let mut booked = 0;
        for task in tasks {
            booked += task.await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "booking, {clients:>2} concurrent clients       {booked} bookings in {secs:.2} s = {:.0} bookings/s",
            booked as f64 / secs
        );
    }
    store.close().await;
}
