//! Referrals end to end: the lawyer proposes, the resident agrees or not on
//! the kiosk (over the real WebSocket), the office's caseworkers take the
//! referral to an outcome, any kiosk looks up its status by code; and who
//! may see or touch what, with bad input changing nothing.

use serde_json::{Value, json};

use crate::live::{Client, another_kiosk, kiosk_token, lawyer, request};
use crate::support::{Db, TestApp, on_db, spawn_app};

/// A consultation between demo-lawyer and the demo kiosk, running.
struct Consulting {
    lawyer: Client,
    kiosk: Client,
    kiosk_token: String,
    lawyer_token: String,
    consultation: String,
}

async fn consulting(app: &TestApp) -> Consulting {
    let mut lawyer = lawyer(app, "demo-lawyer").await;
    lawyer.available().await;
    let kiosk_token = kiosk_token(app).await;
    let mut kiosk = Client::connect(app, &kiosk_token).await;
    kiosk.send(request("bo", "land")).await;
    let request_id = kiosk.expect("consult.queued").await["request"].as_str().unwrap().to_owned();
    lawyer.expect("consult.offer").await;
    lawyer.send(json!({"type": "consult.accept", "request": request_id})).await;
    let consultation = lawyer.expect("consult.started").await["consultation"].as_str().unwrap().to_owned();
    kiosk.expect("consult.started").await;
    let lawyer_token = app.token("demo-lawyer").await;
    Consulting { lawyer, kiosk, kiosk_token, lawyer_token, consultation }
}

/// The demo region's office for `service`, as the lawyer sees the choices.
async fn office(app: &TestApp, c: &Consulting, service: &str) -> String {
    let listed = app.get(&format!("/api/consultations/{}/referrals", c.consultation), &c.lawyer_token).await;
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    let office = listed["offices"].as_array().unwrap().iter().find(|o| o["service"] == service).unwrap();
    office["id"].as_str().unwrap().to_owned()
}

async fn propose(app: &TestApp, c: &Consulting, office: &str, matter: &str) -> reqwest::Response {
    app.post(
        &format!("/api/consultations/{}/referrals", c.consultation),
        &c.lawyer_token,
        json!({"office": office, "matter": matter}),
    )
    .await
}

async fn account_id(app: &TestApp, username: &str) -> String {
    app.login(username).await["account"]["id"].as_str().unwrap().to_owned()
}

async fn referral_rows(app: &TestApp) -> i64 {
    let db = Db::open(app.data_dir.path()).await;
    on_db!(db, |pool| {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM referrals").fetch_one(pool).await.unwrap();
        pool.close().await;
        n
    })
}

async fn sql(app: &TestApp, statement: &'static str, id: &str) {
    let db = Db::open(app.data_dir.path()).await;
    on_db!(db, |pool| {
        let done = sqlx::query(statement).bind(id).execute(pool).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{statement}");
        pool.close().await;
    });
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let db = Db::open(app.data_dir.path()).await;
    on_db!(db, |pool| {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq").fetch_all(pool).await.unwrap();
        pool.close().await;
        rows
    })
}

#[tokio::test]
async fn a_referral_goes_from_the_lawyers_proposal_through_consent_to_its_outcome() {
    let app = spawn_app().await;
    let mut c = consulting(&app).await;
    let legal_aid = office(&app, &c, "legal_aid").await;

    let proposed = propose(
        &app,
        &c,
        &legal_aid,
        "  Land contract dispute with the township; needs a lawyer in court.  ",
    )
    .await;
    assert_eq!(proposed.status(), 201);
    let proposed: Value = proposed.json().await.unwrap();
    assert_eq!(proposed["status"], "proposed");
    assert_eq!(proposed["code"], Value::Null);
    assert_eq!(proposed["matter"], "Land contract dispute with the township; needs a lawyer in court.");
    let id = proposed["id"].as_str().unwrap().to_owned();

    // The kiosk is asked, with what it needs to say to the resident.
    let asked = c.kiosk.expect("referral.proposed").await;
    assert_eq!(asked["referral"], id.as_str());
    assert_eq!(asked["consultation"], c.consultation.as_str());
    assert_eq!(asked["service"], "legal_aid");
    assert!(asked["office"].as_str().unwrap().contains("Legal Aid"));
    // Its name in Tibetan, for a resident who reads Tibetan (the demo office has one).
    assert!(asked["office_names"]["bo"].as_str().unwrap().starts_with("དཀར་མཛེས་"), "{asked}");
    assert!(asked["expires_at"].as_i64().unwrap() > 0);
    // A kiosk that missed the push finds it again; nobody else can ask.
    let waiting: Value = app.get("/api/referrals/proposed", &c.kiosk_token).await.json().await.unwrap();
    assert_eq!(waiting.as_array().unwrap().len(), 1);
    for field in ["referral", "consultation", "service", "office", "office_names", "expires_at"] {
        assert_eq!(waiting[0][field], asked[field], "{field}");
    }
    assert_eq!(app.get("/api/referrals/proposed", &c.lawyer_token).await.status(), 403);

    // Nobody sees a proposal but its lawyer: not the caseworkers, not the status lookup.
    let caseworker = app.token("demo-caseworker").await;
    let queue: Value = app.get("/api/referrals?status=all", &caseworker).await.json().await.unwrap();
    assert_eq!(queue, json!([]));

    let agreed = app
        .post(
            &format!("/api/referrals/{id}/consent"),
            &c.kiosk_token,
            json!({"agree": true, "contact": " 13800138000 "}),
        )
        .await;
    assert_eq!(agreed.status(), 200);
    let agreed = agreed.text().await.unwrap();
    assert_eq!(agreed.matches("\"status\"").count(), 1, "{agreed}");
    let agreed: Value = serde_json::from_str(&agreed).unwrap();
    assert_eq!(agreed["status"], "new");
    let code = agreed["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert!(
        code.chars().filter(|c| *c != '-').all(|c| "23456789ABCDEFGHJKMNPQRSTUVWXYZ".contains(c)),
        "{code}"
    );
    assert!(agreed["qr_svg"].as_str().unwrap().contains("<svg"));
    assert_eq!(agreed["service"], "legal_aid");
    assert_eq!(agreed["office_names"], asked["office_names"]);
    let answered = c.lawyer.expect("referral.answered").await;
    assert_eq!(answered["referral"], id.as_str());
    assert_eq!(answered["agreed"], true);
    // Answered once only.
    let again =
        app.post(&format!("/api/referrals/{id}/consent"), &c.kiosk_token, json!({"agree": false})).await;
    assert_eq!(again.status(), 409);

    // Any kiosk finds where it stands by its code, in any case, with or without
    // the dash, and nothing else about it.
    let admin = app.token("demo-admin").await;
    let other_kiosk = another_kiosk(&app, &admin, 2).await;
    let typed = code.replace('-', " ").to_lowercase();
    let status = app.get(&format!("/api/referral-status/{typed}"), &other_kiosk).await;
    assert_eq!(status.status(), 200);
    let status: Value = status.json().await.unwrap();
    let mut keys: Vec<&String> = status.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "office", "office_names", "outcome", "service", "status", "updated_at"]);
    assert_eq!(status["office_names"], asked["office_names"]);
    assert_eq!(status["code"], code.as_str());
    assert_eq!(status["status"], "new");

    // The legal-aid office's caseworker has it in full; the mediation
    // committee's has nothing of it; the coordinator sees where it stands only.
    let queue: Value = app.get("/api/referrals", &caseworker).await.json().await.unwrap();
    assert_eq!(queue.as_array().unwrap().len(), 1, "{queue}");
    assert_eq!(queue[0]["contact"], "13800138000");
    assert_eq!(queue[0]["topic"], "land");
    assert_eq!(queue[0]["language"], "bo");
    assert_eq!(queue[0]["overdue"], false);
    let due = queue[0]["due_at"].as_i64().unwrap() - queue[0]["consented_at"].as_i64().unwrap();
    assert_eq!(due, 7 * 86_400, "the demo legal-aid centre decides within 7 days");
    let mediator = app.token("demo-caseworker-2").await;
    let theirs: Value = app.get("/api/referrals?status=all", &mediator).await.json().await.unwrap();
    assert_eq!(theirs, json!([]));
    assert_eq!(app.get(&format!("/api/referrals/{id}"), &mediator).await.status(), 404);
    assert_eq!(app.post(&format!("/api/referrals/{id}/accept"), &mediator, json!({})).await.status(), 404);
    let coordinator = app.token("demo-coordinator").await;
    let overseen: Value = app.get(&format!("/api/referrals/{id}"), &coordinator).await.json().await.unwrap();
    assert_eq!(overseen["status"], "new");
    assert_eq!(overseen["matter"], Value::Null);
    assert_eq!(overseen["contact"], Value::Null);
    assert_eq!(overseen["notes"], Value::Null);
    assert_eq!(overseen["caseworkers"], Value::Null);
    let denied = |actions: Vec<String>| actions.iter().filter(|a| *a == "referral.denied").count();
    let denied_before = denied(audit_actions(&app).await);
    assert_eq!(app.post(&format!("/api/referrals/{id}/accept"), &coordinator, json!({})).await.status(), 403);
    assert_eq!(app.get(&format!("/api/referrals/{id}"), &c.lawyer_token).await.status(), 403);
    assert_eq!(
        app.post(&format!("/api/referrals/{id}/accept"), &c.kiosk_token, json!({})).await.status(),
        403
    );
    assert_eq!(denied(audit_actions(&app).await), denied_before + 3, "every refusal is audited");

    // The caseworker accepts, notes and closes it.
    let accepted: Value =
        app.post(&format!("/api/referrals/{id}/accept"), &caseworker, json!({})).await.json().await.unwrap();
    assert_eq!(accepted["status"], "accepted");
    assert!(accepted["assignee"].as_str().unwrap().contains("Zhang"));
    let mediator_id = account_id(&app, "demo-caseworker-2").await;
    let elsewhere =
        app.post(&format!("/api/referrals/{id}/assign"), &caseworker, json!({"account": mediator_id})).await;
    assert_eq!(elsewhere.status(), 400, "not a caseworker of this office");
    let noted = app
        .post(
            &format!("/api/referrals/{id}/notes"),
            &caseworker,
            json!({"text": "Called the resident; papers on Monday."}),
        )
        .await;
    assert_eq!(noted.status(), 200);
    let noted: Value = noted.json().await.unwrap();
    assert_eq!(noted["notes"][0]["text"], "Called the resident; papers on Monday.");
    let colleagues: Vec<&str> = noted["caseworkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(colleagues, ["张办案员 Caseworker Zhang, legal aid (demo)"], "who it may be assigned to");
    let wrong = app.post(&format!("/api/referrals/{id}/close"), &caseworker, json!({"outcome": "won"})).await;
    assert_eq!(wrong.status(), 400);
    let closed: Value = app
        .post(&format!("/api/referrals/{id}/close"), &caseworker, json!({"outcome": "legal_aid_granted"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["outcome"], "legal_aid_granted");
    for (path, body) in [
        ("close", json!({"outcome": "withdrawn"})),
        ("notes", json!({"text": "late"})),
        ("accept", json!({})),
    ] {
        let refused = app.post(&format!("/api/referrals/{id}/{path}"), &caseworker, body).await;
        assert_eq!(refused.status(), 409, "{path} on a closed referral");
    }
    let open: Value = app.get("/api/referrals", &caseworker).await.json().await.unwrap();
    assert_eq!(open, json!([]));
    let closed_list: Value = app.get("/api/referrals?status=closed", &caseworker).await.json().await.unwrap();
    assert_eq!(closed_list.as_array().unwrap().len(), 1);

    let status: Value =
        app.get(&format!("/api/referral-status/{code}"), &c.kiosk_token).await.json().await.unwrap();
    assert_eq!(status["status"], "closed");
    assert_eq!(status["outcome"], "legal_aid_granted");

    let summary: Value = app.get("/api/referrals/summary", &coordinator).await.json().await.unwrap();
    let legal = summary.as_array().unwrap().iter().find(|o| o["service"] == "legal_aid").unwrap();
    assert_eq!(
        (legal["new"].as_i64(), legal["accepted"].as_i64(), legal["closed"].as_i64()),
        (Some(0), Some(0), Some(1))
    );
    let mine: Value = app.get("/api/referrals/summary", &caseworker).await.json().await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1, "a caseworker counts their own office only");

    // The lawyer sees the code; every step is in the audit log.
    let of_consultation: Value = app
        .get(&format!("/api/consultations/{}/referrals", c.consultation), &c.lawyer_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(of_consultation["referrals"][0]["code"], code.as_str());
    assert_eq!(of_consultation["referrals"][0]["contact"], Value::Null, "the contact is for the office");
    let actions = audit_actions(&app).await;
    for action in [
        "referral.proposed",
        "referral.agreed",
        "referral.status_read",
        "referral.listed",
        "referral.read",
        "referral.denied",
        "referral.accepted",
        "referral.noted",
        "referral.closed",
        "referral.summary_read",
        "referral.proposals_listed",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} audited");
    }
}

#[tokio::test]
async fn a_resident_who_says_no_leaves_nothing_behind() {
    let app = spawn_app().await;
    let mut c = consulting(&app).await;
    let mediation = office(&app, &c, "mediation").await;
    let proposed: Value = propose(&app, &c, &mediation, "Grazing boundary quarrel with a neighbour.")
        .await
        .json()
        .await
        .unwrap();
    let id = proposed["id"].as_str().unwrap().to_owned();
    c.kiosk.expect("referral.proposed").await;
    assert_eq!(referral_rows(&app).await, 1);

    // Another kiosk, and the lawyer, cannot answer for the resident.
    let admin = app.token("demo-admin").await;
    let other_kiosk = another_kiosk(&app, &admin, 2).await;
    for token in [&other_kiosk, &c.lawyer_token] {
        let refused = app.post(&format!("/api/referrals/{id}/consent"), token, json!({"agree": true})).await;
        assert_eq!(refused.status(), 404);
    }
    let bad = app
        .post(
            &format!("/api/referrals/{id}/consent"),
            &c.kiosk_token,
            json!({"agree": true, "contact": "x".repeat(101)}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let malformed =
        app.post(&format!("/api/referrals/{id}/consent"), &c.kiosk_token, json!({"agree": "yes"})).await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(referral_rows(&app).await, 1, "bad answers change nothing");

    let declined =
        app.post(&format!("/api/referrals/{id}/consent"), &c.kiosk_token, json!({"agree": false})).await;
    assert_eq!(declined.status(), 200);
    assert_eq!(declined.text().await.unwrap(), r#"{"status":"declined"}"#);
    assert_eq!(c.lawyer.expect("referral.answered").await["agreed"], false);
    assert_eq!(referral_rows(&app).await, 0, "nothing created");
    let waiting: Value = app.get("/api/referrals/proposed", &c.kiosk_token).await.json().await.unwrap();
    assert_eq!(waiting, json!([]));
    let mediator = app.token("demo-caseworker-2").await;
    let queue: Value = app.get("/api/referrals?status=all", &mediator).await.json().await.unwrap();
    assert_eq!(queue, json!([]));
    let listed: Value = app
        .get(&format!("/api/consultations/{}/referrals", c.consultation), &c.lawyer_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["referrals"], json!([]));
    assert!(audit_actions(&app).await.iter().any(|a| a == "referral.declined"));

    // The lawyer may ask again, once the resident has said no.
    assert_eq!(propose(&app, &c, &mediation, "Asked again after explaining.").await.status(), 201);
}

#[tokio::test]
async fn proposals_are_the_lawyers_own_in_time_and_well_formed() {
    let app = spawn_app().await;
    let c = consulting(&app).await;
    let legal_aid = office(&app, &c, "legal_aid").await;

    let stranger = app.token("demo-lawyer-2").await;
    let path = format!("/api/consultations/{}/referrals", c.consultation);
    assert_eq!(app.get(&path, &stranger).await.status(), 404);
    let theirs = app.post(&path, &stranger, json!({"office": legal_aid, "matter": "x"})).await;
    assert_eq!(theirs.status(), 404, "not the stranger's consultation");
    assert_eq!(
        app.post(&path, &c.kiosk_token, json!({"office": legal_aid, "matter": "x"})).await.status(),
        404
    );
    assert_eq!(propose(&app, &c, &legal_aid, "   ").await.status(), 400);
    assert_eq!(propose(&app, &c, &legal_aid, &"长".repeat(2001)).await.status(), 400);
    assert_eq!(propose(&app, &c, "no-such-office", "x").await.status(), 400);
    let unknown_field =
        app.post(&path, &c.lawyer_token, json!({"office": legal_aid, "matter": "x", "extra": 1})).await;
    assert_eq!(unknown_field.status(), 400);

    // An office of another region is not this consultation's to refer to.
    let admin = app.token("demo-admin").await;
    let region = app
        .post(
            "/api/regions",
            &admin,
            json!({"id": "demo-lhasa", "name": "Lhasa (test)", "time_zone": "Asia/Shanghai"}),
        )
        .await;
    assert_eq!(region.status(), 201);
    let far = app
        .post(
            "/api/regions/demo-lhasa/offices",
            &admin,
            json!({"service": "legal_aid", "name": "Lhasa LAC", "decision_days": 7}),
        )
        .await;
    assert_eq!(far.status(), 201);
    let far: Value = far.json().await.unwrap();
    assert_eq!(propose(&app, &c, far["id"].as_str().unwrap(), "x").await.status(), 400);
    assert_eq!(referral_rows(&app).await, 0);

    // One proposal per office per consultation.
    let first: Value = propose(&app, &c, &legal_aid, "Wage arrears.").await.json().await.unwrap();
    assert_eq!(propose(&app, &c, &legal_aid, "Wage arrears, again.").await.status(), 409);

    // A proposal nobody answered in time has expired.
    let id = first["id"].as_str().unwrap().to_owned();
    sql(&app, "UPDATE referrals SET proposed_at = proposed_at - 1801 WHERE id = $1", &id).await;
    let late =
        app.post(&format!("/api/referrals/{id}/consent"), &c.kiosk_token, json!({"agree": true})).await;
    assert_eq!(late.status(), 409);
    assert_eq!(late.json::<Value>().await.unwrap()["error"]["code"], "expired");

    // Half an hour after the consultation ended, the resident has left the kiosk.
    let mediation = office(&app, &c, "mediation").await;
    sql(&app, "UPDATE consultations SET status = 'ended', ended_at = 1000 WHERE id = $1", &c.consultation)
        .await;
    let too_late = propose(&app, &c, &mediation, "x").await;
    assert_eq!(too_late.status(), 409);
    assert_eq!(too_late.json::<Value>().await.unwrap()["error"]["code"], "too_late");

    // A hotline caller has no kiosk to agree on.
    let store = app.store().await;
    let line = store.phone_lines(&"demo-garze".into(), 1).await.unwrap().remove(0);
    let lawyer_id = store.account_by_username("demo-lawyer").await.unwrap().unwrap().id;
    let by_phone = store
        .create_consultation(&signaling::store::NewConsultation {
            terminal_id: line.id,
            region_id: "demo-garze".into(),
            lawyer_id,
            interpreter_id: None,
            topic: signaling::domain::Topic::Debt,
            language: "zh".into(),
            started_at: signaling::unix_now(),
        })
        .await
        .unwrap();
    let refused = app
        .post(
            &format!("/api/consultations/{by_phone}/referrals"),
            &c.lawyer_token,
            json!({"office": mediation, "matter": "x"}),
        )
        .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "no_kiosk");

    // Only kiosks look up codes; a code that is not one is simply not found.
    assert_eq!(app.get("/api/referral-status/2345-6789", &c.lawyer_token).await.status(), 403);
    for code in ["2345-6789", "0000-0000", "%27%20OR%201=1", &"A".repeat(500)] {
        assert_eq!(
            app.get(&format!("/api/referral-status/{code}"), &c.kiosk_token).await.status(),
            404,
            "{code}"
        );
    }
}

#[tokio::test]
async fn offices_are_configured_per_region_and_late_referrals_stand_out() {
    let app = spawn_app().await;
    let coordinator = app.token("demo-coordinator").await;
    let admin = app.token("demo-admin").await;

    let offices: Value = app.get("/api/regions/demo-garze/offices", &coordinator).await.json().await.unwrap();
    assert_eq!(offices.as_array().unwrap().len(), 2);
    let created = app
        .post(
            "/api/regions/demo-garze/offices",
            &coordinator,
            json!({"service": "notary", "name": "甘孜州公证处 Notary office", "names": {"bo": " དཀར་མཛེས་ཁུལ་དཔང་ཡིག་ཁང་། "}, "decision_days": 20}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let notary: Value = created.json().await.unwrap();
    assert_eq!(notary["names"], json!({"bo": "དཀར་མཛེས་ཁུལ་དཔང་ཡིག་ཁང་།"}), "trimmed");
    let again = app
        .post(
            "/api/regions/demo-garze/offices",
            &coordinator,
            json!({"service": "notary", "name": "Twice", "decision_days": 20}),
        )
        .await;
    assert_eq!(again.status(), 409);
    // Its names in other languages: language codes, each a name, at most ten.
    let eleven: serde_json::Map<String, Value> =
        ["aa", "ab", "ac", "ad", "ae", "af", "ag", "ah", "ai", "aj", "ak"]
            .iter()
            .map(|l| (l.to_string(), json!("x")))
            .collect();
    for bad in [
        json!({"service": "Notary!", "name": "x", "decision_days": 20}),
        json!({"service": "notary_b", "name": "", "decision_days": 20}),
        json!({"service": "notary_b", "name": "x", "decision_days": 0}),
        json!({"service": "notary_b", "name": "x", "names": {"Tibetan": "x"}, "decision_days": 20}),
        json!({"service": "notary_b", "name": "x", "names": {"bo": " "}, "decision_days": 20}),
        json!({"service": "notary_b", "name": "x", "names": {"bo": "a\u{0}b"}, "decision_days": 20}),
        json!({"service": "notary_b", "name": "x", "names": {"bo": 5}, "decision_days": 20}),
        json!({"service": "notary_b", "name": "x", "names": eleven, "decision_days": 20}),
    ] {
        assert_eq!(app.post("/api/regions/demo-garze/offices", &coordinator, bad).await.status(), 400);
    }
    assert_eq!(
        app.post(
            "/api/regions/demo-lhasa/offices",
            &admin,
            json!({"service": "notary", "name": "x", "decision_days": 1})
        )
        .await
        .status(),
        404
    );
    let lawyer = app.token("demo-lawyer").await;
    assert_eq!(app.get("/api/regions/demo-garze/offices", &lawyer).await.status(), 403);
    let actions = audit_actions(&app).await;
    assert_eq!(actions.iter().filter(|a| *a == "office.denied").count(), 1, "the refusal is audited");
    assert!(actions.iter().any(|a| a == "office.listed"), "reading the offices is audited");

    // Caseworkers are accounts with that role, which only admins give.
    let made = app
        .post(
            "/api/accounts",
            &coordinator,
            json!({"username": "cw-by-coord", "display_name": "X", "password": "a-long-password-1", "roles": ["caseworker"]}),
        )
        .await;
    assert_eq!(made.status(), 403, "{}", made.text().await.unwrap());
    let made = app
        .post(
            "/api/accounts",
            &admin,
            json!({"username": "notary-clerk", "display_name": "Notary clerk", "password": "a-long-password-1", "roles": ["caseworker"]}),
        )
        .await;
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    let clerk: Value = made.json().await.unwrap();
    let lawyer_id = account_id(&app, "demo-lawyer").await;
    let notary_path = app.url(&format!("/api/offices/{}", notary["id"].as_str().unwrap()));
    let not_a_caseworker = app
        .http
        .put(&notary_path)
        .bearer_auth(&coordinator)
        .json(&json!({"name": "Notary office", "decision_days": 20, "caseworkers": [lawyer_id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_caseworker.status(), 400);
    let set = app
        .http
        .put(&notary_path)
        .bearer_auth(&coordinator)
        .json(&json!({"name": "Notary office", "names": {"zh": "公证处"}, "decision_days": 20, "caseworkers": [clerk["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.unwrap();
    assert_eq!(set["caseworkers"][0]["display_name"], "Notary clerk");
    assert_eq!(set["names"], json!({"zh": "公证处"}), "the names given replace those before");

    // A referral past its decision period stands out, in the queue and the counts.
    let c = consulting(&app).await;
    let legal_aid = office(&app, &c, "legal_aid").await;
    let proposed: Value =
        propose(&app, &c, &legal_aid, "Injury at work, employer refuses.").await.json().await.unwrap();
    let id = proposed["id"].as_str().unwrap().to_owned();
    let agreed =
        app.post(&format!("/api/referrals/{id}/consent"), &c.kiosk_token, json!({"agree": true})).await;
    assert_eq!(agreed.status(), 200);
    sql(&app, "UPDATE referrals SET due_at = 1000 WHERE id = $1", &id).await;
    let queue: Value = app.get("/api/referrals", &coordinator).await.json().await.unwrap();
    assert_eq!(queue[0]["overdue"], true);
    assert_eq!(queue[0]["contact"], Value::Null);
    let summary: Value = app.get("/api/referrals/summary", &coordinator).await.json().await.unwrap();
    let legal = summary.as_array().unwrap().iter().find(|o| o["service"] == "legal_aid").unwrap();
    assert_eq!((legal["new"].as_i64(), legal["overdue"].as_i64()), (Some(1), Some(1)));
    let notary_counts = summary.as_array().unwrap().iter().find(|o| o["service"] == "notary").unwrap();
    assert_eq!(notary_counts["new"], 0, "every office is counted, with zeros");
}

#[tokio::test]
async fn what_has_expired_is_deleted_and_the_sweep_says_how_much() {
    let app = spawn_app().await;
    // The server swept as it started (nothing to delete yet), and said so.
    app.swept_at_start().await;
    let c = consulting(&app).await;
    let legal_aid = office(&app, &c, "legal_aid").await;
    let mediation = office(&app, &c, "mediation").await;
    let mut ids = Vec::new();
    for office in [&legal_aid, &mediation] {
        let proposed: Value = propose(&app, &c, office, "Matter.").await.json().await.unwrap();
        let id = proposed["id"].as_str().unwrap().to_owned();
        let agreed = app
            .post(
                &format!("/api/referrals/{id}/consent"),
                &c.kiosk_token,
                json!({"agree": true, "contact": "13800138000"}),
            )
            .await;
        assert_eq!(agreed.status(), 200);
        ids.push(id);
    }
    let day = 86_400;
    let now = signaling::unix_now();
    let db = Db::open(app.data_dir.path()).await;
    on_db!(db, |pool| {
        // Closed six years ago: goes whole. Closed 40 days ago: loses the contact only.
        for (id, closed) in [(&ids[0], now - 6 * 365 * day), (&ids[1], now - 40 * day)] {
            sqlx::query(
                "UPDATE referrals SET status = 'closed', outcome = 'mediated', closed_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(closed)
            .execute(pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "UPDATE consultations SET status = 'ended', ended_at = $2, summary = 'Advice.' WHERE id = $1",
        )
        .bind(&c.consultation)
        .bind(now - 6 * 365 * day)
        .execute(pool)
        .await
        .unwrap();
        pool.close().await;
    });
    // A proposal nobody answered, made an hour ago.
    let store = app.store().await;
    let notary = store
        .create_office(
            &"demo-garze".into(),
            "notary",
            "Notary",
            &signaling::store::OfficeNames::default(),
            10,
            &signaling::store::AuditEntry::system("office.created"),
        )
        .await
        .unwrap();
    let lawyer_id = store.account_by_username("demo-lawyer").await.unwrap().unwrap().id;
    let terminal = store.terminals_in_region(&"demo-garze".into()).await.unwrap()[0].id.clone();
    let consultation: signaling::ids::ConsultationId = c.consultation.as_str().into();
    let new = signaling::store::NewReferral {
        consultation_id: &consultation,
        office_id: &notary,
        terminal_id: &terminal,
        topic: "land",
        language: "bo",
        matter: "m",
        proposed_by: &lawyer_id,
        now: now - 3600,
    };
    store.propose_referral(&new, &signaling::store::AuditEntry::system("referral.proposed")).await.unwrap();

    let config = signaling::retention::RetentionConfig::default();
    let swept = signaling::retention::sweep(&store, &config).await.unwrap();
    assert_eq!((swept.records, swept.referrals, swept.contacts, swept.proposals), (1, 1, 1, 1));
    assert_eq!(referral_rows(&app).await, 1);
    let left: Value = app
        .get(&format!("/api/referrals/{}", ids[1]), &app.token("demo-caseworker-2").await)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(left["contact"], Value::Null);
    assert_eq!(left["matter"], "Matter.");
    let record: Value = app
        .get(&format!("/api/consultations/{}", c.consultation), &c.lawyer_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record.get("summary"), None, "the written record is gone");
    assert_eq!(record["rating"], Value::Null);
    let db = Db::open(app.data_dir.path()).await;
    let details: Vec<String> = on_db!(db, |pool| {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'retention.swept' ORDER BY seq")
                .fetch_all(pool)
                .await
                .unwrap();
        pool.close().await;
        rows
    });
    let details: Vec<Value> = details.iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    let zeros = json!({"records": 0, "referrals": 0, "contacts": 0, "proposals": 0});
    assert_eq!(
        details,
        [zeros.clone(), json!({"records": 1, "referrals": 1, "contacts": 1, "proposals": 1})]
    );

    // Nothing more to do: nothing deleted, and the log says the sweep ran.
    assert!(!signaling::retention::sweep(&store, &config).await.unwrap().any());
    let db = Db::open(app.data_dir.path()).await;
    let last: String = on_db!(db, |pool| {
        let row = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE action = 'retention.swept' ORDER BY seq DESC LIMIT 1",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        pool.close().await;
        row
    });
    assert_eq!(serde_json::from_str::<Value>(&last).unwrap(), zeros);
}
