//! Who may see and change what: consultations, regions, terminals, accounts,
//! and the audit trail that every access leaves.

use serde_json::{Value, json};
use signaling::domain::{Language, Role, Topic};
use signaling::ids::{AccountId, ConsultationId, RegionId, TerminalId};
use signaling::password;
use signaling::store::{
    AccountPatch, AuditEntry, AuditRow, NewAccount, NewConsultation, NewTerminal, RegionRecord, Store,
    TeamLinks,
};
use signaling::unix_now;

use crate::support::{Db, TestApp, cloudlaw, data_args, on_db, run_to_end, spawn_app};

/// A second region with its own coordinator, lawyer and terminal, beside the
/// demo region. Returns (other region's terminal id, consultation ids: demo, other).
struct World {
    demo_consultation: ConsultationId,
    other_consultation: ConsultationId,
    other_terminal: TerminalId,
}

async fn account(store: &Store, username: &str, roles: Vec<Role>) -> AccountId {
    store
        .create_account(
            &NewAccount {
                username: username.into(),
                display_name: username.into(),
                password_hash: password::hash("demo-pass").unwrap(),
                time_zone: "Asia/Shanghai".into(),
                roles,
                languages: vec![Language::parse("zh").unwrap()],
                topics: vec![Topic::Labour],
            },
            &[],
            &signaling::store::AuditEntry::system("account.created"),
        )
        .await
        .unwrap()
}

async fn build_world(app: &TestApp) -> World {
    let store = app.store().await;
    store
        .ensure_region(&RegionRecord {
            id: "other".into(),
            name: "Other region".into(),
            parent_id: None,
            time_zone: "Asia/Shanghai".into(),
        })
        .await
        .unwrap();
    let other_coordinator = account(&store, "other-coordinator", vec![Role::Coordinator]).await;
    let regions = AccountPatch { regions: Some(vec!["other".into()]), ..AccountPatch::default() };
    store
        .update_account(&other_coordinator, &regions, unix_now(), &AuditEntry::system("account.updated"))
        .await
        .unwrap();
    let other_lawyer = account(&store, "other-lawyer", vec![Role::Lawyer]).await;
    let other_terminal = store
        .create_terminal(
            &NewTerminal {
                name: "Other kiosk".into(),
                township: "Elsewhere".into(),
                region_id: "other".into(),
                languages: vec![Language::parse("zh").unwrap()],
                enrollment_code_hash: password::fingerprint("OTHER-CODE"),
                enrollment_expires_at: unix_now() + 3600,
            },
            &signaling::store::AuditEntry::system("terminal.registered"),
        )
        .await
        .unwrap();
    let demo_lawyer = store.account_by_username("demo-lawyer").await.unwrap().unwrap().id;
    let demo_terminal = store.terminals_in_region(&"demo-garze".into()).await.unwrap().remove(0).id;
    let consultation = |terminal: &str, region: &str, lawyer: &str| NewConsultation {
        terminal_id: terminal.into(),
        region_id: region.into(),
        lawyer_id: lawyer.into(),
        interpreter_id: None,
        topic: Topic::Land,
        language: "bo".into(),
        started_at: unix_now(),
    };
    let demo_consultation =
        store.create_consultation(&consultation(&demo_terminal, "demo-garze", &demo_lawyer)).await.unwrap();
    store
        .save_consultation_record(
            &demo_consultation,
            "Grazing boundary dispute; advised mediation.",
            "referred_mediation",
            &signaling::store::AuditEntry::system("consultation.record_written"),
        )
        .await
        .unwrap();
    let other_consultation =
        store.create_consultation(&consultation(&other_terminal, "other", &other_lawyer)).await.unwrap();
    store
        .save_consultation_record(
            &other_consultation,
            "Unpaid wages.",
            "advice_given",
            &signaling::store::AuditEntry::system("consultation.record_written"),
        )
        .await
        .unwrap();
    store.close().await;
    World { demo_consultation, other_consultation, other_terminal }
}

/// Puts `member` in a new team posted to `region`; returns the team's id.
async fn place(store: &Store, team: &str, member: &AccountId, region: &str) -> String {
    let (members, regions) = ([member.clone()], [RegionId::from(region)]);
    let links = TeamLinks { members: Some(&members), regions: Some(&regions), terminals: None };
    store.create_team(team, links, &AuditEntry::system("team.created")).await.unwrap()
}

#[tokio::test]
async fn coordinators_cannot_take_over_another_regions_volunteers() {
    let app = spawn_app().await;
    let world = build_world(&app).await;
    let store = app.store().await;
    // The other region's lawyer serves there only.
    let lawyer = store.account_by_username("other-lawyer").await.unwrap().unwrap().id;
    let other_team = place(&store, "Other region's team", &lawyer, "other").await;
    let coordinator = app.token("demo-coordinator").await;
    let admin = app.token("demo-admin").await;
    let teams_before = store.teams().await.unwrap().len();
    let code_of = |body: &Value| body["error"]["code"].as_str().unwrap_or_default().to_owned();
    let patch = |path: String, token: &str, body: Value| {
        let request = app.http.patch(app.url(&path)).bearer_auth(token).json(&body);
        async move { request.send().await.unwrap() }
    };

    // A team in the coordinator's region with that lawyer, or a team posted nowhere: refused, clearly.
    for body in [
        json!({"name": "Takeover", "regions": ["demo-garze"], "members": [lawyer]}),
        json!({"name": "Parked", "members": [lawyer]}),
    ] {
        let refused = app.post("/api/teams", &coordinator, body).await;
        assert_eq!(refused.status(), 403);
        let error: Value = refused.json().await.unwrap();
        assert_eq!(code_of(&error), "serves_elsewhere", "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("admin"), "{error}");
    }
    // An admin parks the lawyer in a team posted nowhere; the coordinator may not post it to their region.
    let parked: Value = app
        .post("/api/teams", &admin, json!({"name": "Parked", "members": [lawyer]}))
        .await
        .json()
        .await
        .unwrap();
    let parked_id = parked["id"].as_str().unwrap().to_owned();
    let posted =
        patch(format!("/api/teams/{parked_id}"), &coordinator, json!({"regions": ["demo-garze"]})).await;
    assert_eq!(posted.status(), 403);
    assert_eq!(code_of(&posted.json().await.unwrap()), "serves_elsewhere");
    // Nor put the other region's team on duty in theirs.
    let roster = json!({"team_id": other_team, "region_id": "demo-garze", "weekdays": ["mon"], "start": "09:00",
                        "end": "17:00", "starts_on": "2027-01-01", "ends_on": "2027-02-01"});
    let rostered = app.post("/api/rosters", &coordinator, roster).await;
    assert_eq!(rostered.status(), 403);
    assert_eq!(code_of(&rostered.json().await.unwrap()), "serves_elsewhere");
    assert!(
        store.rosters_for_region(&"demo-garze".into()).await.unwrap().iter().all(|r| r.team_id != other_team)
    );
    assert_eq!(store.teams().await.unwrap().len(), teams_before + 1, "only the admin's team was made");
    assert_eq!(store.team_links(&parked_id).await.unwrap().1, Vec::<RegionId>::new(), "still posted nowhere");

    // So the lawyer stays out of the coordinator's reach: account, availability, deactivation.
    let account = format!("/api/accounts/{lawyer}");
    assert_eq!(app.get(&account, &coordinator).await.status(), 404);
    assert_eq!(patch(account.clone(), &coordinator, json!({"active": false})).await.status(), 404);
    let availability = format!("/api/accounts/{lawyer}/availability");
    assert_eq!(app.get(&availability, &coordinator).await.status(), 404);
    let put = app
        .http
        .put(app.url(&availability))
        .bearer_auth(&coordinator)
        .json(&json!({"weekly": [{"weekday": "mon", "start": "09:00", "end": "10:00"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 404);
    assert!(store.account(&lawyer).await.unwrap().unwrap().active);
    assert!(store.availability_of(&lawyer).await.unwrap().0.is_empty());
    // The other region's consultations stay out of their reports and lists.
    let report = app.get("/api/reports/consultations", &coordinator).await.text().await.unwrap();
    assert!(!report.contains("\"other\""), "{report}");
    assert_eq!(
        app.get(&format!("/api/consultations/{}", world.other_consultation), &coordinator).await.status(),
        404
    );

    // An admin may place the lawyer in the coordinator's region; from then on the coordinator manages them.
    let placed = app
        .post("/api/teams", &admin, json!({"name": "Shared", "regions": ["demo-garze"], "members": [lawyer]}))
        .await;
    assert_eq!(placed.status(), 201);
    assert_eq!(app.get(&account, &coordinator).await.status(), 200);

    // A team naming a region that does not exist: 400, and nothing written (no team without regions left behind).
    let teams_before = store.teams().await.unwrap().len();
    let unknown =
        app.post("/api/teams", &admin, json!({"name": "Nowhere", "regions": ["no-such-region"]})).await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(code_of(&unknown.json().await.unwrap()), "invalid_field");
    let unknown =
        patch(format!("/api/teams/{parked_id}"), &admin, json!({"regions": ["no-such-region"]})).await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(store.teams().await.unwrap().len(), teams_before);
    // A terminal that is not there is refused the same way.
    let unknown =
        patch(format!("/api/teams/{parked_id}"), &admin, json!({"terminals": ["no-such-kiosk"]})).await;
    assert_eq!(unknown.status(), 400);
    let _ = world.other_terminal;
}

#[tokio::test]
async fn another_regions_coordinator_reaches_none_of_this_regions_schedule() {
    let app = spawn_app().await;
    build_world(&app).await;
    let (kiosk, _) = app.enroll_demo_terminal().await;
    let slots: Vec<Value> =
        app.get("/api/appointments/slots?language=zh&topic=labour", &kiosk).await.json().await.unwrap();
    let booked = app
        .post(
            "/api/appointments",
            &kiosk,
            json!({"start": slots[0]["start"], "language": "zh", "topic": "labour"}),
        )
        .await;
    assert_eq!(booked.status(), 201);
    let booked: Value = booked.json().await.unwrap();
    let id = booked["id"].as_str().unwrap();
    let stranger = app.token_for("other-coordinator", "demo-pass").await;
    // The appointment: not seen, not moved, not cancelled, not listed.
    assert_eq!(app.get(&format!("/api/appointments/{id}"), &stranger).await.status(), 404);
    assert_eq!(app.post(&format!("/api/appointments/{id}/cancel"), &stranger, json!({})).await.status(), 404);
    let reschedule = format!("/api/appointments/{id}/reschedule");
    let moved = app.post(&reschedule, &stranger, json!({"start": slots[1]["start"]})).await;
    assert_eq!(moved.status(), 404);
    assert_eq!(app.get("/api/appointments?region_id=demo-garze", &stranger).await.status(), 403);
    let listed: Vec<Value> = app.get("/api/appointments", &stranger).await.json().await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    let slots_there =
        app.get("/api/appointments/slots?language=zh&topic=labour&region_id=demo-garze", &stranger);
    assert_eq!(slots_there.await.status(), 403);
    // Duty, coverage, rosters and teams of the region.
    for path in [
        "/api/regions/demo-garze/on-duty",
        "/api/regions/demo-garze/coverage?from=2027-01-04&to=2027-01-05&language=zh",
        "/api/regions/demo-garze/rosters",
        "/api/regions/demo-garze/terminals",
    ] {
        assert_eq!(app.get(path, &stranger).await.status(), 403, "{path}");
    }
    let teams: Vec<Value> = app.get("/api/teams", &stranger).await.json().await.unwrap();
    assert!(teams.iter().all(|t| t["regions"] != json!(["demo-garze"])), "{teams:?}");
    // A calendar feed is a volunteer's own; a coordinator has none.
    assert_eq!(app.post("/api/me/calendar", &stranger, json!({})).await.status(), 403);
    let unchanged: Value = app.get(&format!("/api/appointments/{id}"), &kiosk).await.json().await.unwrap();
    assert_eq!(unchanged["status"], "booked");
    assert_eq!(unchanged["start"], booked["start"]);
}

#[tokio::test]
async fn consultations_are_seen_only_by_whom_they_concern() {
    let app = spawn_app().await;
    let world = build_world(&app).await;
    let (kiosk, _) = app.enroll_demo_terminal().await;
    let lawyer = app.token("demo-lawyer").await;
    let other_lawyer = app.token("other-lawyer").await;
    let coordinator = app.token("demo-coordinator").await;
    let demo = format!("/api/consultations/{}", world.demo_consultation);
    let other = format!("/api/consultations/{}", world.other_consultation);

    // The participant sees everything, the record included.
    let full: Value = app.get(&demo, &lawyer).await.json().await.unwrap();
    assert_eq!(full["summary"], "Grazing boundary dispute; advised mediation.");
    // Another lawyer sees nothing, not even that it exists.
    assert_eq!(app.get(&demo, &other_lawyer).await.status(), 404);
    assert_eq!(app.get(&other, &lawyer).await.status(), 404);
    let own: Vec<Value> = app.get("/api/consultations", &other_lawyer).await.json().await.unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["id"], world.other_consultation.as_str());

    // The terminal sees what happened at it, without the record's text or who advised.
    let at_kiosk: Value = app.get(&demo, &kiosk).await.json().await.unwrap();
    assert_eq!(at_kiosk["outcome"], "referred_mediation");
    assert!(at_kiosk.get("summary").is_none() && at_kiosk.get("lawyer_id").is_none(), "{at_kiosk}");
    assert_eq!(app.get(&other, &kiosk).await.status(), 404, "another terminal's consultation");

    // A coordinator sees their region's consultations without the record, and not other regions'.
    let seen: Value = app.get(&demo, &coordinator).await.json().await.unwrap();
    assert!(seen.get("summary").is_none(), "{seen}");
    assert_eq!(app.get(&other, &coordinator).await.status(), 404);
    let listed: Vec<Value> = app.get("/api/consultations", &coordinator).await.json().await.unwrap();
    assert_eq!(listed.len(), 1);

    // Only the lawyer writes the record.
    let write = |token: String, id: ConsultationId| {
        let request = app
            .http
            .put(app.url(&format!("/api/consultations/{id}/record")))
            .bearer_auth(token)
            .json(&json!({"summary": "changed", "outcome": "advice_given"}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(write(other_lawyer.clone(), world.demo_consultation.clone()).await, 404);
    assert_eq!(write(coordinator.clone(), world.demo_consultation.clone()).await, 404);
    assert_eq!(write(kiosk.clone(), world.demo_consultation.clone()).await, 404);
    let unchanged: Value = app.get(&demo, &lawyer).await.json().await.unwrap();
    assert_eq!(unchanged["summary"], "Grazing boundary dispute; advised mediation.");
    assert_eq!(write(lawyer.clone(), world.demo_consultation.clone()).await, 200);

    // Every read, refusal and change left a row.
    let rows = app.store().await.recent_audit(None, 200).await.unwrap();
    for action in [
        "consultation.read",
        "consultation.read_denied",
        "consultation.write_denied",
        "consultation.record_written",
    ] {
        assert!(
            rows.iter().any(|r| r.action == action
                && (world.demo_consultation == r.subject || world.other_consultation == r.subject)),
            "{action}"
        );
    }
}

#[tokio::test]
async fn coordinators_stay_in_their_regions() {
    let app = spawn_app().await;
    let world = build_world(&app).await;
    let coordinator = app.token("demo-coordinator").await;
    let regions: Vec<Value> = app.get("/api/regions", &coordinator).await.json().await.unwrap();
    assert_eq!(regions.len(), 1, "only their own region is listed");
    assert_eq!(app.get("/api/regions/other/terminals", &coordinator).await.status(), 403);
    assert_eq!(app.get("/api/regions/demo-garze/terminals", &coordinator).await.status(), 200);
    let revoke =
        app.post(&format!("/api/terminals/{}/revoke", world.other_terminal), &coordinator, json!({})).await;
    assert_eq!(revoke.status(), 403);
    let create = app
        .post(
            "/api/terminals",
            &coordinator,
            json!({"name": "x", "township": "y", "region_id": "other", "languages": ["zh"]}),
        )
        .await;
    assert_eq!(create.status(), 403);
    let other_terminal = app.store().await.terminal(&world.other_terminal).await.unwrap().unwrap();
    assert!(other_terminal.revoked_at.is_none(), "nothing changed");
    assert_eq!(app.store().await.terminals_in_region(&"other".into()).await.unwrap().len(), 1);
    // Lawyers and terminals manage nothing.
    let lawyer = app.token("demo-lawyer").await;
    assert_eq!(app.get("/api/regions", &lawyer).await.status(), 403);
    assert_eq!(app.get("/api/accounts", &lawyer).await.status(), 403);
}

#[tokio::test]
async fn coordinators_manage_volunteers_and_admins_manage_coordinators() {
    let app = spawn_app().await;
    let coordinator = app.token("demo-coordinator").await;
    let new_lawyer = json!({"username": "lawyer-zhang", "display_name": "张律师", "password": "long-enough",
                            "roles": ["lawyer"], "languages": ["zh"], "topics": ["labour", "debt"]});
    let created = app.post("/api/accounts", &coordinator, new_lawyer.clone()).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["topics"], json!(["debt", "labour"]));
    assert_eq!(app.post("/api/accounts", &coordinator, new_lawyer).await.status(), 409, "a taken username");

    // Coordinators cannot make coordinators or admins, nor promote anyone.
    let promote = json!({"username": "sneaky", "display_name": "s", "password": "long-enough", "roles": ["coordinator"]});
    assert_eq!(app.post("/api/accounts", &coordinator, promote.clone()).await.status(), 403);
    let id = created["id"].as_str().unwrap();
    let patch = app
        .http
        .patch(app.url(&format!("/api/accounts/{id}")))
        .bearer_auth(&coordinator)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 403);
    let demo_admin = app.store().await.account_by_username("demo-admin").await.unwrap().unwrap();
    let touch_admin = app
        .http
        .patch(app.url(&format!("/api/accounts/{}", demo_admin.id)))
        .bearer_auth(&coordinator)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(touch_admin.status(), 404, "admins are invisible to coordinators");
    assert!(app.store().await.account_by_username("demo-admin").await.unwrap().unwrap().active);

    // Bad input is refused with a clear error and nothing is created.
    for (body, what) in [
        (
            json!({"username": "Bad Name", "display_name": "x", "password": "long-enough", "roles": ["lawyer"]}),
            "username",
        ),
        (
            json!({"username": "short-pw", "display_name": "x", "password": "short", "roles": ["lawyer"]}),
            "password",
        ),
        (
            json!({"username": "no-roles", "display_name": "x", "password": "long-enough", "roles": []}),
            "roles",
        ),
        (
            json!({"username": "bad-role", "display_name": "x", "password": "long-enough", "roles": ["king"]}),
            "role",
        ),
        (
            json!({"username": "bad-lang", "display_name": "x", "password": "long-enough", "roles": ["lawyer"], "languages": ["Tibetan"]}),
            "language",
        ),
        (
            json!({"username": "bad-tz", "display_name": "x", "password": "long-enough", "roles": ["lawyer"], "time_zone": "Mars/Olympus Mons"}),
            "time_zone",
        ),
    ] {
        let response = app.post("/api/accounts", &coordinator, body).await;
        assert_eq!(response.status(), 400, "{what}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].as_str().unwrap().len() > 5, "{error}");
    }
    let names: Vec<String> =
        app.store().await.accounts().await.unwrap().into_iter().map(|a| a.username).collect();
    assert!(
        !names
            .iter()
            .any(|n| ["short-pw", "no-roles", "bad-role", "bad-lang", "bad-tz"].contains(&n.as_str())),
        "{names:?}"
    );

    // A lawyer who serves another region's team is not this coordinator's to manage.
    let store = app.store().await;
    store
        .ensure_region(&RegionRecord {
            id: "other".into(),
            name: "Other".into(),
            parent_id: None,
            time_zone: "Asia/Shanghai".into(),
        })
        .await
        .unwrap();
    let elsewhere = account(&store, "elsewhere-lawyer", vec![Role::Lawyer]).await;
    place(&store, "Other region's team", &elsewhere, "other").await;
    assert_eq!(app.get(&format!("/api/accounts/{elsewhere}"), &coordinator).await.status(), 404);
    let reset = app
        .post(&format!("/api/accounts/{elsewhere}/password"), &coordinator, json!({"password": "taken-over"}))
        .await;
    assert_eq!(reset.status(), 404);
    let listed: Vec<Value> = app.get("/api/accounts", &coordinator).await.json().await.unwrap();
    assert!(!listed.iter().any(|a| a["id"] == elsewhere.as_str()));
    app.token_for("elsewhere-lawyer", "demo-pass").await;

    // An admin creates a coordinator for a region; the coordinator sees it.
    let admin = app.token("demo-admin").await;
    let made = app
        .post("/api/accounts", &admin, json!({"username": "coord-2", "display_name": "c", "password": "long-enough", "roles": ["coordinator"], "regions": ["demo-garze"]}))
        .await;
    assert_eq!(made.status(), 201);
    let token = app.token_for("coord-2", "long-enough").await;
    assert_eq!(app.get("/api/regions/demo-garze/terminals", &token).await.status(), 200);

    // Only an admin sets another person's password (a coordinator who could would be
    // able to sign in as the lawyer and read their records); it signs them out everywhere.
    let lawyer_token = app.token_for("lawyer-zhang", "long-enough").await;
    let refused = app
        .post(&format!("/api/accounts/{id}/password"), &coordinator, json!({"password": "another-one"}))
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(app.get("/api/me", &lawyer_token).await.status(), 200, "the refusal changed nothing");
    let reset =
        app.post(&format!("/api/accounts/{id}/password"), &admin, json!({"password": "another-one"})).await;
    assert_eq!(reset.status(), 204);
    assert_eq!(app.get("/api/me", &lawyer_token).await.status(), 401);
    app.token_for("lawyer-zhang", "another-one").await;
    let audit = app.get("/api/audit", &admin).await;
    assert_eq!(audit.status(), 200);
    let rows: Vec<Value> = audit.json().await.unwrap();
    for action in ["account.created", "account.password_reset", "login"] {
        assert!(rows.iter().any(|r| r["action"] == action), "{action}");
    }
    assert_eq!(app.get("/api/audit", &coordinator).await.status(), 403);
}

#[tokio::test]
async fn audit_verify_finds_the_first_edited_row() {
    let app = spawn_app().await;
    app.swept_at_start().await;
    for _ in 0..3 {
        app.token("demo-lawyer").await;
    }
    let dir = app.stop().await;
    let mut verify = cloudlaw();
    verify.args(["audit", "verify"]).args(data_args(dir.path()));
    let output = verify.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The demo data's rows (its team, seven accounts, two offices created and
    // given their caseworkers, and the kiosk), the retention sweep at start and
    // three logins.
    assert!(stdout.contains("intact: 17 row(s)"), "{stdout}");

    // Someone with the database's owner's rights edits row 2, after dropping the guard trigger.
    let db = Db::open(dir.path()).await;
    let drop_guard = match db {
        Db::Sqlite(_) => "DROP TRIGGER audit_log_no_update",
        Db::Postgres(_) => "DROP TRIGGER audit_log_no_update ON audit_log",
    };
    on_db!(db, |pool| {
        let blocked =
            sqlx::query("UPDATE audit_log SET source = '10.0.0.1' WHERE seq = 2").execute(pool).await;
        assert!(blocked.is_err(), "the application's own connection cannot edit audit rows");
        sqlx::query(drop_guard).execute(pool).await.unwrap();
        sqlx::query("UPDATE audit_log SET source = '10.0.0.1' WHERE seq = 2").execute(pool).await.unwrap();
        pool.close().await;
    });

    let mut verify = cloudlaw();
    verify.args(["audit", "verify"]).args(data_args(dir.path()));
    let (code, stderr) = run_to_end(verify);
    assert_eq!(code, 1);
    assert!(stderr.contains("row 2 was altered"), "{stderr}");
}

/// Rewrites the audit log from row `from` on as someone who can write the
/// database but has no key: edits that row and recomputes every later hash,
/// so that the chain alone verifies.
async fn rewrite_audit_log(db: &Db, from: i64) {
    on_db!(db, |pool| {
        let drop_guard = match db {
            Db::Sqlite(_) => "DROP TRIGGER audit_log_no_update",
            Db::Postgres(_) => "DROP TRIGGER audit_log_no_update ON audit_log",
        };
        sqlx::query(drop_guard).execute(pool).await.unwrap();
        let mut rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT seq, at, actor, action, subject, detail, source, prev_hash, hash FROM audit_log ORDER BY seq",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        // Unique hashes: move them all out of the way first.
        sqlx::query("UPDATE audit_log SET prev_hash = 'x' || prev_hash, hash = 'x' || hash WHERE seq >= $1")
            .bind(from)
            .execute(pool)
            .await
            .unwrap();
        for i in 0..rows.len() {
            if rows[i].seq < from {
                continue;
            }
            if rows[i].seq == from {
                rows[i].source = "10.9.9.9".into();
            }
            rows[i].prev_hash =
                if i == 0 { signaling::store::GENESIS.to_owned() } else { rows[i - 1].hash.clone() };
            rows[i].hash = rows[i].expected_hash();
            sqlx::query("UPDATE audit_log SET source = $2, prev_hash = $3, hash = $4 WHERE seq = $1")
                .bind(rows[i].seq)
                .bind(&rows[i].source)
                .bind(&rows[i].prev_hash)
                .bind(&rows[i].hash)
                .execute(pool)
                .await
                .unwrap();
        }
        pool.close().await;
    });
}

#[tokio::test]
async fn signed_checkpoints_find_a_cut_or_rewritten_audit_log() {
    let app = spawn_app().await;
    app.swept_at_start().await;
    for _ in 0..3 {
        app.token("demo-lawyer").await;
    }
    // Stopping takes a last checkpoint, covering every row (the demo data's 13,
    // the sweep at start and 3 logins).
    let dir = app.stop().await;
    let checkpoints = std::fs::read_to_string(dir.path().join("audit-checkpoints.jsonl")).unwrap();
    assert!(checkpoints.contains("\"seq\":17"), "{checkpoints}");
    let verify = || {
        let mut verify = cloudlaw();
        verify.args(["audit", "verify"]).args(data_args(dir.path()));
        run_to_end(verify)
    };
    assert_eq!(verify().0, 0);

    // Rows 2 onwards rewritten and their hashes recomputed: the chain holds, the checkpoint does not.
    let db = Db::open(dir.path()).await;
    rewrite_audit_log(&db, 2).await;
    let (code, stderr) = verify();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("row 17 is not the row signed in its checkpoint"), "{stderr}");

    // The server still starts on it, but says so loudly and in its metrics.
    let mut command = cloudlaw();
    command.args(["serve", "--listen", "127.0.0.1:0"]).args(data_args(dir.path()));
    let mut server = crate::support::CloudlawProcess::start(command);
    let addr = server.wait_listening();
    let metrics = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cloudlaw_audit_chain_broken 1"), "{metrics}");
    server.terminate();
    assert!(server.log.iter().any(|l| l.contains("TAMPERED") && l.contains("row 17")), "{:?}", server.log);
}

#[tokio::test]
async fn signed_checkpoints_find_rows_cut_from_the_end() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.token("demo-lawyer").await;
    }
    let dir = app.stop().await;
    let db = Db::open(dir.path()).await;
    on_db!(db, |pool| {
        let drop_guard = match db {
            Db::Sqlite(_) => "DROP TRIGGER audit_log_no_delete",
            Db::Postgres(_) => "DROP TRIGGER audit_log_no_delete ON audit_log",
        };
        sqlx::query(drop_guard).execute(pool).await.unwrap();
        sqlx::query("DELETE FROM audit_log WHERE seq > 8").execute(pool).await.unwrap();
        pool.close().await;
    });
    let mut verify = cloudlaw();
    verify.args(["audit", "verify"]).args(data_args(dir.path()));
    let (code, stderr) = run_to_end(verify);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("log now ends at row 8: rows were cut"), "{stderr}");
}
