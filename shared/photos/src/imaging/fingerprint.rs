//! Perceptual fingerprints for hash-matching moderation: like the hash lists the industry
//! shares, a fingerprint survives re-encoding, resizing and small edits, so a known image is
//! still recognised after it was re-saved, while a byte hash would change completely.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use image_hasher::{HashAlg, Hasher, HasherConfig};

use super::decoder::decode_for_display;
use super::upload::{DecodeError, UploadLimits};

/// Side of the square the picture is shrunk to before hashing. The hash only sees the
/// 16 × 16 low frequencies, and shrinking with `fast_image_resize` first keeps image_hasher's
/// much slower resize off megapixel inputs.
const PRESHRINK_SIDE: u32 = 64;

/// pHash: median of the low-frequency DCT coefficients of the grayscale picture, 8 × 8 bits.
static HASHER: LazyLock<Hasher<[u8; 8]>> = LazyLock::new(|| {
    HasherConfig::with_bytes_type::<[u8; 8]>()
        .hash_size(8, 8)
        .hash_alg(HashAlg::Median)
        .preproc_dct()
        .to_hasher()
});

/// A 64-bit perceptual hash of an image as displayed (EXIF orientation applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

/// Why an image could not be fingerprinted.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// The upload itself is unusable (not an image, too large, corrupt...).
    #[error(transparent)]
    Image(#[from] DecodeError),
    /// Shrinking the picture failed; a bug rather than a bad image.
    #[error("shrinking the image for fingerprinting failed: {0}")]
    Resize(#[from] fast_image_resize::ResizeError),
}

/// The reason a string is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fingerprint is 16 hexadecimal digits, not {0:?}")]
pub struct ParseFingerprintError(String);

impl Fingerprint {
    /// Fingerprints an encoded image, decoding it within `limits`.
    pub fn of_image(bytes: &[u8], limits: &UploadLimits) -> Result<Fingerprint, FingerprintError> {
        let picture = decode_for_display(bytes, limits)?;
        Self::of_pixels(&picture)
    }

    /// Fingerprints decoded pixels.
    pub fn of_pixels(picture: &RgbImage) -> Result<Fingerprint, FingerprintError> {
        // Squashing to a square ignores the aspect ratio, as pHash does: a resized copy keeps
        // its aspect ratio anyway, and a square input makes the DCT step cheapest.
        let mut small = RgbImage::new(PRESHRINK_SIDE, PRESHRINK_SIDE);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
        Resizer::new().resize(picture, &mut small, &options)?;
        let hash = HASHER.hash_image(&small);
        let mut bits = [0; 8];
        bits.copy_from_slice(hash.as_bytes());
        Ok(Fingerprint(u64::from_be_bytes(bits)))
    }

    /// Builds a fingerprint from its 64 bits.
    pub fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The 64 bits.
    pub fn bits(&self) -> u64 {
        self.0
    }

    /// How many of the 64 bits differ (Hamming distance): 0 for the same picture, around 32
    /// for unrelated ones.
    pub fn distance(&self, other: &Fingerprint) -> u32 {
        (self.0 ^ other.0).count_ones()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // from_str_radix alone would accept a sign and fewer digits.
        if s.len() != 16 || !s.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(ParseFingerprintError(s.chars().take(40).collect()));
        }
        u64::from_str_radix(s, 16)
            .map(Fingerprint)
            .map_err(|_| ParseFingerprintError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::format::ImageFormat;
    use crate::imaging::test_images;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn text_form_is_16_lowercase_hex_digits() -> TestResult {
        let fingerprint = Fingerprint::from_bits(0x00AB_CDEF_0123_4567);
        assert_eq!(fingerprint.to_string(), "00abcdef01234567");
        assert_eq!("00ABCDEF01234567".parse::<Fingerprint>()?, fingerprint);
        for bad in [
            "",
            "abc",
            "+0abcdef01234567",
            "00abcdef0123456g",
            "00abcdef012345678",
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn distance_counts_differing_bits() {
        let a = Fingerprint::from_bits(0b1011);
        let b = Fingerprint::from_bits(0b0110);
        assert_eq!(a.distance(&b), 3);
        assert_eq!(a.distance(&a), 0);
        assert_eq!(
            Fingerprint::from_bits(0).distance(&Fingerprint::from_bits(u64::MAX)),
            64
        );
    }

    #[test]
    fn survives_reencoding_and_resizing() -> TestResult {
        let limits = UploadLimits::default();
        let picture = test_images::scene(400, 300);
        let original =
            Fingerprint::of_image(&test_images::encode(&picture, ImageFormat::Png)?, &limits)?;

        let low_quality = test_images::encode_jpeg(&picture, 40)?;
        let reencoded = Fingerprint::of_image(&low_quality, &limits)?;
        assert!(
            original.distance(&reencoded) <= 4,
            "{original} vs {reencoded}"
        );

        let smaller =
            image::imageops::resize(&picture, 320, 240, image::imageops::FilterType::Triangle);
        let resized = Fingerprint::of_image(&test_images::encode_jpeg(&smaller, 75)?, &limits)?;
        assert!(original.distance(&resized) <= 6, "{original} vs {resized}");
        Ok(())
    }

    #[test]
    fn different_pictures_are_far_apart() -> TestResult {
        let limits = UploadLimits::default();
        let scene = test_images::encode(&test_images::scene(400, 300), ImageFormat::Png)?;
        let other = test_images::encode(&test_images::other_scene(400, 300), ImageFormat::Png)?;
        let a = Fingerprint::of_image(&scene, &limits)?;
        let b = Fingerprint::of_image(&other, &limits)?;
        assert!(a.distance(&b) > 16, "{a} vs {b}: {}", a.distance(&b));
        Ok(())
    }

    #[test]
    fn orientation_is_applied_before_hashing() -> TestResult {
        let limits = UploadLimits::default();
        let picture = test_images::scene(300, 200);
        let upright = image::imageops::rotate90(&picture);
        let upright = Fingerprint::of_image(&test_images::encode_jpeg(&upright, 95)?, &limits)?;
        let tagged =
            Fingerprint::of_image(&test_images::jpeg_with_orientation(&picture, 6)?, &limits)?;
        assert!(upright.distance(&tagged) <= 4, "{upright} vs {tagged}");
        Ok(())
    }
}
