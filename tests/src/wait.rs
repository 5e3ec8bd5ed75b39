//! Waiting on a condition instead of sleeping a fixed time: poll until true or a deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it holds; an error names `what` if `timeout` passes first.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(POLL).await;
    }
}
