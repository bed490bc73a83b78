//! Service records against the consultations they count: the figures per
//! volunteer, team and region (JSON and CSV), who may read which, and the PDF
//! documents, read back with poppler (`pdftotext`) and turned into an image
//! (`pdftoppm`) to see that their pages carry the Tibetan, Chinese and Latin text.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Db, TestApp, on_db, spawn_app};
use signaling::domain::Topic;
use signaling::ids::{AccountId, ConsultationId};
use signaling::store::{
    AuditEntry, Expiry, NewConsultation, NewReferral, NewTerminal, ReferralChange, RegionRecord,
};

async fn account_id(app: &TestApp, username: &str) -> AccountId {
    let store = app.store().await;
    store.account_by_username(username).await.unwrap().unwrap().id
}

/// A consultation in the demo region that lasted `minutes`, with a rating.
async fn consultation(
    app: &TestApp,
    lawyer: &AccountId,
    interpreter: Option<&AccountId>,
    minutes: i64,
    rating: Option<i64>,
) -> ConsultationId {
    consultation_in(app, "demo-garze", lawyer, interpreter, minutes, rating).await
}

/// A consultation at `region`'s first terminal.
async fn consultation_in(
    app: &TestApp,
    region: &str,
    lawyer: &AccountId,
    interpreter: Option<&AccountId>,
    minutes: i64,
    rating: Option<i64>,
) -> ConsultationId {
    let store = app.store().await;
    let terminal = store.terminals_in_region(&region.into()).await.unwrap()[0].id.clone();
    let started_at = signaling::unix_now() - 3 * 3600;
    let id = store
        .create_consultation(&NewConsultation {
            terminal_id: terminal,
            region_id: region.into(),
            lawyer_id: lawyer.clone(),
            interpreter_id: interpreter.cloned(),
            topic: Topic::Land,
            language: "bo".into(),
            started_at,
        })
        .await
        .unwrap();
    let db = Db::open(app.data_dir.path()).await;
    on_db!(db, |pool| {
        sqlx::query("UPDATE consultations SET status = 'ended', ended_at = $2, rating = $3 WHERE id = $1")
            .bind(id.as_str())
            .bind(started_at + minutes * 60)
            .bind(rating)
            .execute(pool)
            .await
            .unwrap();
        pool.close().await;
    });
    id
}

fn today_and_tomorrow() -> (String, String) {
    let zone = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let today =
        zone.to_datetime(jiff::Timestamp::from_second(signaling::unix_now() - 3 * 3600).unwrap()).date();
    (today.to_string(), today.tomorrow().unwrap().to_string())
}

/// Reads a PDF with poppler: its text, and its first page as a grey image
/// (width, height, pixels).
fn read_pdf(bytes: &[u8], dir: &Path, name: &str) -> (String, (usize, usize, Vec<u8>)) {
    let pdf = dir.join(format!("{name}.pdf"));
    std::fs::write(&pdf, bytes).unwrap();
    let text = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(text.status.success(), "pdftotext: {}", String::from_utf8_lossy(&text.stderr));
    let prefix = dir.join(name);
    let page = Command::new("pdftoppm")
        .args(["-gray", "-r", "40", "-singlefile", "-f", "1", "-l", "1"])
        .arg(&pdf)
        .arg(&prefix)
        .output()
        .expect("pdftoppm (poppler-utils)");
    assert!(page.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&page.stderr));
    let image = std::fs::read(prefix.with_extension("pgm")).unwrap();
    (String::from_utf8(text.stdout).unwrap(), pgm(&image))
}

/// A binary PGM's width, height and pixels.
fn pgm(data: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
    }
    assert_eq!(fields[0], "P5");
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (width, height, data[at + 1..at + 1 + width * height].to_vec())
}

/// The share of dark pixels in rows `top..bottom` (fractions of the height).
fn ink(image: &(usize, usize, Vec<u8>), top: f32, bottom: f32) -> f32 {
    let (width, height, pixels) = image;
    let rows = (*height as f32 * top) as usize..(*height as f32 * bottom) as usize;
    let band = &pixels[rows.start * width..rows.end * width];
    band.iter().filter(|&&p| p < 128).count() as f32 / band.len() as f32
}

#[tokio::test]
async fn the_figures_are_the_consultations_they_count_for_whoever_may_read_them() {
    let app = spawn_app().await;
    let drolma = account_id(&app, "demo-lawyer").await;
    let wang = account_id(&app, "demo-lawyer-2").await;
    let tsering = account_id(&app, "demo-interpreter").await;
    let with_interpreter = consultation(&app, &drolma, Some(&tsering), 30, Some(5)).await;
    consultation(&app, &drolma, None, 15, Some(4)).await;
    consultation(&app, &wang, None, 10, None).await;

    // One agreed referral, one the resident has not answered (not counted).
    let store = app.store().await;
    let offices = store.offices_in_region(&"demo-garze".into()).await.unwrap();
    let terminal = store.terminals_in_region(&"demo-garze".into()).await.unwrap()[0].id.clone();
    let mut agreed = None;
    for (office, agree) in [(&offices[0], true), (&offices[1], false)] {
        let new = NewReferral {
            consultation_id: &with_interpreter,
            office_id: &office.id,
            terminal_id: &terminal,
            topic: "land",
            language: "bo",
            matter: "m",
            proposed_by: &drolma,
            now: signaling::unix_now(),
        };
        let id = store.propose_referral(&new, &AuditEntry::system("referral.proposed")).await.unwrap();
        if agree {
            let audit = AuditEntry::system("referral.agreed");
            assert!(
                store.consent_referral(&id, "ABCDEFGH", None, new.now, new.now + 1, &audit).await.unwrap()
            );
            agreed = Some(id);
        }
    }

    // The consultation with the interpreter was a booked appointment, kept (the
    // live path links them when the appointment's call is matched).
    let now = signaling::unix_now();
    let booking = signaling::store::Booking {
        terminal_id: terminal.clone(),
        region_id: "demo-garze".into(),
        lawyer_id: drolma.clone(),
        language: "bo".into(),
        topic: "land".into(),
        starts_at: now - 3 * 3600,
        ends_at: now - 3 * 3600 + 1800,
        buffer_secs: 0,
        booked_by: "test".into(),
        day: (0, i64::MAX),
        daily_cap: 100,
        phone: None,
    };
    let booked = store.book(&booking, &AuditEntry::system("appointment.booked")).await.unwrap();
    let signaling::store::BookOutcome::Booked(appointment) = booked else { panic!("{booked:?}") };
    let db = Db::open(app.data_dir.path()).await;
    on_db!(db, |pool| {
        sqlx::query("UPDATE appointments SET status = 'completed', consultation_id = $2 WHERE id = $1")
            .bind(appointment.as_str())
            .bind(with_interpreter.as_str())
            .execute(pool)
            .await
            .unwrap();
        pool.close().await;
    });

    let (from, to) = today_and_tomorrow();
    let admin = app.token("demo-admin").await;
    let all: Value =
        app.get(&format!("/api/service-records?from={from}&to={to}"), &admin).await.json().await.unwrap();
    let line = |key: &AccountId| {
        all["lines"].as_array().unwrap().iter().find(|l| l["key"] == key.as_str()).unwrap().clone()
    };
    let d = line(&drolma);
    assert_eq!((&d["consultations"], &d["minutes"], &d["referrals"]), (&json!(2), &json!(45), &json!(1)));
    assert_eq!((&d["ratings"], &d["rating_avg"]), (&json!(2), &json!(4.5)));
    assert_eq!(d["appointments_kept"], 1);
    assert_eq!(line(&tsering)["appointments_kept"], 1, "the interpreter kept it too");
    assert_eq!(line(&wang)["appointments_kept"], 0);
    assert_eq!(
        (line(&tsering)["consultations"].clone(), line(&tsering)["minutes"].clone()),
        (json!(1), json!(30))
    );
    assert_eq!(line(&wang)["rating_avg"], Value::Null);
    assert_eq!((&all["total"]["consultations"], &all["total"]["minutes"]), (&json!(3), &json!(55)));

    let csv = app.get(&format!("/api/service-records?from={from}&to={to}&format=csv"), &admin).await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("key,name,consultations,minutes,appointments_kept,referrals,ratings,rating_avg\n")
    );
    assert!(csv.contains(&format!("{drolma},\"卓玛律师 Lawyer Drolma (demo)\",2,45,1,1,2,4.50\n")), "{csv}");
    assert!(csv.ends_with(",\"total\",3,55,1,1,2,4.50\n"), "{csv}");

    let by_team: Value = app
        .get(&format!("/api/service-records?from={from}&to={to}&by=team"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_team["lines"][0]["consultations"], 2, "the demo team has Drolma only");
    let by_region: Value = app
        .get(&format!("/api/service-records?from={from}&to={to}&by=region"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_region["lines"][0]["key"], "demo-garze");
    assert_eq!(by_region["lines"][0]["consultations"], 3);

    // A volunteer reads their own line only; a coordinator their regions'.
    let own: Value = app
        .get(&format!("/api/service-records?from={from}&to={to}"), &app.token("demo-lawyer-2").await)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["lines"].as_array().unwrap().len(), 1);
    assert_eq!(own["lines"][0]["key"], wang.as_str());
    assert_eq!(own["total"]["consultations"], 1, "their total is theirs");
    let lawyer = app.token("demo-lawyer").await;
    assert_eq!(
        app.get(&format!("/api/service-records?from={from}&to={to}&by=region"), &lawyer).await.status(),
        403
    );
    let coordinator = app.token("demo-coordinator").await;
    let theirs: Value = app
        .get(&format!("/api/service-records?from={from}&to={to}"), &coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["total"]["consultations"], 3);
    for token in [app.token("demo-caseworker").await, app.enroll_demo_terminal().await.0] {
        assert_eq!(app.get(&format!("/api/service-records?from={from}&to={to}"), &token).await.status(), 403);
    }
    for query in [
        "from=2026-13-01&to=2027-01-01",
        "from=2026-01-02&to=2026-01-01",
        "from=2025-01-01&to=2026-06-01",
        "from=x",
        "by=nobody",
    ] {
        let refused = app.get(&format!("/api/service-records?{query}"), &admin).await;
        assert_eq!(refused.status(), 400, "{query}");
    }
    let after: jiff::civil::Date = to.parse().unwrap();
    let after = after.tomorrow().unwrap();
    let later: Value =
        app.get(&format!("/api/service-records?from={to}&to={after}"), &admin).await.json().await.unwrap();
    assert_eq!(later["total"]["consultations"], 0);

    // Each refusal above left a trace: the lawyer's `by=region`, the
    // caseworker's and the kiosk's reads.
    let db = Db::open(app.data_dir.path()).await;
    let denied: i64 = on_db!(db, |pool| {
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'service_records.denied'")
            .fetch_one(pool)
            .await
            .unwrap();
        pool.close().await;
        n
    });
    assert_eq!(denied, 3);

    // The referral closes and its retention runs out: the sweep deletes it,
    // and the volunteer's record still counts it.
    let agreed = agreed.unwrap();
    let now = signaling::unix_now();
    let close = ReferralChange::Close { outcome: "withdrawn" };
    assert!(
        store.change_referral(&agreed, close, now, &AuditEntry::system("referral.closed")).await.unwrap()
    );
    let expiry = Expiry {
        records_before: None,
        referrals_before: Some(now + 1),
        contacts_before: None,
        proposals_before: 0,
    };
    assert_eq!(store.sweep_expired(&expiry).await.unwrap().referrals, 1);
    let swept: Value =
        app.get(&format!("/api/service-records?from={from}&to={to}"), &admin).await.json().await.unwrap();
    let drolma_line =
        swept["lines"].as_array().unwrap().iter().find(|l| l["key"] == drolma.as_str()).unwrap();
    assert_eq!(drolma_line["referrals"], 1, "the deleted referral was made all the same");
    assert_eq!(swept["total"]["referrals"], 1);
}

#[tokio::test]
async fn the_certificate_and_the_monthly_report_are_pdfs_with_tibetan_and_chinese_on_them() {
    let app = spawn_app().await;
    let drolma = account_id(&app, "demo-lawyer").await;
    consultation(&app, &drolma, None, 90, Some(5)).await;
    let (from, to) = today_and_tomorrow();
    let dir = tempfile::tempdir().unwrap();

    let lawyer = app.token("demo-lawyer").await;
    let response = app.get(&format!("/api/service-records/certificate?from={from}&to={to}"), &lawyer).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let (text, page) = read_pdf(&bytes, dir.path(), "certificate");
    for expected in [
        "志愿法律服务证明",
        "Certificate of Volunteer Legal Service",
        "卓玛律师 Lawyer Drolma (demo)",
        "ཞབས་ཞུ",
        "甘孜藏族自治州",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let consultations = text.lines().find(|l| l.contains("Consultations")).unwrap();
    assert!(consultations.trim_end().ends_with('1'), "{consultations}");
    let hours = text.lines().find(|l| l.contains("Hours in calls")).unwrap();
    assert!(hours.trim_end().ends_with("1.5"), "{hours}");
    // The page is A4 with its title at the top and the figures below.
    assert!((page.1 as f32 / page.0 as f32 - 842.0 / 595.0).abs() < 0.02);
    assert!(ink(&page, 0.09, 0.20) > 0.02, "the titles are drawn");
    assert!(ink(&page, 0.42, 0.70) > 0.01, "the figures are drawn");
    assert!(ink(&page, 0.96, 1.0) < 0.001, "the bottom margin is empty");
    if let Some(out) = std::env::var_os("SERVICE_PDF_DIR") {
        // To look at them: SERVICE_PDF_DIR=/tmp/pdfs cargo test -p signaling --test system service
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(Path::new(&out).join("certificate.pdf"), &bytes).unwrap();
    }

    // Another volunteer's is not the lawyer's to read; a coordinator of their region may.
    let wang = account_id(&app, "demo-lawyer-2").await;
    let path = format!("/api/service-records/certificate?account={wang}&from={from}&to={to}");
    assert_eq!(app.get(&path, &lawyer).await.status(), 404);
    assert_eq!(app.get(&path, &app.token("demo-admin").await).await.status(), 200);

    // Drolma also served a kiosk of a region the demo coordinator does not
    // coordinate: her own certificate and an admin's count it; the
    // coordinator's certifies what she gave in their region only.
    let store = app.store().await;
    let amdo = RegionRecord {
        id: "test-amdo".into(),
        name: "阿坝州 Ngawa".into(),
        parent_id: None,
        time_zone: "Asia/Shanghai".into(),
    };
    store.ensure_region(&amdo).await.unwrap();
    let kiosk = NewTerminal {
        name: "Ngawa kiosk".into(),
        township: "Barkam".into(),
        region_id: amdo.id.clone(),
        languages: vec![],
        enrollment_code_hash: String::new(),
        enrollment_expires_at: 0,
    };
    store.create_terminal(&kiosk, &AuditEntry::system("terminal.created")).await.unwrap();
    consultation_in(&app, "test-amdo", &drolma, None, 60, None).await;
    let path = format!("/api/service-records/certificate?account={drolma}&from={from}&to={to}");
    let coordinator = app.token("demo-coordinator").await;
    for (token, count, hours, amdo_named) in [
        (&lawyer, '2', "2.5", true),
        (&app.token("demo-admin").await, '2', "2.5", true),
        (&coordinator, '1', "1.5", false),
    ] {
        let response = app.get(&path, token).await;
        assert_eq!(response.status(), 200);
        let (text, _) = read_pdf(&response.bytes().await.unwrap(), dir.path(), "scoped");
        let consultations = text.lines().find(|l| l.contains("Consultations")).unwrap();
        assert!(consultations.trim_end().ends_with(count), "{consultations}");
        let line = text.lines().find(|l| l.contains("Hours in calls")).unwrap();
        assert!(line.trim_end().ends_with(hours), "{line}");
        assert_eq!(text.contains("Ngawa"), amdo_named, "{text}");
    }

    let month = &from[..7];
    let response = app
        .get(&format!("/api/service-records/monthly-report?region=demo-garze&month={month}"), &coordinator)
        .await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    let (text, page) = read_pdf(&bytes, dir.path(), "monthly");
    for expected in [
        "公共法律服务月度报告",
        "Monthly Report of Public Legal Services",
        "甘孜藏族自治州",
        month,
        "ཟླ",
        "卓玛律师 Lawyer Drolma (demo)",
        "援藏律师服务团 Aid-Tibet Lawyer",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert!(ink(&page, 0.09, 0.25) > 0.02);
    if let Some(out) = std::env::var_os("SERVICE_PDF_DIR") {
        std::fs::write(Path::new(&out).join("monthly.pdf"), &bytes).unwrap();
    }
    for query in
        ["region=demo-garze&month=2026-13", "region=demo-garze&month=soon", "region=nowhere&month=2026-01"]
    {
        let refused = app.get(&format!("/api/service-records/monthly-report?{query}"), &coordinator).await;
        assert!(matches!(refused.status().as_u16(), 400 | 404), "{query}: {}", refused.status());
    }
    assert_eq!(
        app.get(&format!("/api/service-records/monthly-report?region=demo-garze&month={month}"), &lawyer)
            .await
            .status(),
        403
    );
}
