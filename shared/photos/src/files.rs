//! Where image files live: a directory shared by the producer and every worker (a volume in
//! compose), behind a trait so an object store can replace it.
//!
//! Keys are ours, never a client's file name: `originals/<id>.<ext>` (private, as uploaded),
//! and the metadata-free copy and thumbnails, first under `pending/<id>/` (never served) and,
//! once moderation approved the upload, moved to `public/<id>/` (served under `/media/`).
//! Nothing of an upload is served before its approval, and a rejected one never is.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use uuid::Uuid;

/// A boxed storage operation.
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// A flat key-value store of files.
pub trait Storage: Send + Sync + 'static {
    /// Writes `bytes` under `key`, replacing what was there, atomically.
    fn put<'a>(&'a self, key: &'a str, bytes: Vec<u8>) -> StorageFuture<'a, ()>;
    /// Reads the file under `key`.
    fn get<'a>(&'a self, key: &'a str) -> StorageFuture<'a, Vec<u8>>;
    /// Moves the file under `from` to `to`. Done already (nothing under `from`, a file under
    /// `to`) is success, so a repeated job can move again.
    fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> StorageFuture<'a, ()>;
    /// Removes the file under `key`; a missing file is success.
    fn remove<'a>(&'a self, key: &'a str) -> StorageFuture<'a, ()>;
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

/// Key of the metadata-free copy of an upload, held back until moderation approves it.
#[must_use]
pub fn public_original_key(image_id: Uuid, extension: &str) -> String {
    format!("pending/{image_id}/original.{extension}")
}

/// Key of one thumbnail, held back until moderation approves its upload.
#[must_use]
pub fn thumbnail_key(image_id: Uuid, size: u32) -> String {
    format!("pending/{image_id}/{size}.jpg")
}

/// Where a held-back file is served once its upload is approved (other keys stay as they are).
#[must_use]
pub fn published_key(key: &str) -> String {
    key.strip_prefix("pending/")
        .map_or_else(|| key.to_owned(), |rest| format!("public/{rest}"))
}

/// Where writes are prepared, beside (never inside) the served tree: a crash mid-write leaves
/// its temp file here, not under `public/`.
const TEMP_DIR: &str = "tmp";

/// A temp file this old at start was left by a write that a crash interrupted; younger ones
/// may be another process's write in progress (the directory is shared).
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Files in a local directory. Every write is durable before it returns (the file and its
/// directory are fsynced), so a job acked or an upload answered after a write finds its file
/// whole after a crash of the machine.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Storage rooted at `root`, created if missing; temp files that a crash left behind are
    /// removed.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join("public"))?;
        std::fs::create_dir_all(root.join(TEMP_DIR))?;
        let storage = Self { root };
        let removed = storage.remove_stale_temp_files(STALE_TEMP)?;
        if removed > 0 {
            tracing::info!(removed, "removed temp files left by interrupted writes");
        }
        Ok(storage)
    }

    /// Removes temp files older than `age`; returns how many.
    pub fn remove_stale_temp_files(&self, age: Duration) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join(TEMP_DIR))? {
            // Another process sharing the directory may rename or remove a temp file between
            // the listing and the look: a file gone is not an error, and not stale.
            let path = entry?.path();
            let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                modified => modified?,
            };
            if modified.elapsed().is_ok_and(|elapsed| elapsed > age) {
                match std::fs::remove_file(path) {
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    removing => {
                        removing?;
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
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
            let temp = self
                .root
                .join(TEMP_DIR)
                .join(format!("{}.partial", Uuid::new_v4().simple()));
            blocking(move || write_durably(&temp, &path, &bytes)).await
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StorageFuture<'a, Vec<u8>> {
        Box::pin(async move { tokio::fs::read(self.path(key)?).await })
    }

    fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let (source, target) = (self.path(from)?, self.path(to)?);
            blocking(move || move_durably(&source, &target)).await
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)?).await {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                removed => removed,
            }
        })
    }
}

/// Runs blocking file work off the async threads (one hop for the whole sequence).
async fn blocking(work: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// Writes `bytes` to `temp`, fsyncs it, renames it to `path` (so a reader never sees half a
/// file) and fsyncs the directory (so the rename survives a crash). A failed write removes
/// its temp file.
fn write_durably(temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = durable_parent(path)?;
    let written = std::fs::File::create(temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    written?;
    sync_dir(dir)
}

/// Renames `source` to `target` and fsyncs both directories; done already is success.
fn move_durably(source: &Path, target: &Path) -> io::Result<()> {
    let dir = durable_parent(target)?;
    match std::fs::rename(source, target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && target.exists() => return Ok(()),
        moved => moved?,
    }
    sync_dir(dir)?;
    source.parent().map_or(Ok(()), sync_dir)
}

/// `path`'s directory, created if missing; a new directory's own entry is fsynced too.
fn durable_parent(path: &Path) -> io::Result<&Path> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a file needs a directory"))?;
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        if let Some(grandparent) = dir.parent() {
            sync_dir(grandparent)?;
        }
    }
    Ok(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
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
        storage.rename("public/a/1.jpg", "public/b/1.jpg").await?;
        storage.rename("public/a/1.jpg", "public/b/1.jpg").await?;
        assert_eq!(storage.get("public/b/1.jpg").await?, b"one");
        storage.remove("public/b/1.jpg").await?;
        storage.remove("public/b/1.jpg").await?;
        assert!(storage.get("public/b/1.jpg").await.is_err());
        for bad in ["../etc/passwd", "/etc/passwd", "a//b", "a/./b", "a b", ""] {
            assert!(
                storage.put(bad, Vec::new()).await.is_err(),
                "{bad} was accepted"
            );
        }
        std::fs::remove_dir_all(dir)
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_in_the_served_tree_and_a_restart_removes_stale_temp_files()
    -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("storage-{}", Uuid::new_v4()));
        let storage = LocalStorage::new(&dir)?;
        // The target is a non-empty directory: the rename into place fails.
        std::fs::create_dir_all(dir.join("public/a/1.jpg/x"))?;
        assert!(
            storage
                .put("public/a/1.jpg", b"one".to_vec())
                .await
                .is_err()
        );
        let names = |sub: &str| -> io::Result<Vec<String>> {
            std::fs::read_dir(dir.join(sub))?
                .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
                .collect()
        };
        assert_eq!(names("public/a")?, ["1.jpg"]);
        assert_eq!(names(TEMP_DIR)?, Vec::<String>::new());

        // A crash mid-write leaves its temp file; the next start removes it once it is stale.
        let stale = dir.join(TEMP_DIR).join("stale.partial");
        let fresh = dir.join(TEMP_DIR).join("fresh.partial");
        std::fs::write(&fresh, b"in progress")?;
        let file = std::fs::File::create(&stale)?;
        file.set_modified(std::time::SystemTime::now() - 2 * STALE_TEMP)?;
        drop(file);
        LocalStorage::new(&dir)?;
        assert_eq!(names(TEMP_DIR)?, ["fresh.partial"]);
        std::fs::remove_dir_all(dir)
    }

    #[test]
    fn only_public_keys_have_urls() {
        assert_eq!(
            public_url("public/x/64.jpg").as_deref(),
            Some("/media/x/64.jpg")
        );
        assert_eq!(public_url("originals/x.jpg"), None);
        assert_eq!(public_url("pending/x/64.jpg"), None);
        assert_eq!(published_key("pending/x/64.jpg"), "public/x/64.jpg");
    }
}
