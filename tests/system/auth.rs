//! Tokens and sessions under attack: every forged, stale, misused or stolen
//! token gets 401 and changes nothing.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use signaling::auth::tokens::{TokenKind, Tokens};
use signaling::unix_now;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{TestApp, spawn_app};

/// The server's current signing key, read from its database.
async fn signing_key(app: &TestApp) -> (String, Vec<u8>, Vec<u8>) {
    let store = app.store().await;
    let key = store.signing_keys().await.unwrap().remove(0);
    (key.kid, key.private_key, key.public_key)
}

fn good_claims(sub: &str, sid: &str) -> Value {
    let now = unix_now();
    json!({"iss": "cloudlaw", "aud": "cloudlaw", "sub": sub, "exp": now + 300, "iat": now,
           "typ": "access", "jti": "j", "sid": sid})
}

/// The `sub` and `sid` of a real access token, to build forgeries around.
fn subject_of(token: &str) -> (String, String) {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (claims["sub"].as_str().unwrap().to_owned(), claims["sid"].as_str().unwrap().to_owned())
}

async fn status_of_me(app: &TestApp, token: &str) -> u16 {
    app.get("/api/me", token).await.status().as_u16()
}

#[tokio::test]
async fn login_me_and_wrong_passwords() {
    let app = spawn_app().await;
    let token = app.token("demo-lawyer").await;
    let me: Value = app.get("/api/me", &token).await.json().await.unwrap();
    assert_eq!(me["kind"], "account");
    assert_eq!(me["account"]["username"], "demo-lawyer");
    assert_eq!(me["account"]["roles"], json!(["lawyer"]));

    for (username, password) in
        [("demo-lawyer", "wrong"), ("nobody", "demo-pass"), ("", ""), ("DEMO-LAWYER", "x")]
    {
        let response = app
            .http
            .post(app.url("/api/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{username}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_credentials");
    }
    let malformed = app
        .http
        .post(app.url("/api/auth/login"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(status_of_me(&app, "not-a-token").await, 401);
    let no_token = app.http.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused() {
    let app = spawn_app().await;
    let login = app.login("demo-lawyer").await;
    let access = login["access_token"].as_str().unwrap();
    let refresh = login["refresh_token"].as_str().unwrap();
    let (sub, sid) = subject_of(access);
    let (kid, private_key, public_key) = signing_key(&app).await;
    let real_key = EncodingKey::from_ed_der(&private_key);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    let sign = |claims: &Value| jsonwebtoken::encode(&header, claims, &real_key).unwrap();

    // The control: a token we sign ourselves with the real key works, so each
    // refusal below is for the one thing that is wrong with it.
    assert_eq!(status_of_me(&app, &sign(&good_claims(&sub, &sid))).await, 200);

    let now = unix_now();
    let mut cases: Vec<(&str, String)> = Vec::new();
    // alg: none, no signature.
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let body = URL_SAFE_NO_PAD.encode(good_claims(&sub, &sid).to_string());
    cases.push(("alg none", format!("{none_header}.{body}.")));
    // Signed with another Ed25519 key under the real key id.
    let other = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let other_key = EncodingKey::from_ed_der(other.to_pkcs8_der().unwrap().as_bytes());
    cases.push(("wrong key", jsonwebtoken::encode(&header, &good_claims(&sub, &sid), &other_key).unwrap()));
    // Algorithm confusion: HS256 keyed with the server's public key.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    cases.push((
        "HS256 with the public key",
        jsonwebtoken::encode(&hs, &good_claims(&sub, &sid), &EncodingKey::from_secret(&public_key)).unwrap(),
    ));
    let with = |key: &str, value: Value| {
        let mut claims = good_claims(&sub, &sid);
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = good_claims(&sub, &sid);
        claims.as_object_mut().unwrap().remove(key);
        claims
    };
    cases.push(("expired", sign(&with("exp", json!(now - 3600)))));
    cases.push(("not yet valid", sign(&with("nbf", json!(now + 3600)))));
    cases.push(("issued in the future", sign(&with("iat", json!(now + 3600)))));
    cases.push(("exp as a string", sign(&with("exp", json!((now + 300).to_string())))));
    cases.push(("wrong aud", sign(&with("aud", json!("someone-else")))));
    cases.push(("wrong iss", sign(&with("iss", json!("evil")))));
    for claim in ["exp", "iat", "iss", "aud", "sub", "typ"] {
        cases.push((claim, sign(&without(claim))));
    }
    cases.push(("another account's sub in this session", sign(&with("sub", json!("someone-else")))));
    cases.push(("unknown session", sign(&with("sid", json!("no-such-session")))));
    cases.push(("refresh token as access token", refresh.to_owned()));
    cases.push(("typ refresh signed", sign(&with("typ", json!("refresh")))));
    // A room token issued by the server's own issuer.
    let tokens = Tokens::load(app.store().await, Default::default()).await.unwrap();
    let (room, _) = tokens.issue(TokenKind::Room, &sub, "room-1", Duration::from_secs(60), None);
    cases.push(("room token on the API", room));
    let mut tampered = access.to_owned();
    tampered.insert(access.find('.').unwrap() + 3, 'x');
    cases.push(("tampered payload", tampered));

    app.swept_at_start().await;
    let audit_before = app.store().await.audit_rows(0, 100_000).await.unwrap().len();
    for (what, token) in &cases {
        assert_eq!(status_of_me(&app, token).await, 401, "{what} must be refused");
        let ws = tokio_tungstenite::connect_async(format!("{}?token={token}", app.ws_url("/ws"))).await;
        assert!(ws.is_err(), "{what} must not open a WebSocket");
    }
    // Refusals change nothing: the real token still works and nothing was written.
    assert_eq!(status_of_me(&app, access).await, 200);
    assert_eq!(app.store().await.audit_rows(0, 100_000).await.unwrap().len(), audit_before);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_login() {
    let app = spawn_app().await;
    let first = app.login("demo-lawyer").await;
    let refresh = |token: &str| {
        let request = app.http.post(app.url("/api/auth/refresh")).json(&json!({"refresh_token": token}));
        async move { request.send().await.unwrap() }
    };
    let second = refresh(first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    let access2 = second["access_token"].as_str().unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"], "refresh tokens rotate");
    assert_eq!(status_of_me(&app, access2).await, 200);

    // The first refresh token again: someone copied it. The whole login ends.
    assert_eq!(refresh(first["refresh_token"].as_str().unwrap()).await.status(), 401);
    assert_eq!(status_of_me(&app, access2).await, 401, "the access token of the revoked login");
    assert_eq!(
        refresh(second["refresh_token"].as_str().unwrap()).await.status(),
        401,
        "and its newest refresh token"
    );
    assert_eq!(
        refresh(first["access_token"].as_str().unwrap()).await.status(),
        401,
        "access token as refresh"
    );
    // Another login of the same person is untouched.
    assert_eq!(status_of_me(&app, &app.token("demo-lawyer").await).await, 200);
    let audit = app.store().await.recent_audit(None, 50).await.unwrap();
    assert!(audit.iter().any(|row| row.action == "session.revoked_refresh_reuse"));
}

#[tokio::test]
async fn logout_ends_tokens_and_closes_websockets() {
    let app = spawn_app().await;
    let login = app.login("demo-lawyer").await;
    let access = login["access_token"].as_str().unwrap();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}?token={access}", app.ws_url("/ws"))).await.unwrap();
    let welcome = socket.next().await.unwrap().unwrap();
    let welcome: Value = serde_json::from_str(welcome.to_text().unwrap()).unwrap();
    assert_eq!(welcome["principal"]["username"], "demo-lawyer");

    let response = app.http.post(app.url("/api/auth/logout")).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(status_of_me(&app, access).await, 401);
    let refresh = app
        .http
        .post(app.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": login["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 401);
    assert_closed_with_revoked(&mut socket).await;
}

async fn assert_closed_with_revoked(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) {
    let mut revoked = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("closed within 5 s") {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                revoked |= message["code"] == "revoked";
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    assert!(revoked, "the client is told why");
}

#[tokio::test]
async fn deactivating_an_account_ends_its_sessions_and_sockets() {
    let app = spawn_app().await;
    let lawyer = app.token("demo-lawyer-2").await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}?token={lawyer}", app.ws_url("/ws"))).await.unwrap();
    socket.next().await.unwrap().unwrap();
    let coordinator = app.token("demo-coordinator").await;
    let me: Value = app.get("/api/me", &lawyer).await.json().await.unwrap();
    let id = me["account"]["id"].as_str().unwrap();
    let response = app
        .http
        .patch(app.url(&format!("/api/accounts/{id}")))
        .bearer_auth(&coordinator)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(status_of_me(&app, &lawyer).await, 401);
    assert_closed_with_revoked(&mut socket).await;
    let relogin = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": "demo-lawyer-2", "password": "demo-pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(relogin.status(), 401, "a deactivated account cannot sign in");
}

#[tokio::test]
async fn terminals_enroll_once_and_revocation_is_immediate() {
    let app = spawn_app().await;
    let (device, terminal_id) = app.enroll_demo_terminal().await;
    let me: Value = app.get("/api/me", &device).await.json().await.unwrap();
    assert_eq!(me["kind"], "terminal");
    assert_eq!(me["terminal"]["status"], "enrolled");
    // The code worked once.
    let again = app
        .http
        .post(app.url("/api/terminals/enroll"))
        .json(&json!({"code": "DEMO-TERMINAL-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(again.json::<Value>().await.unwrap()["error"]["code"], "invalid_code");
    // A device token is not an account: account endpoints refuse it.
    assert_eq!(app.get("/api/accounts", &device).await.status(), 403);
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}?token={device}", app.ws_url("/ws"))).await.unwrap();
    socket.next().await.unwrap().unwrap();

    // Stolen kiosk: the coordinator revokes it in one action.
    let coordinator = app.token("demo-coordinator").await;
    let revoked = app.post(&format!("/api/terminals/{terminal_id}/revoke"), &coordinator, json!({})).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(revoked.json::<Value>().await.unwrap()["status"], "revoked");
    assert_eq!(status_of_me(&app, &device).await, 401);
    assert_closed_with_revoked(&mut socket).await;

    // A new code enrolls a replacement; the old credential stays dead.
    let code: Value = app
        .post(&format!("/api/terminals/{terminal_id}/enrollment-code"), &coordinator, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let code = code["enrollment_code"].as_str().unwrap();
    let enrolled = app
        .http
        .post(app.url("/api/terminals/enroll"))
        .json(&json!({"code": code.to_lowercase()}))
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), 200);
    assert_eq!(status_of_me(&app, &device).await, 401);
}

#[tokio::test]
async fn guessing_passwords_ten_thousand_times_is_cut_short() {
    let app = spawn_app().await;
    let started = std::time::Instant::now();
    let (mut refused, mut limited) = (0, 0);
    for i in 0..10_000 {
        let response = app
            .http
            .post(app.url("/api/auth/login"))
            .json(&json!({"username": "demo-lawyer", "password": format!("guess-{i}")}))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            401 => refused += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refused, 10, "only the per-account limit's worth of passwords is ever checked");
    assert_eq!(limited, 9_990);
    // The right password is refused too while the account is limited.
    let right = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": "demo-lawyer", "password": "demo-pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);
    // Nothing changed for the account itself, and the log holds the trace
    // without ten thousand rows.
    let store = app.store().await;
    assert!(store.account_by_username("demo-lawyer").await.unwrap().unwrap().active);
    let rows = store.audit_rows(0, 100_000).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.action == "login.failed").count(), 10);
    assert!(rows.iter().any(|r| r.action == "login.rate_limited"));
    assert!(rows.len() < 100, "{} audit rows", rows.len());
    assert!(started.elapsed() < Duration::from_secs(120), "refusals are cheap ({:?})", started.elapsed());
}

#[tokio::test]
async fn concurrent_guesses_do_not_slip_past_the_limit() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let request = app
            .http
            .post(app.url("/api/auth/login"))
            .json(&json!({"username": "demo-interpreter", "password": format!("guess-{i}")}));
        tasks.push(tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    // All sixty arrive before any has failed; still only ten passwords are checked.
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 50, "{statuses:?}");
}

#[tokio::test]
async fn key_rotation_keeps_everyone_signed_in() {
    let app = spawn_app().await;
    let old = app.token("demo-lawyer").await;
    let (device, _) = app.enroll_demo_terminal().await;
    let store = app.store().await;
    signaling::auth::tokens::create_signing_key(&store).await.unwrap();
    store.close().await;
    // Restart on the same data: the new key signs, the old one still verifies.
    let dir = app.stop().await;
    let app = crate::support::spawn_with(crate::support::test_config(dir.path(), true), dir).await;
    assert_eq!(status_of_me(&app, &old).await, 200);
    assert_eq!(status_of_me(&app, &device).await, 200);
    let fresh = app.token("demo-lawyer").await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&fresh), kid(&old), "new tokens use the new key");
    // Retiring the old key ends what it signed.
    let store = app.store().await;
    assert!(store.retire_signing_key(&kid(&old), unix_now()).await.unwrap());
    let dir = app.stop().await;
    let app = crate::support::spawn_with(crate::support::test_config(dir.path(), true), dir).await;
    assert_eq!(status_of_me(&app, &old).await, 401);
    assert_eq!(status_of_me(&app, &fresh).await, 200);
}

/// Failed logins, each from the address an X-Forwarded-For header names.
async fn fail_login_from(app: &TestApp, forwarded_for: &str, username: &str) -> u16 {
    app.http
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": username, "password": "wrong password"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_counted_and_logged_by_its_own_address() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), true);
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    config.auth.max_failures_per_address = 3;
    let app = crate::support::spawn_with(config, data_dir).await;
    // One client past the per-address limit (different accounts, so only the address counts)...
    let statuses: Vec<u16> = futures_util::future::join_all(
        (0..4).map(|i| fail_login_from(&app, "203.0.113.9", ["a", "b", "c", "d"][i])),
    )
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{statuses:?}");
    // ...does not lock out another client behind the same proxy.
    assert_eq!(fail_login_from(&app, "198.51.100.20", "e").await, 401);
    let rows = app.store().await.audit_rows(0, 1000).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "login.failed" && r.source == "203.0.113.9"), "{rows:?}");
    assert!(rows.iter().any(|r| r.source == "198.51.100.20"));

    // Without trusted proxies (the default) the header is a client's own words: ignored.
    let plain = spawn_app().await;
    assert_eq!(fail_login_from(&plain, "203.0.113.9", "a").await, 401);
    let rows = plain.store().await.audit_rows(0, 1000).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "login.failed" && r.source == "127.0.0.1"), "{rows:?}");
    assert!(!rows.iter().any(|r| r.source == "203.0.113.9"));
}
