//! The admin API: off without `ADMIN_TOKEN`, closed without the token, and its dead-letter
//! operations asking for a selection; the `dead-letters` command line likewise.

use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{ADMIN_TOKEN, App, Options, spawn_app};

async fn get(app: &App, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn post(app: &App, path: &str, body: Value) -> reqwest::Response {
    let request = app.http.post(app.url(path)).bearer_auth(ADMIN_TOKEN);
    request.json(&body).send().await.unwrap()
}

#[tokio::test]
async fn without_an_admin_token_the_admin_routes_do_not_exist() {
    let app = spawn_app("admin-off", Options::default()).await;
    for path in ["/admin", "/admin/api/dead-letters"] {
        let status = get(&app, path, Some(ADMIN_TOKEN)).await.status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_admin_api_answers_only_requests_that_carry_the_token() {
    let options = Options {
        admin: true,
        ..Options::default()
    };
    let app = spawn_app("admin-token", options).await;
    let page = get(&app, "/admin", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Dead letters"));

    for token in [None, Some("not-the-admin-token")] {
        let refused = get(&app, "/admin/api/dead-letters", token).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let summary = get(&app, "/admin/api/dead-letters", Some(ADMIN_TOKEN)).await;
    assert_eq!(summary.status(), StatusCode::OK);
    let summary: Vec<Value> = summary.json().await.unwrap();
    assert!(
        summary
            .iter()
            .any(|kind| kind["kind"] == "notify_warehouse" && kind["count"] == 0)
    );

    let overview: Value = get(&app, "/admin/api/overview", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let kinds = overview["kinds"].as_array().unwrap();
    assert!(
        kinds
            .iter()
            .any(|kind| kind["kind"] == "process_thumbnails"),
        "{overview}"
    );
}

#[tokio::test]
async fn replay_and_purge_over_http_need_a_selection() {
    let options = Options {
        admin: true,
        ..Options::default()
    };
    let app = spawn_app("admin-selection", options).await;

    let bare = post(&app, "/admin/api/dead-letters/replay", json!({})).await;
    assert_eq!(bare.status(), StatusCode::BAD_REQUEST);
    let unknown = post(
        &app,
        "/admin/api/dead-letters/purge",
        json!({"kind": "nope"}),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let none = post(
        &app,
        "/admin/api/dead-letters/purge",
        json!({"id": "no-such-job"}),
    )
    .await;
    assert_eq!(none.json::<Value>().await.unwrap(), json!({"purged": 0}));
    let missing = get(
        &app,
        "/admin/api/dead-letters/no-such-job",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_command_line_purges_only_with_yes_and_replays_only_what_it_is_told() {
    let app = spawn_app("admin-cli", Options::default()).await;
    let run = |args: &[&str]| {
        let mut line = vec![
            "producer",
            "--amqp-url",
            app.vhost.amqp_url.as_str(),
            "dead-letters",
        ];
        line.extend_from_slice(args);
        let cli = producer::Cli::try_parse_from(line).unwrap();
        producer::run(cli, std::future::pending())
    };

    let purge = run(&["purge", "--all"]).await.unwrap_err();
    assert!(format!("{purge:#}").contains("--yes"), "{purge:#}");
    let replay = run(&["replay"]).await.unwrap_err();
    assert!(
        format!("{replay:#}").contains("say which dead letters"),
        "{replay:#}"
    );
    run(&["list"]).await.unwrap();
    run(&["purge", "--all", "--yes"]).await.unwrap();
    let show = run(&["show", "no-such-job"]).await.unwrap_err();
    assert!(format!("{show:#}").contains("no dead letter"), "{show:#}");
}

#[tokio::test]
async fn the_overview_counts_the_jobs_of_each_kind_waiting_for_a_retry() {
    let unavailable = axum::Router::new().route(
        "/shipments",
        axum::routing::post(|| async { StatusCode::SERVICE_UNAVAILABLE }),
    );
    let warehouse = crate::orders::shop::serve(unavailable).await;
    let options = Options {
        admin: true,
        warehouse_url: warehouse.url.clone(),
        ..Options::default()
    };
    let app = spawn_app("admin-retrying", options).await;
    let _worker = app.start_worker();
    app.placed_order(&[("STICKERS", 1)]).await;

    let retrying = |overview: &Value, kind: &str| {
        let kinds = overview["kinds"].as_array().cloned().unwrap_or_default();
        kinds
            .iter()
            .find(|k| k["kind"] == kind)
            .map(|k| k["retrying"].clone())
    };
    let seen = std::sync::Mutex::new(Value::Null);
    let counted = support::wait_until(crate::helpers::PATIENCE, "a retrying notice", || async {
        let response = get(&app, "/admin/api/overview", Some(ADMIN_TOKEN)).await;
        let overview: Value = response.json().await.unwrap_or_default();
        let found = retrying(&overview, "notify_warehouse") == Some(json!(1));
        *seen.lock().unwrap() = overview;
        found
    })
    .await;
    let overview = seen.lock().unwrap().clone();
    assert!(counted.is_ok(), "{counted:?}: {overview}");
    assert_eq!(retrying(&overview, "update_inventory"), Some(json!(0)));
}
