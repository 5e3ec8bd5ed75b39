//! Uploads with the outbox: taken while the broker is stopped and all processed once it is
//! back, and never half-recorded by a client that goes away.

use std::io::Write as _;

use photos::ImageState;
use support::{Broker, free_port};
use tokio::io::AsyncWriteExt;

use crate::app::{Options, spawn_app, spawn_app_on};
use crate::photos::fixtures::{jpeg, photo};

#[tokio::test]
async fn a_hundred_uploads_taken_while_the_broker_is_stopped_are_each_processed_once_it_is_back() {
    // A broker of its own: stopping it must not touch the other tests'.
    let broker = Broker::dedicated_on_ports(free_port().unwrap(), free_port().unwrap())
        .await
        .unwrap();
    let app = spawn_app_on(&broker, "outbox-stopped", Options::default()).await;
    let worker = app.start_worker();
    broker.stop().await.unwrap();

    let mut images = Vec::new();
    for n in 0..100u32 {
        let user = format!("u{}", n % 10);
        images.push(app.accepted_upload(&user, jpeg(&photo(64, 48, n))).await);
    }

    broker.start().await.unwrap();
    for &image_id in &images {
        app.wait_for(image_id, ImageState::Ready).await;
    }
    // Once each in effect: one mail per upload, three thumbnails each.
    assert_eq!(app.outbox().len(), images.len());
    for &image_id in &images {
        assert_eq!(app.image(image_id).await.thumbnails.len(), 3);
    }
    worker.stop().await.unwrap();
}

/// The stored files of every image: the storage folder's regular files, temp files aside.
fn stored_files(app: &crate::app::App) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![app.dir.join("storage")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path.display().to_string());
            }
        }
    }
    files
}

/// Sends a raw `POST /users/{user}/avatar` with `body` declared at its full length, writes
/// `sent` bytes of it, and hangs up without reading the answer.
async fn hang_up_during_upload(app: &crate::app::App, user: &str, body: &[u8], sent: usize) {
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = Vec::new();
    write!(
        head,
        "POST /users/{user}/avatar HTTP/1.1\r\nHost: {address}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&head).await.unwrap();
    stream.write_all(&body[..sent]).await.unwrap();
    stream.flush().await.unwrap();
    drop(stream);
}

#[tokio::test]
async fn clients_that_hang_up_during_their_uploads_leave_whole_uploads_with_their_jobs_or_nothing()
{
    let mut app = spawn_app("outbox-hang-up", Options::default()).await;
    let image = jpeg(&photo(1600, 1200, 7));
    // Cut at every tenth of the body, and after all of it (before the answer) five times.
    let cuts: Vec<usize> = (1..10)
        .map(|tenth| image.len() * tenth / 10)
        .chain(std::iter::repeat_n(image.len(), 5))
        .collect();
    for (n, &sent) in cuts.iter().enumerate() {
        hang_up_during_upload(&app, &format!("cut{n}"), &image, sent).await;
    }
    // A graceful stop finishes every upload still being accepted: what is left is final.
    app.stop_serving().await.unwrap().unwrap();

    let database = sqlx::PgPool::connect(&app.database.admin_url)
        .await
        .unwrap();
    let (mut whole, mut nothing) = (0, 0);
    for n in 0..cuts.len() {
        let images: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM images WHERE user_id = $1")
                .bind(format!("cut{n}"))
                .fetch_all(&database)
                .await
                .unwrap();
        match images.as_slice() {
            [] => nothing += 1,
            [image_id] => {
                let jobs: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM job_outbox
                     WHERE convert_from(body, 'UTF8')::jsonb -> 'payload' ->> 'image_id' = $1",
                )
                .bind(image_id.to_string())
                .fetch_one(&database)
                .await
                .unwrap();
                assert_eq!(jobs, 3, "upload {image_id} has {jobs} jobs");
                let files = stored_files(&app)
                    .into_iter()
                    .filter(|file| file.contains(&image_id.to_string()))
                    .count();
                assert_eq!(files, 2, "upload {image_id} has {files} files");
                whole += 1;
            }
            more => panic!("one upload became {}", more.len()),
        }
        assert!(n >= 9 || images.is_empty(), "a cut body was accepted");
    }
    let image_ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM images")
        .fetch_all(&database)
        .await
        .unwrap();
    let strays: Vec<String> = stored_files(&app)
        .into_iter()
        .filter(|file| !image_ids.iter().any(|id| file.contains(&id.to_string())))
        .collect();
    assert!(strays.is_empty(), "files of no upload: {strays:?}");
    tracing::info!(whole, nothing, "uploads cut short by their clients");
}
