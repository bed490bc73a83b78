//! The HTTP surface: health, metrics, the OpenAPI document, the web apps, and
//! the error shape.

use crate::support::spawn_app;

#[tokio::test]
async fn healthz_reports_database_and_relay() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"), "every response carries a request id");
    let health: serde_json::Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["ok"], true);
    assert_eq!(health["relay"]["running"], true);
    let udp: std::net::SocketAddr = health["relay"]["udp_addr"].as_str().unwrap().parse().unwrap();
    assert_ne!(udp.port(), 0);
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_requests() {
    let app = spawn_app().await;
    app.http.get(app.url("/healthz")).send().await.unwrap();
    app.http.get(app.url("/no-such-page")).send().await.unwrap();
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"cloudlaw_http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "raw paths never become labels: {text}");
    assert!(text.contains("cloudlaw_ws_connections "), "{text}");
    assert!(text.contains("cloudlaw_relay_rooms "), "{text}");
    assert!(text.contains("cloudlaw_relay_datagrams_received_total "), "{text}");
    // Every reason a packet may not be forwarded is a series, zero included.
    for reason in ["not_connected", "awaiting_keyframe", "audio_only", "send_buffer_full"] {
        let series = format!(r#"cloudlaw_relay_packets_not_forwarded_total{{reason="{reason}"}} 0"#);
        assert!(text.contains(&series), "{series} in {text}");
    }
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn openapi_document_lists_what_is_served() {
    let app = spawn_app().await;
    let doc: serde_json::Value =
        app.http.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for expected in ["/healthz", "/metrics", "/ws"] {
        assert!(paths.contains_key(expected), "{expected} missing from {:?}", paths.keys());
    }
    // Every documented GET without parameters answers with something other than 404.
    for (path, item) in paths {
        if item.get("get").is_some() && !path.contains('{') {
            let status = app.http.get(app.url(path)).send().await.unwrap().status();
            assert_ne!(status, 404, "{path} is documented but not served");
        }
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // Fields the server fills in appear in the document too (read-only), not only those it reads.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["AvailabilityBody"]["properties"]["time_zone"]["readOnly"], true,
        "{}",
        schemas["AvailabilityBody"]
    );
    assert_eq!(schemas["RosterBody"]["properties"]["id"]["readOnly"], true, "{}", schemas["RosterBody"]);
}

#[tokio::test]
async fn web_apps_load_with_their_assets() {
    let app = spawn_app().await;
    for page in ["/", "/terminal", "/lawyer", "/coordinator"] {
        let response = app.http.get(app.url(page)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{page}");
        assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
        assert!(response.headers().contains_key("content-security-policy"));
        let html = response.text().await.unwrap();
        // Every local stylesheet and script the page names is served.
        for reference in html.split(['"', '\'']).filter(|s| s.starts_with("/web/")) {
            let asset = app.http.get(app.url(reference)).send().await.unwrap();
            assert_eq!(asset.status(), 200, "{page} refers to {reference}");
        }
    }
    let missing = app.http.get(app.url("/web/does/not/exist.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let traversal = app.http.get(app.url("/web/..%2F..%2FCargo.toml")).send().await.unwrap();
    assert_eq!(traversal.status(), 404);
}

#[tokio::test]
async fn the_tibetan_webfont_is_served_from_the_configured_font_directory() {
    let data_dir = tempfile::tempdir().unwrap();
    let fonts = tempfile::tempdir().unwrap();
    std::fs::write(fonts.path().join("NotoSerifTibetan-Regular.ttf"), b"not really a font").unwrap();
    let mut config = crate::support::test_config(data_dir.path(), false);
    config.web.font_dir = fonts.path().to_path_buf();
    assert_eq!(config.web.missing_fonts(), [fonts.path().join("NotoSerifTibetan-Bold.ttf")]);
    let app = crate::support::spawn_with(config, data_dir).await;

    let font = app.http.get(app.url("/web/fonts/tibetan-regular.ttf")).send().await.unwrap();
    assert_eq!(font.status(), 200);
    assert_eq!(font.headers()["content-type"], "font/ttf");
    assert!(font.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    assert_eq!(font.bytes().await.unwrap().as_ref(), b"not really a font");
    // A font that is not installed, a name that is not served, a path: none is read.
    for path in ["tibetan-bold.ttf", "NotoSerifTibetan-Regular.ttf", "..%2F..%2Fetc%2Fpasswd"] {
        let response = app.http.get(app.url(&format!("/web/fonts/{path}"))).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // The stylesheet every app loads names the served fonts.
    let css = app.http.get(app.url("/web/shared/base.css")).send().await.unwrap().text().await.unwrap();
    assert!(css.contains("/web/fonts/tibetan-regular.ttf") && css.contains("/web/fonts/tibetan-bold.ttf"));
}

#[tokio::test]
async fn unknown_routes_get_the_json_error_shape() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/api/nothing-here")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn restart_on_the_same_data_keeps_demo_data() {
    let app = spawn_app().await;
    let data_dir = app.stop().await;
    let config = crate::support::test_config(data_dir.path(), true);
    let store = signaling::store::Store::open(&config).await.unwrap();
    let before = store.account_by_username("demo-lawyer").await.unwrap().expect("seeded");
    store.close().await;

    let again = crate::support::spawn_with(config.clone(), data_dir).await;
    let data_dir = again.stop().await;
    let store = signaling::store::Store::open(&config).await.unwrap();
    let after = store.account_by_username("demo-lawyer").await.unwrap().expect("kept");
    assert_eq!(before, after, "a restart with --demo changes nothing that exists");
    assert_eq!(store.migrate().await.unwrap(), 0);
    store.close().await;
    drop(data_dir);
}

#[tokio::test]
async fn a_second_server_on_one_postgres_database_stands_by_until_the_first_stops() {
    let app = spawn_app().await;
    if crate::support::postgres_for(app.data_dir.path()).is_none() {
        return; // SQLite: the database is a file in one machine's data directory.
    }
    let config = crate::support::test_config(app.data_dir.path(), false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let standby = tokio::spawn(signaling::startup::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let health = |http: reqwest::Client, url: String| async move {
        let response = http.get(format!("{url}/healthz")).send().await.unwrap();
        (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
    };
    // A standby says so, and sends everyone elsewhere.
    let mut seen = (0, serde_json::Value::Null);
    for _ in 0..100 {
        seen = health(http.clone(), second.clone()).await;
        if seen.1["status"] == "standby" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen.0, 503, "{:?}", seen.1);
    assert_eq!(seen.1["status"], "standby");
    assert_eq!(seen.1["database"]["backend"], "postgres");
    let login = || {
        http.post(format!("{second}/api/auth/login"))
            .json(&serde_json::json!({"username": "demo-lawyer", "password": "demo-pass"}))
            .send()
    };
    let login_on_standby = login().await.unwrap();
    assert_eq!(login_on_standby.status(), 503);
    assert_eq!(login_on_standby.headers()["retry-after"], "2");
    let body: serde_json::Value = login_on_standby.json().await.unwrap();
    assert_eq!(body["error"]["code"], "standby");
    assert_eq!(health(http.clone(), app.url("").trim_end_matches('/').to_owned()).await.0, 200);

    // The first stops: the standby takes over within seconds, and serves.
    drop(app.stop().await);
    let mut took_over = false;
    for _ in 0..100 {
        if health(http.clone(), second.clone()).await.0 == 200 {
            took_over = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(took_over, "the standby became the serving node");
    assert_eq!(login().await.unwrap().status(), 200);
    let _ = stop.send(());
    standby.await.unwrap().unwrap();
}
