//! The web app's waits on its clients are bounded: an upload whose body stalls gets a 408
//! within `BODY_READ_TIMEOUT`, and a client holding a request open does not keep a
//! graceful shutdown from ending after `SHUTDOWN_TIMEOUT`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::app::{App, Options, spawn_app};

/// What a bounded wait may take beyond its bound on a busy machine.
const SLACK: Duration = Duration::from_secs(4);
const BOUNDARY: &str = "stalled-boundary";

/// Sends an upload's headers announcing a 1 MB body, then its first bytes only.
async fn start_stalled_upload(app: &App, content_type: &str, expect_continue: bool) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let expect = if expect_continue {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    let head = format!(
        "POST /users/stalled/avatar HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: {content_type}\r\nContent-Length: 1048576\r\n{expect}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    if expect_continue {
        // The server says "continue" once the handler reads the body: the request is in.
        let interim = read_head(&mut stream).await;
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    }
    let first_bytes = if content_type.starts_with("multipart/") {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n\u{ff}\u{d8}\u{ff}"
        )
    } else {
        "\u{ff}\u{d8}\u{ff}\u{e0}".to_owned()
    };
    stream.write_all(first_bytes.as_bytes()).await.unwrap();
    stream
}

/// Reads a response's status line and headers.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.unwrap();
        head.push(byte);
    }
    String::from_utf8(head).unwrap()
}

/// Reads a whole response: its status and its body (by its Content-Length).
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let head = read_head(stream).await;
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    (status, String::from_utf8(body).unwrap())
}

#[tokio::test]
async fn an_upload_whose_body_stalls_gets_a_408_with_a_message_within_the_deadline() {
    let deadline = Duration::from_secs(1);
    let options = Options {
        body_read_timeout: deadline,
        ..Options::default()
    };
    let app = spawn_app("stalled-body", options).await;
    let form = format!("multipart/form-data; boundary={BOUNDARY}");
    for content_type in ["image/jpeg", form.as_str()] {
        let started = Instant::now();
        let mut stream = start_stalled_upload(&app, content_type, false).await;
        let (status, body) = tokio::time::timeout(deadline + SLACK, read_response(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("{content_type}: no answer within {:?}", deadline + SLACK));
        assert_eq!(status, 408, "{content_type}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("did not arrive"), "{content_type}: {error}");
        assert!(
            started.elapsed() >= deadline,
            "answered before the deadline"
        );
    }
    app.assert_alive().await;
}

#[tokio::test]
async fn a_client_holding_a_request_open_does_not_keep_shutdown_from_ending_after_its_bound() {
    let bound = Duration::from_secs(1);
    let options = Options {
        // Far longer than the shutdown's bound: the request would hold it.
        body_read_timeout: Duration::from_secs(120),
        shutdown_timeout: bound,
        ..Options::default()
    };
    let mut app = spawn_app("held-shutdown", options).await;
    let _held = start_stalled_upload(&app, "image/jpeg", true).await;

    let server = app.stop_serving();
    let result = tokio::time::timeout(bound + SLACK, server)
        .await
        .unwrap_or_else(|_| panic!("serve still running {:?} after shutdown", bound + SLACK));
    result.unwrap().unwrap();
}
