//! The confirmation mail over real SMTP (a stub server in the test): no database transaction
//! stays open while the mail server answers, and a mail sent again carries the same
//! Message-ID.

use std::sync::{Arc, Mutex};

use photos::ImageState;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::fixtures::{jpeg, photo};
use crate::app::{Options, spawn_app};

/// What the stub saw: each message, and how many sessions of the app's database were inside
/// a transaction while it was being handed over.
#[derive(Default)]
struct Received {
    messages: Vec<String>,
    open_transactions: Vec<i64>,
}

/// A minimal SMTP server: accepts every command, and before answering a message's final
/// `.`, counts the app database's sessions that sit in an open transaction.
async fn smtp_stub(db: PgPool) -> (String, Arc<Mutex<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Received::default()));
    let seen = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(session(socket, db.clone(), Arc::clone(&seen)));
        }
    });
    (url, received)
}

async fn session(socket: tokio::net::TcpStream, db: PgPool, seen: Arc<Mutex<Received>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 stub ESMTP\r\n").await;
    while let Ok(Some(line)) = lines.next_line().await {
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("DATA") {
            let _ = write.write_all(b"354 go ahead\r\n").await;
            let mut message = String::new();
            while let Ok(Some(data)) = lines.next_line().await {
                if data == "." {
                    break;
                }
                message.push_str(&data);
                message.push('\n');
            }
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
            )
            .fetch_one(&db)
            .await
            .unwrap();
            let mut seen = seen.lock().unwrap();
            seen.messages.push(message);
            seen.open_transactions.push(open);
            b"250 queued\r\n"
        } else if command.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 ok\r\n"
        };
        let _ = write.write_all(reply).await;
    }
}

fn message_id(mail: &str) -> String {
    mail.lines()
        .find(|line| line.to_ascii_lowercase().starts_with("message-id:"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no Message-ID in {mail}"))
}

#[tokio::test]
async fn no_database_transaction_stays_open_while_the_mail_server_answers() {
    let mut app = spawn_app("mail-smtp", Options::default()).await;
    let db = PgPool::connect(&app.database.admin_url).await.unwrap();
    let (smtp_url, received) = smtp_stub(db.clone()).await;
    app.handlers.mail.smtp_url = Some(smtp_url);
    let _worker = app.start_worker();
    let image_id = app
        .accepted_upload("lena", jpeg(&photo(300, 300, 13)))
        .await;
    app.wait_for(image_id, ImageState::Ready).await;
    let during_first = received.lock().unwrap().open_transactions.clone();
    assert_eq!(during_first, [0], "a transaction was open during SMTP");

    app.lose_mail_record(image_id, "lena").await;
    support::wait_until(
        crate::helpers::PATIENCE,
        "the mail to be sent again",
        || async { received.lock().unwrap().messages.len() == 2 },
    )
    .await
    .unwrap();

    let received = received.lock().unwrap();
    assert_eq!(
        received.open_transactions,
        [0, 0],
        "a transaction was open during SMTP"
    );
    let ids: Vec<_> = received.messages.iter().map(|m| message_id(m)).collect();
    assert!(ids[0].contains(&image_id.to_string()), "{}", ids[0]);
    assert_eq!(
        ids[0], ids[1],
        "the mail sent again is not recognisably the same"
    );
}
