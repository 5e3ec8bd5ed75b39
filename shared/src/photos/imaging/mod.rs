//! Image work of the photo domain: checking uploads, stripping metadata, thumbnails, and
//! perceptual fingerprints for content moderation.
