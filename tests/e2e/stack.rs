//! The running stack as the check sees it: its compose project and its HTTP endpoints.

use futures_util::{StreamExt, stream};
use serde_json::Value;
use support::images::{BANNED_SEED, jpeg_photo};

use crate::BANNED_IN_FIRST_WAVE;
use crate::compose::Compose;

/// The stack under test.
pub struct Stack {
    pub compose: Compose,
    pub base: String,
    pub management: String,
    /// The warehouse stand-in's published port.
    pub warehouse: String,
    pub http: reqwest::Client,
}

impl Stack {
    pub async fn get_status(&self, url: &str) -> Option<u16> {
        self.http
            .get(url)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// Uploads the picture of `seed` for user `u<seed>`; returns its image id.
    pub async fn upload(&self, seed: u32) -> Result<String, String> {
        let bytes = picture(if seed < BANNED_IN_FIRST_WAVE {
            BANNED_SEED
        } else {
            seed
        })?;
        let part = reqwest::multipart::Part::bytes(bytes).file_name("photo.jpg");
        let response = self
            .http
            .post(format!("{}/users/u{seed}/avatar", self.base))
            .multipart(reqwest::multipart::Form::new().part("image", part))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != 202 {
            return Err(format!(
                "upload {seed}: {} {:?}",
                response.status(),
                response.text().await
            ));
        }
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        body["image_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no image_id".to_owned())
    }

    pub async fn upload_all(&self, seeds: &[u32]) -> Result<Vec<(u32, String)>, String> {
        let uploads = stream::iter(seeds.iter().copied())
            .map(|seed| async move { self.upload(seed).await.map(|id| (seed, id)) })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        uploads.into_iter().collect()
    }

    /// `GET /images/{id}`'s body.
    pub async fn image_status(&self, id: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}/images/{id}", self.base))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    pub async fn queue_depth(&self, queue: &str) -> Option<u64> {
        let user = std::env::var("RABBITMQ_ADMIN_USER").unwrap_or_else(|_| "admin".into());
        let password = std::env::var("RABBITMQ_ADMIN_PASSWORD")
            .unwrap_or_else(|_| "admin-dev-password".into());
        let response = self
            .http
            .get(format!("{}/queues/%2F/{queue}", self.management))
            .basic_auth(user, Some(password))
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        body["messages"].as_u64()
    }
}

/// The upload of `seed`: a 640 × 480 photo.
pub fn picture(seed: u32) -> Result<Vec<u8>, String> {
    jpeg_photo(640, 480, seed).map_err(|e| e.to_string())
}
