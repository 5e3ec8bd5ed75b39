//! Content moderation by hash matching: an upload is rejected when its fingerprint is close to
//! one on a list of known images, the way shared industry hash lists are used.

use std::path::{Path, PathBuf};

use super::fingerprint::{Fingerprint, FingerprintError, ParseFingerprintError};
use super::upload::UploadLimits;

/// Something that decides whether an image may be published.
pub trait ContentFilter: Send + Sync {
    /// Judges an encoded image.
    fn check(&self, image: &[u8]) -> Result<ModerationVerdict, FingerprintError>;
}

/// The outcome of a [`ContentFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModerationVerdict {
    /// The image may be published.
    Approved,
    /// The image must not be published.
    Rejected {
        /// Why, for logs and moderators (not necessarily for the uploader).
        reason: String,
    },
}

/// Why a blocklist could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BlocklistError {
    /// A line is neither a fingerprint, a comment nor blank.
    #[error("line {line} of the blocklist is not a valid fingerprint: {source}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        source: ParseFingerprintError,
    },
    /// The file could not be read.
    #[error("could not read the blocklist {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A list of fingerprints of known images to refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashBlocklist {
    entries: Vec<Fingerprint>,
    max_distance: u32,
    limits: UploadLimits,
}

impl HashBlocklist {
    /// The usual match threshold: re-encodes and resizes stay within a few bits, while
    /// unrelated pictures differ in about 32 of the 64.
    pub const DEFAULT_MAX_DISTANCE: u32 = 8;

    /// A list matching nothing, for deployments without a hash list.
    pub fn empty() -> Self {
        Self::new(Vec::new(), Self::DEFAULT_MAX_DISTANCE)
    }

    /// A list of `entries`; an image matches one when their distance is at most `max_distance`.
    pub fn new(entries: Vec<Fingerprint>, max_distance: u32) -> Self {
        Self {
            entries,
            max_distance,
            limits: UploadLimits::default(),
        }
    }

    /// Parses one hexadecimal fingerprint per line. Blank lines and `#` comments (whole-line
    /// or after a fingerprint) are ignored; any other line is an error naming its number.
    pub fn parse(text: &str, max_distance: u32) -> Result<Self, BlocklistError> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            let fingerprint = content.parse().map_err(|source| BlocklistError::BadLine {
                line: index + 1,
                source,
            })?;
            entries.push(fingerprint);
        }
        Ok(Self::new(entries, max_distance))
    }

    /// Reads and parses a blocklist file (see [`HashBlocklist::parse`]).
    pub fn from_file(path: &Path, max_distance: u32) -> Result<Self, BlocklistError> {
        let text = std::fs::read_to_string(path).map_err(|source| BlocklistError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, max_distance)
    }

    /// Decodes checked images within `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: UploadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The fingerprints on the list.
    pub fn entries(&self) -> &[Fingerprint] {
        &self.entries
    }

    /// The largest distance still counted as a match.
    pub fn max_distance(&self) -> u32 {
        self.max_distance
    }

    /// The closest entry within the threshold, with its distance.
    pub fn closest_match(&self, fingerprint: &Fingerprint) -> Option<(Fingerprint, u32)> {
        self.entries
            .iter()
            .map(|entry| (*entry, entry.distance(fingerprint)))
            .filter(|&(_, distance)| distance <= self.max_distance)
            .min_by_key(|&(_, distance)| distance)
    }
}

impl ContentFilter for HashBlocklist {
    fn check(&self, image: &[u8]) -> Result<ModerationVerdict, FingerprintError> {
        // Nothing can match, so skip the decode; validity is check_upload's job.
        if self.entries.is_empty() {
            return Ok(ModerationVerdict::Approved);
        }
        let fingerprint = Fingerprint::of_image(image, &self.limits)?;
        Ok(match self.closest_match(&fingerprint) {
            Some((entry, distance)) => ModerationVerdict::Rejected {
                reason: format!(
                    "the image matches blocklist entry {entry} (fingerprint {fingerprint}, \
                     distance {distance} of at most {})",
                    self.max_distance
                ),
            },
            None => ModerationVerdict::Approved,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::format::ImageFormat;
    use crate::imaging::test_images;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn parses_fingerprints_comments_and_blank_lines() -> TestResult {
        let text =
            "# known images\n\n00abcdef01234567\n  FFFF000000000000  # uppercase, indented\n";
        let list = HashBlocklist::parse(text, 5)?;
        assert_eq!(
            list.entries(),
            [
                Fingerprint::from_bits(0x00ab_cdef_0123_4567),
                Fingerprint::from_bits(0xffff_0000_0000_0000)
            ]
        );
        assert_eq!(list.max_distance(), 5);
        Ok(())
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        let text = "# header\n00abcdef01234567\nnot-a-hash\n";
        let err = HashBlocklist::parse(text, 8).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "line 3 of the blocklist is not a valid fingerprint: \
                 a fingerprint is 16 hexadecimal digits, not \"not-a-hash\""
            )
        );
        assert!(matches!(
            HashBlocklist::parse("0123\n", 8),
            Err(BlocklistError::BadLine { line: 1, .. })
        ));
    }

    #[test]
    fn reads_files_and_reports_missing_ones() -> TestResult {
        let path = std::env::temp_dir().join(format!("blocklist-{}.txt", std::process::id()));
        std::fs::write(&path, "0000000000000001\n")?;
        let list = HashBlocklist::from_file(&path, 8);
        std::fs::remove_file(&path)?;
        assert_eq!(list?.entries().len(), 1);
        let missing = HashBlocklist::from_file(Path::new("/nonexistent/blocklist.txt"), 8);
        let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("could not read the blocklist /nonexistent/blocklist.txt"));
        Ok(())
    }

    #[test]
    fn rejects_a_reencoded_copy_and_approves_other_pictures() -> TestResult {
        let picture = test_images::scene(320, 240);
        let known = Fingerprint::of_image(
            &test_images::encode(&picture, ImageFormat::Png)?,
            &UploadLimits::default(),
        )?;
        let list = HashBlocklist::parse(&format!("# csam list\n{known}\n"), 8)?;
        let filter: &dyn ContentFilter = &list;

        let copy = test_images::encode_jpeg(&picture, 60)?;
        let ModerationVerdict::Rejected { reason } = filter.check(&copy)? else {
            return Err("a re-encoded copy must be rejected".into());
        };
        assert!(reason.contains(&known.to_string()), "{reason}");
        assert!(reason.contains("distance"), "{reason}");

        let other = test_images::encode(&test_images::other_scene(320, 240), ImageFormat::Png)?;
        assert_eq!(filter.check(&other)?, ModerationVerdict::Approved);
        Ok(())
    }

    #[test]
    fn empty_list_approves_without_decoding() -> TestResult {
        assert_eq!(
            HashBlocklist::empty().check(b"not even an image")?,
            ModerationVerdict::Approved
        );
        let list = HashBlocklist::parse("0000000000000000\n", 8)?;
        assert!(matches!(
            list.check(b"not even an image"),
            Err(FingerprintError::Image(_))
        ));
        Ok(())
    }
}
