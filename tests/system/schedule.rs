//! The scheduler through the API: availability, teams and rosters, who is on
//! duty, coverage and gaps, appointments under the rules and under races,
//! calendar feeds and reminders.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use signaling::domain::Language;
use signaling::ids::AccountId;
use signaling::store::NewTerminal;
use signaling::unix_now;

use crate::support::{TestApp, spawn_with, test_config};

const SHANGHAI: i64 = 8 * 3600;

/// An instant at local Shanghai time `hh:mm`, `days` days from today there.
pub(crate) fn shanghai(days: i64, hh: i64, mm: i64) -> i64 {
    ((unix_now() + SHANGHAI).div_euclid(86_400) + days) * 86_400 + hh * 3600 + mm * 60 - SHANGHAI
}

/// The next Monday (at least 2 days away), as days from today in Shanghai.
pub(crate) fn next_monday() -> i64 {
    let today = (unix_now() + SHANGHAI).div_euclid(86_400);
    let weekday = (today + 3).rem_euclid(7); // 0 = Monday
    let mut ahead = (7 - weekday) % 7;
    if ahead < 2 {
        ahead += 7;
    }
    ahead
}

pub(crate) fn rfc(at: i64) -> String {
    jiff::Timestamp::from_second(at).unwrap().to_string()
}

fn date(days: i64) -> String {
    let at = shanghai(days, 12, 0);
    jiff::Timestamp::from_second(at + SHANGHAI).unwrap().to_string()[..10].to_owned()
}

async fn app_with(cap: u32) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), true);
    config.schedule.default_daily_cap = cap;
    config.schedule.reminder_check_secs = 1;
    spawn_with(config, dir).await
}

async fn id_of(app: &TestApp, username: &str) -> AccountId {
    app.store().await.account_by_username(username).await.unwrap().unwrap().id
}

async fn book(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let response = app.post("/api/appointments", token, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn availability_round_trip_and_bad_input_changes_nothing() {
    let app = app_with(6).await;
    let lawyer = app.token("demo-lawyer-2").await;
    let id = id_of(&app, "demo-lawyer-2").await;
    let path = format!("/api/accounts/{id}/availability");
    let body = json!({
        "weekly": [{"weekday": "mon", "start": "14:00", "end": "18:00"}, {"weekday": "wed", "start": "09:30", "end": "24:00"}],
        "overrides": [{"date": "2026-12-24", "start": "00:00", "end": "24:00", "kind": "off"},
                      {"date": "2026-12-26", "start": "10:00", "end": "12:00", "kind": "extra"}]
    });
    let response = app.http.put(app.url(&path)).bearer_auth(&lawyer).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let saved: Value = response.json().await.unwrap();
    assert_eq!(saved["time_zone"], "Asia/Shanghai");
    assert_eq!(saved["weekly"][1], json!({"weekday": "wed", "start": "09:30", "end": "24:00"}));
    assert_eq!(saved["overrides"].as_array().unwrap().len(), 2);

    let bad = [
        json!({"weekly": [{"weekday": "mon", "start": "18:00", "end": "14:00"}]}),
        json!({"weekly": [{"weekday": "mon", "start": "14:00", "end": "14:00"}]}),
        json!({"weekly": [{"weekday": "funday", "start": "14:00", "end": "18:00"}]}),
        json!({"weekly": [{"weekday": "mon", "start": "25:00", "end": "26:00"}]}),
        json!({"weekly": [], "overrides": [{"date": "9999-01-01", "start": "00:00", "end": "24:00", "kind": "off"}]}),
        json!({"weekly": [], "overrides": [{"date": "2026-02-30", "start": "00:00", "end": "24:00", "kind": "off"}]}),
        json!({"weekly": [], "overrides": [{"date": "2026-12-01", "start": "00:00", "end": "24:00", "kind": "holiday"}]}),
        json!({"weekly": "all the time"}),
    ];
    for body in bad {
        let response = app.http.put(app.url(&path)).bearer_auth(&lawyer).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    let now: Value = app.get(&path, &lawyer).await.json().await.unwrap();
    assert_eq!(now["weekly"], saved["weekly"], "refused input changed nothing");
    assert_eq!(now["overrides"], saved["overrides"]);

    // Someone else's availability is not theirs to read or write.
    let other = id_of(&app, "demo-lawyer").await;
    assert_eq!(app.get(&format!("/api/accounts/{other}/availability"), &lawyer).await.status(), 404);
    // Unknown time zones are refused.
    let coordinator = app.token("demo-coordinator").await;
    let response = app
        .http
        .patch(app.url(&format!("/api/accounts/{id}")))
        .bearer_auth(&coordinator)
        .json(&json!({"time_zone": "Mars/Olympus_Mons"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .http
        .patch(app.url(&format!("/api/accounts/{id}")))
        .bearer_auth(&coordinator)
        .json(&json!({"time_zone": "America/New_York"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn teams_rosters_on_duty_and_coverage_gaps() {
    let app = app_with(6).await;
    let coordinator = app.token("demo-coordinator").await;
    // A lawyer who speaks English and has no hours of their own.
    let created = app
        .post("/api/accounts", &coordinator, json!({"username": "en-lawyer", "display_name": "English-speaking lawyer",
            "password": "long-enough", "roles": ["lawyer"], "languages": ["en"], "topics": ["land", "labour"]}))
        .await;
    assert_eq!(created.status(), 201);
    let en_lawyer = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let team = app
        .post(
            "/api/teams",
            &coordinator,
            json!({"name": "1+1 volunteers, Garzê", "members": [en_lawyer], "regions": ["demo-garze"]}),
        )
        .await;
    assert_eq!(team.status(), 201);
    let team_id = team.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let monday = next_monday();
    let roster = app
        .post(
            "/api/rosters",
            &coordinator,
            json!({"team_id": team_id, "region_id": "demo-garze", "weekdays": ["mon", "wed"],
            "start": "14:00", "end": "18:00", "starts_on": date(0), "ends_on": date(180)}),
        )
        .await;
    assert_eq!(roster.status(), 201);
    let listed: Vec<Value> =
        app.get("/api/regions/demo-garze/rosters", &coordinator).await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["weekdays"], json!(["mon", "wed"]));

    let on_duty = |at: i64| {
        let request = app
            .http
            .get(app.url(&format!("/api/regions/demo-garze/on-duty?at={}", rfc(at))))
            .bearer_auth(&coordinator);
        async move { request.send().await.unwrap().json::<Vec<Value>>().await.unwrap() }
    };
    let in_roster = on_duty(shanghai(monday, 15, 0)).await;
    let en = in_roster.iter().find(|p| p["account_id"] == en_lawyer.as_str()).expect("rostered");
    assert_eq!(en["duty"]["via"], "roster");
    assert!(
        in_roster.iter().any(|p| p["duty"]["via"] == "availability"),
        "the demo lawyer, always available"
    );
    let after = on_duty(shanghai(monday, 18, 0)).await;
    assert!(!after.iter().any(|p| p["account_id"] == en_lawyer.as_str()), "18:00 is the end, exclusive");
    let tuesday = on_duty(shanghai(monday + 1, 15, 0)).await;
    assert!(!tuesday.iter().any(|p| p["account_id"] == en_lawyer.as_str()));

    // A week's coverage for English: Monday and Wednesday afternoons only.
    let coverage = |language: &str| {
        let url = format!(
            "/api/regions/demo-garze/coverage?from={}&to={}&language={language}",
            date(monday),
            date(monday + 7)
        );
        let request = app.http.get(app.url(&url)).bearer_auth(&coordinator);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let en_week = coverage("en").await;
    assert_eq!(en_week["covered_minutes"], 2 * 4 * 60);
    assert_eq!(en_week["total_minutes"], 7 * 24 * 60);
    assert_eq!(en_week["covered"][0]["start"], rfc(shanghai(monday, 14, 0)));
    assert_eq!(en_week["gaps"].as_array().unwrap().len(), 3);
    // Tibetan: the demo lawyer covers every hour, until they take a day off.
    assert_eq!(coverage("bo").await["gaps"], json!([]));
    let demo_lawyer = id_of(&app, "demo-lawyer").await;
    let weekly: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({"weekday": d, "start": "00:00", "end": "24:00"}))
        .collect();
    let off = json!({"weekly": weekly, "overrides": [{"date": date(monday + 2), "start": "00:00", "end": "24:00", "kind": "off"}]});
    let response = app
        .http
        .put(app.url(&format!("/api/accounts/{demo_lawyer}/availability")))
        .bearer_auth(&coordinator)
        .json(&off)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "coordinators edit availability for their teams");
    let bo_week = coverage("bo").await;
    assert_eq!(
        bo_week["gaps"],
        json!([{"start": rfc(shanghai(monday + 2, 0, 0)), "end": rfc(shanghai(monday + 3, 0, 0))}])
    );

    // Bad ranges and other regions are refused.
    let bad = app
        .get("/api/regions/demo-garze/coverage?from=2026-12-10&to=2026-12-01&language=bo", &coordinator)
        .await;
    assert_eq!(bad.status(), 400);
    let far = app
        .get("/api/regions/demo-garze/coverage?from=9999-01-01&to=9999-01-08&language=bo", &coordinator)
        .await;
    assert_eq!(far.status(), 400);
    let lawyer = app.token("demo-lawyer").await;
    assert_eq!(app.get("/api/regions/demo-garze/on-duty", &lawyer).await.status(), 403);
    let bad_roster = app
        .post(
            "/api/rosters",
            &coordinator,
            json!({"team_id": team_id, "region_id": "demo-garze", "weekdays": ["mon"],
            "start": "18:00", "end": "14:00", "starts_on": date(0), "ends_on": date(10)}),
        )
        .await;
    assert_eq!(bad_roster.status(), 400);
}

#[tokio::test]
async fn bookings_follow_the_rules() {
    let app = app_with(2).await;
    let (kiosk, _) = app.enroll_demo_terminal().await;
    let day = next_monday();
    let slot = |h: i64, m: i64| rfc(shanghai(day, h, m));

    // Refused before anything is written.
    let now = unix_now();
    let cases = [
        (json!({"start": rfc(now - 3600), "language": "bo", "topic": "land"}), "in_the_past"),
        (json!({"start": "9999-01-01T10:00:00Z", "language": "bo", "topic": "land"}), "invalid_field"),
        (json!({"start": rfc((now / 1800 + 1) * 1800), "language": "bo", "topic": "land"}), "too_soon"),
        (json!({"start": rfc(shanghai(day, 10, 10)), "language": "bo", "topic": "land"}), "off_grid"),
        (json!({"start": rfc(shanghai(200, 10, 0)), "language": "bo", "topic": "land"}), "too_far"),
        (json!({"start": slot(10, 0), "language": "Tibetan", "topic": "land"}), "invalid_field"),
        (json!({"start": slot(10, 0), "language": "bo", "topic": "witchcraft"}), "invalid_field"),
        (
            json!({"start": slot(10, 0), "language": "bo", "topic": "land", "lawyer_id": id_of(&app, "demo-lawyer-2").await}),
            "invalid_field",
        ),
    ];
    for (body, code) in cases {
        let (status, reply) = book(&app, &kiosk, body.clone()).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{body}");
    }
    assert!(
        app.store()
            .await
            .appointments(signaling::store::AppointmentScope::Region(&"demo-garze".into()), 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    // Only the demo lawyer speaks Tibetan: the first booking goes to them.
    let demo_lawyer = id_of(&app, "demo-lawyer").await;
    let (status, first) =
        book(&app, &kiosk, json!({"start": slot(10, 0), "language": "bo", "topic": "land"})).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["lawyer_id"], demo_lawyer.as_str());
    assert_eq!(first["end"], slot(10, 30));
    // The same kiosk cannot hold two appointments at once.
    let (status, reply) =
        book(&app, &kiosk, json!({"start": slot(10, 0), "language": "zh", "topic": "land"})).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (409, Some("terminal_busy")));

    // Another terminal, same time: the only Tibetan speaker is taken.
    let coordinator = app.token("demo-coordinator").await;
    let store = app.store().await;
    let other_terminal = store
        .create_terminal(
            &NewTerminal {
                name: "Second kiosk".into(),
                township: "Tagong".into(),
                region_id: "demo-garze".into(),
                languages: vec![Language::parse("bo").unwrap()],
                enrollment_code_hash: "x".into(),
                enrollment_expires_at: 0,
            },
            &signaling::store::AuditEntry::system("terminal.registered"),
        )
        .await
        .unwrap();
    let (status, reply) = book(
        &app,
        &coordinator,
        json!({"start": slot(10, 0), "language": "bo", "topic": "land", "terminal_id": other_terminal}),
    )
    .await;
    assert_eq!((status, reply["error"]["code"].as_str()), (409, Some("no_lawyer_available")));
    // The buffer after 10:00-10:30 keeps 10:30 free too; 11:00 is fine.
    let named = |start: String| json!({"start": start, "language": "bo", "topic": "land", "terminal_id": other_terminal, "lawyer_id": demo_lawyer});
    let (status, reply) = book(&app, &coordinator, named(slot(10, 30))).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (409, Some("slot_taken")));
    let (status, second) = book(&app, &coordinator, named(slot(11, 0))).await;
    assert_eq!(status, 201, "{second}");
    // The daily cap (2 here) holds.
    let (status, reply) = book(&app, &coordinator, named(slot(15, 0))).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (409, Some("slot_taken")), "{reply}");
    // Chinese goes to either Chinese-speaking lawyer, round robin: not the one already busy.
    let (status, zh) =
        book(&app, &kiosk, json!({"start": slot(16, 0), "language": "zh", "topic": "debt"})).await;
    assert_eq!(status, 201);
    assert_eq!(zh["lawyer_id"], id_of(&app, "demo-lawyer-2").await.as_str());

    // Cancelling frees the time; rescheduling moves it atomically.
    let first_id = first["id"].as_str().unwrap();
    let cancelled = app.post(&format!("/api/appointments/{first_id}/cancel"), &kiosk, json!({})).await;
    assert_eq!(cancelled.json::<Value>().await.unwrap()["status"], "cancelled");
    let again = app.post(&format!("/api/appointments/{first_id}/cancel"), &kiosk, json!({})).await;
    assert_eq!(again.status(), 409);
    let (status, _) = book(&app, &coordinator, named(slot(15, 0))).await;
    assert_eq!(status, 201, "the cancelled one no longer counts against the cap or the time");
    let second_id = second["id"].as_str().unwrap();
    let moved = app
        .post(
            &format!("/api/appointments/{second_id}/reschedule"),
            &coordinator,
            json!({"start": slot(15, 0)}),
        )
        .await;
    assert_eq!(moved.status(), 409, "onto a taken time");
    let moved = app
        .post(
            &format!("/api/appointments/{second_id}/reschedule"),
            &coordinator,
            json!({"start": slot(17, 0)}),
        )
        .await;
    assert_eq!(moved.status(), 200);
    assert_eq!(moved.json::<Value>().await.unwrap()["start"], slot(17, 0));
    // 11:00 is free again.
    let (status, _) =
        book(&app, &kiosk, json!({"start": slot(11, 0), "language": "zh", "topic": "land"})).await;
    assert_eq!(status, 201);

    // Each side sees its own.
    let mine: Vec<Value> = app.get("/api/appointments", &kiosk).await.json().await.unwrap();
    assert!(mine.iter().all(|a| a["terminal_id"] != other_terminal.as_str()));
    let lawyer2 = app.token("demo-lawyer-2").await;
    let theirs: Vec<Value> = app.get("/api/appointments", &lawyer2).await.json().await.unwrap();
    let lawyer2_id = id_of(&app, "demo-lawyer-2").await;
    assert!(!theirs.is_empty());
    assert!(theirs.iter().all(|a| a["lawyer_id"] == lawyer2_id.as_str()));
    assert_eq!(app.get(&format!("/api/appointments/{second_id}"), &lawyer2).await.status(), 404);
    // A no-show can only be recorded once it has started.
    let early = app.post(&format!("/api/appointments/{second_id}/no-show"), &coordinator, json!({})).await;
    assert_eq!(early.status(), 400);
}

#[tokio::test]
async fn concurrent_bookings_of_one_slot_give_it_once() {
    let app = app_with(20).await;
    let coordinator = app.token("demo-coordinator").await;
    let store = app.store().await;
    let mut terminals = Vec::new();
    for i in 0..24 {
        terminals.push(
            store
                .create_terminal(
                    &NewTerminal {
                        name: format!("Kiosk {i}"),
                        township: "Somewhere".into(),
                        region_id: "demo-garze".into(),
                        languages: vec![Language::parse("bo").unwrap()],
                        enrollment_code_hash: format!("code-{i}"),
                        enrollment_expires_at: 0,
                    },
                    &signaling::store::AuditEntry::system("terminal.registered"),
                )
                .await
                .unwrap(),
        );
    }
    let start = rfc(shanghai(next_monday(), 9, 0));
    let lawyer = id_of(&app, "demo-lawyer").await;
    let mut tasks = Vec::new();
    for terminal in &terminals {
        let body = json!({"start": start, "language": "bo", "topic": "family", "terminal_id": terminal, "lawyer_id": lawyer});
        let request = app.http.post(app.url("/api/appointments")).bearer_auth(&coordinator).json(&body);
        tasks.push(tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), terminals.len() - 1, "{statuses:?}");
    let booked =
        store.appointments(signaling::store::AppointmentScope::Lawyer(&lawyer), 0, i64::MAX).await.unwrap();
    assert_eq!(booked.iter().filter(|a| a.status == "booked").count(), 1);

    // Round robin under a race, from one terminal: one wins, the rest find it busy.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let body = json!({"start": rfc(shanghai(next_monday(), 13, 0)), "language": "zh", "topic": "family", "terminal_id": terminals[0]});
        let request = app.http.post(app.url("/api/appointments")).bearer_auth(&coordinator).json(&body);
        tasks.push(tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }));
    }
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.unwrap() == 201);
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn slots_and_the_calendar_feed() {
    let app = app_with(6).await;
    let (kiosk, _) = app.enroll_demo_terminal().await;
    let day = next_monday();
    let from = rfc(shanghai(day, 9, 0));
    let to = rfc(shanghai(day, 12, 0));
    let url = format!("/api/appointments/slots?language=bo&topic=land&from={from}&to={to}");
    let slots: Vec<Value> = app.get(&url, &kiosk).await.json().await.unwrap();
    assert_eq!(slots.len(), 6, "{slots:?}");
    assert_eq!(slots[0]["start"], from);
    let (status, _) =
        book(&app, &kiosk, json!({"start": rfc(shanghai(day, 10, 0)), "language": "bo", "topic": "land"}))
            .await;
    assert_eq!(status, 201);
    let slots: Vec<Value> = app.get(&url, &kiosk).await.json().await.unwrap();
    let starts: Vec<&str> = slots.iter().map(|s| s["start"].as_str().unwrap()).collect();
    assert!(!starts.contains(&rfc(shanghai(day, 10, 0)).as_str()), "the booked slot is gone");
    assert!(!starts.contains(&rfc(shanghai(day, 10, 30)).as_str()), "so is the one inside its buffer");

    let lawyer = app.token("demo-lawyer").await;
    let feed: Value = app.post("/api/me/calendar", &lawyer, json!({})).await.json().await.unwrap();
    let path = feed["path"].as_str().unwrap().to_owned();
    let response = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/calendar"));
    let ics = response.text().await.unwrap();
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
    let start =
        jiff::Timestamp::from_second(shanghai(day, 10, 0)).unwrap().strftime("%Y%m%dT%H%M%SZ").to_string();
    assert!(ics.contains(&format!("DTSTART:{start}")), "{ics}");
    // Revoked: the old URL stops working. A coordinator or terminal has no feed.
    let revoked = app.http.delete(app.url("/api/me/calendar")).bearer_auth(&lawyer).send().await.unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(app.http.get(app.url(&path)).send().await.unwrap().status(), 404);
    assert_eq!(app.http.get(app.url("/calendar/not-a-token.ics")).send().await.unwrap().status(), 404);
    assert_eq!(app.post("/api/me/calendar", &kiosk, json!({})).await.status(), 403);
}

#[tokio::test]
async fn reminders_and_start_notices_reach_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), true);
    config.schedule.reminder_check_secs = 1;
    config.schedule.reminder_minutes = 3 * 24 * 60;
    let app = spawn_with(config, dir).await;
    let (kiosk, terminal_id) = app.enroll_demo_terminal().await;
    let lawyer = app.token("demo-lawyer").await;
    let (mut lawyer_ws, _) =
        tokio_tungstenite::connect_async(format!("{}?token={lawyer}", app.ws_url("/ws"))).await.unwrap();
    let (mut kiosk_ws, _) =
        tokio_tungstenite::connect_async(format!("{}?token={kiosk}", app.ws_url("/ws"))).await.unwrap();
    let (status, booked) =
        book(&app, &kiosk, json!({"start": rfc(shanghai(1, 10, 0)), "language": "bo", "topic": "land"}))
            .await;
    assert_eq!(status, 201);
    // One that has just started, as if booked earlier.
    let store = app.store().await;
    let started = store
        .book(
            &signaling::store::Booking {
                terminal_id: terminal_id.as_str().into(),
                region_id: "demo-garze".into(),
                lawyer_id: id_of(&app, "demo-lawyer").await,
                language: "bo".into(),
                topic: "debt".into(),
                starts_at: unix_now() - 60,
                ends_at: unix_now() + 1740,
                buffer_secs: 0,
                booked_by: "system".into(),
                day: (0, i64::MAX),
                daily_cap: 100,
                phone: None,
            },
            &signaling::store::AuditEntry::system("appointment.booked"),
        )
        .await
        .unwrap();
    let signaling::store::BookOutcome::Booked(started_id) = started else { panic!("{started:?}") };

    for socket in [&mut lawyer_ws, &mut kiosk_ws] {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("a notice within 10 s");
            let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = frame else { continue };
            let message: Value = serde_json::from_str(&text).unwrap();
            match message["type"].as_str() {
                Some("appointment_reminder") => {
                    seen.push(("reminder", message["appointment"]["id"].as_str().unwrap().to_owned()))
                }
                Some("appointment_started") => {
                    seen.push(("started", message["appointment"]["id"].as_str().unwrap().to_owned()))
                }
                _ => {}
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("reminder", booked["id"].as_str().unwrap().to_owned()),
                ("started", started_id.to_string())
            ]
        );
    }
    // Each notice is sent once, even across loops: no more arrive.
    let extra = tokio::time::timeout(Duration::from_millis(2500), async {
        while let Some(Ok(frame)) = lawyer_ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = frame
                && text.contains("appointment_")
            {
                return true;
            }
        }
        false
    })
    .await;
    assert!(!matches!(extra, Ok(true)), "a notice was sent twice");
}

#[tokio::test]
async fn the_lawyer_books_a_follow_up_from_the_record_in_one_step() {
    let app = app_with(4).await;
    let mut drolma = crate::live::lawyer(&app, "demo-lawyer").await;
    drolma.available().await;
    let (kiosk_token, terminal) = app.enroll_demo_terminal().await;
    let mut kiosk = crate::live::Client::connect(&app, &kiosk_token).await;
    kiosk.send(crate::live::request("bo", "family")).await;
    let request = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    drolma.expect("consult.offer").await;
    drolma.send(json!({"type": "consult.accept", "request": request})).await;
    let consultation = drolma.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    let lawyer = app.token("demo-lawyer").await;
    let path = format!("/api/consultations/{consultation}/follow-up");
    let day = next_monday();

    // Another lawyer, a kiosk, a bad time: refused, nothing booked.
    let other = app.token("demo-lawyer-2").await;
    assert_eq!(app.post(&path, &other, json!({"start": rfc(shanghai(day, 10, 0))})).await.status(), 404);
    assert_eq!(
        app.post(&path, &kiosk_token, json!({"start": rfc(shanghai(day, 10, 0))})).await.status(),
        404
    );
    let off_grid = app.post(&path, &lawyer, json!({"start": rfc(shanghai(day, 10, 10))})).await;
    assert_eq!(off_grid.status(), 400);
    assert_eq!(off_grid.json::<Value>().await.unwrap()["error"]["code"], "off_grid");
    assert_eq!(app.post(&path, &lawyer, json!({"when": "tomorrow"})).await.status(), 400);

    let booked = app.post(&path, &lawyer, json!({"start": rfc(shanghai(day, 10, 0))})).await;
    assert_eq!(booked.status(), 201);
    let booked: Value = booked.json().await.unwrap();
    assert_eq!(booked["terminal_id"], terminal.as_str(), "the same kiosk");
    assert_eq!(booked["lawyer_id"], id_of(&app, "demo-lawyer").await.as_str(), "the same lawyer");
    assert_eq!((&booked["language"], &booked["topic"]), (&json!("bo"), &json!("family")));
    assert_eq!(booked["channel"], "kiosk");
    let theirs: Vec<Value> = app.get("/api/appointments", &kiosk_token).await.json().await.unwrap();
    assert_eq!(theirs.len(), 1, "the kiosk sees it");

    // The kiosk cannot be in two places: the same time again is refused.
    let again = app.post(&path, &lawyer, json!({"start": rfc(shanghai(day, 10, 0))})).await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn a_hotline_callers_follow_up_needs_the_kept_number_and_calling_out() {
    let app = app_with(4).await;
    let store = app.store().await;
    let line = store.phone_lines(&"demo-garze".into(), 1).await.unwrap().remove(0);
    let consultation = store
        .create_consultation(&signaling::store::NewConsultation {
            terminal_id: line.id.clone(),
            region_id: "demo-garze".into(),
            lawyer_id: id_of(&app, "demo-lawyer").await,
            interpreter_id: None,
            topic: signaling::domain::Topic::Debt,
            language: "zh".into(),
            started_at: unix_now() - 600,
        })
        .await
        .unwrap();
    let lawyer = app.token("demo-lawyer").await;
    let path = format!("/api/consultations/{consultation}/follow-up");
    let start = json!({"start": rfc(shanghai(next_monday(), 10, 0))});
    let refused = app.post(&path, &lawyer, start.clone()).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "no_number");
    store.keep_callback_number(&consultation, "13800138000").await.unwrap();
    // This server does not call out ([phone] is off): said so, nothing booked.
    let refused = app.post(&path, &lawyer, start).await;
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "callback_off");
    let booked = store
        .appointments(signaling::store::AppointmentScope::Region(&"demo-garze".into()), 0, i64::MAX)
        .await
        .unwrap();
    assert!(booked.is_empty());
}
