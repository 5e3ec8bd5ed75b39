//! Sending mail, for every domain's jobs: SMTP when `SMTP_URL` is set, otherwise `.eml` files
//! in an outbox folder (the embedded default, for development and tests).
//!
//! A mail job is sent again when a worker dies between sending and recording it, so every
//! message carries a Message-ID derived from what it is about ([`message_id`]): receivers
//! can deduplicate on it, and the outbox names the file after it, so a repeat rewrites the
//! same file instead of adding one.

use std::io::Write;
use std::path::{Path, PathBuf};

use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use uuid::Uuid;

/// Re-exported so domains build messages with the same lettre this crate sends them with.
pub use lettre;

/// Why a [`Mailer`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// `SMTP_URL` does not parse (the URL itself is not repeated: it may hold a password).
    #[error("SMTP_URL is not a valid smtp:// or smtps:// URL: {0}")]
    SmtpUrl(lettre::transport::smtp::Error),
    /// The outbox folder cannot be created.
    #[error("creating OUTBOX_DIR {dir}: {source}")]
    Outbox {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Mailer {
    /// An SMTP server (`smtp://`, `smtps://`; see lettre's URL format).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Files in a folder, one per Message-ID.
    Outbox(PathBuf),
}

impl Mailer {
    /// SMTP if `smtp_url` is given, else the outbox folder (created if missing).
    pub fn new(smtp_url: Option<&str>, outbox: &Path) -> Result<Self, MailerError> {
        // An empty SMTP_URL (compose's `${SMTP_URL:-}`) means none.
        match smtp_url.filter(|url| !url.trim().is_empty()) {
            Some(url) => Ok(Self::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(MailerError::SmtpUrl)?
                    .build(),
            )),
            None => {
                std::fs::create_dir_all(outbox).map_err(|source| MailerError::Outbox {
                    dir: outbox.to_owned(),
                    source,
                })?;
                Ok(Self::Outbox(outbox.to_owned()))
            }
        }
    }

    /// Sends one message; to the outbox, it must have a Message-ID.
    pub async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Self::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Self::Outbox(dir) => {
                let id = message
                    .headers()
                    .get_raw("Message-ID")
                    .ok_or("a message for the outbox needs a Message-ID")?;
                let name = file_name(id);
                let (dir, bytes) = (dir.clone(), message.formatted());
                tokio::task::spawn_blocking(move || {
                    write_atomically(&dir, &name, &bytes)
                        .map_err(|e| format!("writing {name} to the outbox: {e}"))
                })
                .await
                .map_err(|e| format!("the outbox writer: {e}"))?
            }
        }
    }
}

/// The Message-ID of the mail about `about` (e.g. `upload-<id>`), the same for every send of
/// it, in the sender's domain.
#[must_use]
pub fn message_id(about: &str, from: &Mailbox) -> String {
    format!("<{about}@{}>", from.email.domain())
}

/// A file name from a Message-ID: its characters that are safe in a name, `_` for others.
fn file_name(message_id: &str) -> String {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.eml")
}

/// Writes `bytes` to `dir/name` so that a reader sees the old file or the new one, never a
/// part: a temporary file (hidden, and unique, since two workers may write the same mail at
/// once) in the same folder, synced, then renamed over the name.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(format!(".{name}.{}.tmp", Uuid::new_v4().simple()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, dir.join(name)));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Parses `Name <address>` or a bare address.
pub fn mailbox(text: &str) -> Result<Mailbox, String> {
    text.parse()
        .map_err(|e| format!("`{text}` is not an email address: {e}"))
}
