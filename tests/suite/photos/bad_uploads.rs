//! Bad uploads get a clear 4xx JSON error, never a panic or a 500, and the server keeps going.

use reqwest::Response;

use super::fixtures::{bmp, jpeg, photo, png_bomb};
use crate::app::{App, Options, spawn_app};

async fn assert_refused(app: &App, what: &str, response: Response, status: u16, mentions: &str) {
    assert_eq!(response.status(), status, "{what}");
    let body: serde_json::Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error message: {body}"));
    assert!(
        error.to_lowercase().contains(mentions),
        "{what}: `{error}` should mention `{mentions}`"
    );
    app.assert_alive().await;
}

#[tokio::test]
async fn bad_uploads_get_a_4xx_with_a_message_and_the_server_keeps_answering() {
    let options = Options {
        max_upload_bytes: 1024 * 1024,
        ..Options::default()
    };
    let app = spawn_app("bad-uploads", options).await;
    let good = jpeg(&photo(300, 200, 5));
    let truncated = good[..good.len() / 2].to_vec();
    let cases: Vec<(&str, Response, u16, &str)> = vec![
        (
            "text",
            app.upload_form("u1", b"hello, world".to_vec(), "a.jpg")
                .await,
            415,
            "not an image",
        ),
        (
            "truncated",
            app.upload_form("u1", truncated, "a.jpg").await,
            422,
            "truncated",
        ),
        (
            "empty form field",
            app.upload_form("u1", Vec::new(), "a.jpg").await,
            400,
            "empty",
        ),
        (
            "empty body",
            app.upload_raw("u1", Vec::new(), "image/jpeg").await,
            400,
            "empty",
        ),
        (
            "bmp",
            app.upload_form("u1", bmp(), "a.bmp").await,
            415,
            "bmp",
        ),
        (
            "bomb",
            app.upload_raw("u1", png_bomb(), "image/png").await,
            422,
            "pixels",
        ),
        (
            "too large",
            app.upload_raw("u1", vec![0xff; 2 * 1024 * 1024], "image/jpeg")
                .await,
            413,
            "limit",
        ),
        (
            "too large form",
            app.upload_form("u1", vec![0xff; 2 * 1024 * 1024], "a.jpg")
                .await,
            413,
            "limit",
        ),
        (
            "lying type",
            app.upload_raw("u1", b"%PDF-1.7".to_vec(), "image/png")
                .await,
            415,
            "pdf",
        ),
        (
            "no type",
            app.upload_raw("u1", good.clone(), "text/plain").await,
            415,
            "multipart",
        ),
        (
            "bad user",
            app.upload_form("not%20ok", good.clone(), "a.jpg").await,
            400,
            "user id",
        ),
        (
            "long user",
            app.upload_form(&"x".repeat(65), good.clone(), "a.jpg")
                .await,
            400,
            "user id",
        ),
    ];
    for (what, response, status, mentions) in cases {
        assert_refused(&app, what, response, status, mentions).await;
    }
}

#[tokio::test]
async fn a_form_without_an_image_and_bad_lookups_get_a_4xx_with_a_message() {
    let app = spawn_app("bad-lookups", Options::default()).await;
    let form = reqwest::multipart::Form::new().text("picture", "no image field");
    let response = app
        .http
        .post(app.url("/users/u1/avatar"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_refused(&app, "form without image", response, 400, "image").await;
    let response = app
        .http
        .get(app.url("/images/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_refused(&app, "bad image id", response, 400, "image id").await;
    let response = app
        .http
        .get(app.url(&format!("/images/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_refused(&app, "unknown image", response, 404, "no image").await;
    let response = app.http.get(app.url("/users/nobody")).send().await.unwrap();
    assert_refused(&app, "unknown user", response, 404, "no user").await;
}

#[tokio::test]
async fn a_client_file_name_is_never_a_path_the_upload_is_stored_under_our_own_name() {
    let app = spawn_app("file-names", Options::default()).await;
    let good = jpeg(&photo(300, 200, 5));
    let image_id = app
        .accepted_upload_named("u1", good, "../../../../tmp/evil.jpg")
        .await;
    let stored = files_under(&app.dir);
    let ours = format!("{image_id}/original.jpg");
    assert!(
        stored.iter().any(|p| p.ends_with(&ours)),
        "{ours} not among {stored:?}"
    );
    assert!(
        stored.iter().all(|p| !p.to_string_lossy().contains("evil")),
        "{stored:?}"
    );
    assert!(!std::path::Path::new("/tmp/evil.jpg").exists());
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
