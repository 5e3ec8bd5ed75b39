//! Sending mail: SMTP when `SMTP_URL` is set, otherwise `.eml` files in an outbox folder
//! (the embedded default, for development and tests).

use std::path::Path;

use lettre::message::{Mailbox, Message};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Mailer {
    /// An SMTP server (`smtp://`, `smtps://`; see lettre's URL format).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Files in a folder, one per message.
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    /// SMTP if `smtp_url` is given, else the outbox folder (created if missing).
    pub fn new(smtp_url: Option<&str>, outbox: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        // An empty SMTP_URL (compose's `${SMTP_URL:-}`) means none.
        match smtp_url.filter(|url| !url.trim().is_empty()) {
            Some(url) => Ok(Self::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("SMTP_URL is not a valid smtp:// or smtps:// URL")?
                    .build(),
            )),
            None => {
                std::fs::create_dir_all(outbox)
                    .with_context(|| format!("creating OUTBOX_DIR {}", outbox.display()))?;
                Ok(Self::Outbox(AsyncFileTransport::new(outbox)))
            }
        }
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Self::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Self::Outbox(outbox) => outbox
                .send(message)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }
}

/// Parses `Name <address>` or a bare address.
pub fn mailbox(text: &str) -> Result<Mailbox, String> {
    text.parse()
        .map_err(|e| format!("`{text}` is not an email address: {e}"))
}
