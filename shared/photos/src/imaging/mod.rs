//! Image work of the photo domain: checking uploads, stripping metadata, thumbnails, and
//! perceptual fingerprints for content moderation.
//!
//! Every function takes the upload's bytes and decodes them through one guarded path: the
//! format is sniffed from magic bytes, the pixel count is checked from the header, and decoders
//! run under memory limits, so hostile input fails fast with a message fit for the uploader.

mod blocklist;
mod budget;
mod decoder;
mod fingerprint;
mod format;
mod gif_metadata;
mod jpeg_metadata;
mod metadata;
#[cfg(test)]
mod properties;
mod scaled_jpeg;
#[cfg(test)]
mod test_images;
mod thumbnails;
mod upload;

pub use self::blocklist::{BlocklistError, ContentFilter, HashBlocklist, ModerationVerdict};
pub use self::budget::{BudgetFull, DecodeBudget, DecodeReservation, decode_cost};
pub use self::fingerprint::{Fingerprint, FingerprintError, ParseFingerprintError};
pub use self::format::{ACCEPTED_FORMATS, ImageFormat, UnknownFormat};
pub use self::metadata::{MetadataError, strip_metadata};
pub use self::thumbnails::{
    MAX_THUMBNAIL_SIZE, Thumbnail, ThumbnailError, make_thumbnails, thumbnail_decode_size,
};
pub use self::upload::{CheckedImage, DecodeError, UploadLimits, check_upload};
