//! Where image files live: a directory shared by the producer and every worker (a volume in
//! compose), behind a trait so an object store can replace it.
//!
//! Keys are ours, never a client's file name: `originals/<id>.<ext>` (private),
//! `public/<id>/original.<ext>` and `public/<id>/<size>.jpg` (served under `/media/`).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use uuid::Uuid;

/// A boxed storage operation.
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// A flat key-value store of files.
pub trait Storage: Send + Sync + 'static {
    /// Writes `bytes` under `key`, replacing what was there, atomically.
    fn put<'a>(&'a self, key: &'a str, bytes: Vec<u8>) -> StorageFuture<'a, ()>;
    /// Reads the file under `key`.
    fn get<'a>(&'a self, key: &'a str) -> StorageFuture<'a, Vec<u8>>;
}

/// The URL path a public key is served at (`None` for private keys).
#[must_use]
pub fn public_url(key: &str) -> Option<String> {
    key.strip_prefix("public/")
        .map(|rest| format!("/media/{rest}"))
}

/// Key of an upload as received: never served, it may carry EXIF location data.
#[must_use]
pub fn original_key(image_id: Uuid, extension: &str) -> String {
    format!("originals/{image_id}.{extension}")
}

/// Key of the metadata-free copy of an upload that is served.
#[must_use]
pub fn public_original_key(image_id: Uuid, extension: &str) -> String {
    format!("public/{image_id}/original.{extension}")
}

/// Key of one thumbnail.
#[must_use]
pub fn thumbnail_key(image_id: Uuid, size: u32) -> String {
    format!("public/{image_id}/{size}.jpg")
}

/// Files in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Storage rooted at `root`, created if missing.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join("public"))?;
        Ok(Self { root })
    }

    /// The directory served under `/media/`.
    #[must_use]
    pub fn public_dir(&self) -> PathBuf {
        self.root.join("public")
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if safe {
            Ok(self.root.join(Path::new(key)))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid storage key `{key}`"),
            ))
        }
    }
}

impl Storage for LocalStorage {
    fn put<'a>(&'a self, key: &'a str, bytes: Vec<u8>) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let path = self.path(key)?;
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            // Write then rename, so a reader never sees half a file.
            let partial = path.with_extension(format!("partial-{}", Uuid::new_v4().simple()));
            tokio::fs::write(&partial, bytes).await?;
            tokio::fs::rename(&partial, &path).await
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StorageFuture<'a, Vec<u8>> {
        Box::pin(async move { tokio::fs::read(self.path(key)?).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_round_trip_and_keys_cannot_escape_the_root() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("storage-{}", Uuid::new_v4()));
        let storage = LocalStorage::new(&dir)?;
        storage.put("public/a/1.jpg", b"one".to_vec()).await?;
        assert_eq!(storage.get("public/a/1.jpg").await?, b"one");
        for bad in ["../etc/passwd", "/etc/passwd", "a//b", "a/./b", "a b", ""] {
            assert!(
                storage.put(bad, Vec::new()).await.is_err(),
                "{bad} was accepted"
            );
        }
        std::fs::remove_dir_all(dir)
    }

    #[test]
    fn only_public_keys_have_urls() {
        assert_eq!(
            public_url("public/x/64.jpg").as_deref(),
            Some("/media/x/64.jpg")
        );
        assert_eq!(public_url("originals/x.jpg"), None);
    }
}
