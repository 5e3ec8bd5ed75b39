//! A real browser for the dashboard's tests: headless Chromium through chromedriver, driven
//! over WebDriver with fantoccini. Each browser has a fresh profile directory and its own
//! chromedriver on a free port, so tests run side by side.
//!
//! Chromium and chromedriver come from the system (`apt-get install chromium
//! chromium-driver`; `CHROME_BIN` and `CHROMEDRIVER` override the paths). CI installs them;
//! elsewhere, a machine without them skips the browser tests with a message.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::wait_until;

/// How long a browser may take to start, and an element to appear.
const PATIENCE: Duration = Duration::from_secs(60);

/// A headless Chromium and its chromedriver; both end when it is dropped.
pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts one, or `Ok(None)` when Chromium or chromedriver is missing outside CI (the
    /// caller skips; in CI, where `CI` is set, a missing browser is an error).
    pub async fn start() -> Result<Option<Self>, String> {
        let (Some(driver), Some(chromium)) = (
            program("CHROMEDRIVER", "chromedriver"),
            program("CHROME_BIN", "chromium"),
        ) else {
            if std::env::var_os("CI").is_some() {
                return Err("chromium and chromedriver are needed: apt-get install chromium chromium-driver".into());
            }
            eprintln!(
                "SKIPPED: the browser test needs chromium and chromedriver \
                 (apt-get install chromium chromium-driver)"
            );
            return Ok(None);
        };
        let port = crate::free_port().map_err(|e| format!("finding a free port: {e}"))?;
        let driver = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting chromedriver: {e}"))?;
        let profile =
            std::env::temp_dir().join(format!("chromium-{}", uuid::Uuid::new_v4().simple()));
        let url = format!("http://127.0.0.1:{port}");
        wait_until(PATIENCE, "chromedriver to answer", || async {
            reqwest::get(format!("{url}/status")).await.is_ok()
        })
        .await?;
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&chromium, &profile))
            .connect(&url)
            .await
            .map_err(|e| format!("opening a Chromium session: {e}"))?;
        Ok(Some(Self {
            client,
            driver,
            profile,
        }))
    }

    /// The text of the first element matching `css`, once `check` holds for it.
    pub async fn wait_for_text(
        &self,
        css: &str,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let seen = std::sync::Mutex::new(String::new());
        wait_until(PATIENCE, what, || async {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let holds = check(&text);
            *seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = text;
            holds
        })
        .await
        .map_err(|e| {
            let seen = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            format!("{e}; `{css}` read {seen:?}")
        })?;
        Ok(seen
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) -> Result<(), String> {
        let element = self.find(css).await?;
        element
            .click()
            .await
            .map_err(|e| format!("clicking `{css}`: {e}"))
    }

    /// Types `text` into the first element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let element = self.find(css).await?;
        element
            .send_keys(text)
            .await
            .map_err(|e| format!("typing into `{css}`: {e}"))
    }

    /// The first element matching `css`, once there is one.
    async fn find(&self, css: &str) -> Result<fantoccini::elements::Element, String> {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("finding `{css}`: {e}"))
    }

    /// Saves a PNG of the page to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<(), String> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(|e| format!("screenshot: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Ends the session, then chromedriver.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
        let _ = self.driver.kill().await;
    }
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Headless, without a sandbox (containers), GPU or background traffic, in a fresh profile.
fn capabilities(chromium: &Path, profile: &Path) -> serde_json::Map<String, Value> {
    let options = json!({
        "binary": chromium,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--window-size=1400,1100",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities
}

/// `$variable` if set, else `name` found on the `PATH`.
fn program(variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
