//! The gate every upload passes before it is stored: is it an image, one we take, of a sane
//! size, and does it decode completely? Rejections carry messages meant for the uploader.

use super::decoder::GuardedDecoder;
use super::format::ImageFormat;
use super::{gif_metadata, jpeg_metadata};

/// Limits applied whenever an upload is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// The most pixels (width × height) an image may have; it bounds decode memory and time.
    pub max_pixels: u64,
}

impl UploadLimits {
    /// 50 megapixels: above any phone camera, far below what would exhaust a worker.
    pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_pixels: Self::DEFAULT_MAX_PIXELS,
        }
    }
}

/// What [`check_upload`] learned about an acceptable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedImage {
    /// The format, from the magic bytes.
    pub format: ImageFormat,
    /// Width in pixels, as stored (before any EXIF rotation).
    pub width: u32,
    /// Height in pixels, as stored (before any EXIF rotation).
    pub height: u32,
}

/// Why an upload was refused. Every variant is the uploader's fault, hence a 4xx status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Nothing was sent.
    #[error("the upload is empty")]
    Empty,
    /// The bytes are not any image format we recognise.
    #[error("the upload is not an image; send JPEG, PNG, WebP or GIF")]
    NotAnImage,
    /// A recognisable image or document format that we do not take (the name, e.g. "BMP").
    #[error("{0} images are not accepted; send JPEG, PNG, WebP or GIF")]
    UnsupportedFormat(String),
    /// An accepted format using an encoding feature our decoder cannot read.
    #[error(
        "this {format} image uses an encoding feature we cannot read ({detail}); re-save it as a standard JPEG or PNG"
    )]
    UnsupportedFeature {
        /// The image's format.
        format: ImageFormat,
        /// The decoder's description of the feature.
        detail: String,
    },
    /// The header declares more pixels than [`UploadLimits::max_pixels`].
    #[error("the image is {width}x{height} pixels, more than the {max} pixels allowed")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit it exceeds.
        max: u64,
    },
    /// The data is truncated, corrupt, or declares an empty image.
    #[error("the image data is truncated or corrupt: {0}")]
    Corrupt(String),
}

/// Checks that `bytes` are an image we accept and decode completely within `limits`.
///
/// The pixel count is checked from the header before any pixel is decoded, so an oversized
/// image or a decompression bomb costs almost nothing to refuse.
pub fn check_upload(bytes: &[u8], limits: &UploadLimits) -> Result<CheckedImage, DecodeError> {
    let decoder = GuardedDecoder::open(bytes, limits)?;
    let checked = decoder.checked();
    check_structure(bytes, checked.format)?;
    decoder.decode()?;
    Ok(checked)
}

/// Catches truncation the decoders let through: the JPEG decoder fills a cut scan with grey, and
/// the GIF decoder reads only the first frame of an animation.
fn check_structure(bytes: &[u8], format: ImageFormat) -> Result<(), DecodeError> {
    let corrupt = |detail: String| DecodeError::Corrupt(format!("malformed {format}: {detail}"));
    match format {
        ImageFormat::Jpeg => {
            jpeg_metadata::check_complete(bytes).map_err(|e| corrupt(e.to_string()))
        }
        ImageFormat::Gif => gif_metadata::strip(bytes)
            .map(drop)
            .map_err(|e| corrupt(e.to_string())),
        ImageFormat::Png | ImageFormat::WebP => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::test_images;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn accepts_every_format_and_reports_its_dimensions() -> TestResult {
        let picture = test_images::scene(120, 80);
        for format in crate::imaging::ACCEPTED_FORMATS {
            let bytes = test_images::encode(&picture, format)?;
            let checked = check_upload(&bytes, &UploadLimits::default())?;
            assert_eq!(
                checked,
                CheckedImage {
                    format,
                    width: 120,
                    height: 80
                }
            );
        }
        Ok(())
    }

    #[test]
    fn rejects_empty_and_non_images() {
        let limits = UploadLimits::default();
        assert_eq!(check_upload(b"", &limits), Err(DecodeError::Empty));
        assert_eq!(
            check_upload(b"just some text", &limits),
            Err(DecodeError::NotAnImage)
        );
    }

    #[test]
    fn names_formats_we_do_not_take() {
        let err = check_upload(b"BM\x36\x00\x00\x00\x00\x00", &UploadLimits::default());
        assert_eq!(err, Err(DecodeError::UnsupportedFormat("BMP".into())));
        let message = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            message,
            "BMP images are not accepted; send JPEG, PNG, WebP or GIF"
        );
        let err = check_upload(b"%PDF-1.4\n", &UploadLimits::default());
        assert_eq!(err, Err(DecodeError::UnsupportedFormat("PDF".into())));
    }

    #[test]
    fn refuses_too_many_pixels_from_the_header() -> TestResult {
        let limits = UploadLimits { max_pixels: 10_000 };
        for format in crate::imaging::ACCEPTED_FORMATS {
            let bytes = test_images::encode(&test_images::scene(200, 100), format)?;
            let err = check_upload(&bytes, &limits);
            assert_eq!(
                err,
                Err(DecodeError::TooManyPixels {
                    width: 200,
                    height: 100,
                    max: 10_000
                }),
                "{format}"
            );
        }
        Ok(())
    }

    #[test]
    fn reports_the_size_when_one_side_alone_is_over_the_limit() -> TestResult {
        // A side longer than max_pixels trips the decoder's own width limit while the header
        // is read; the error must still give the declared size.
        let bytes = test_images::encode(&test_images::scene(12_000, 1), ImageFormat::Png)?;
        let err = check_upload(&bytes, &UploadLimits { max_pixels: 10_000 });
        let expected = DecodeError::TooManyPixels {
            width: 12_000,
            height: 1,
            max: 10_000,
        };
        assert_eq!(err, Err(expected));
        Ok(())
    }

    #[test]
    fn refuses_a_decompression_bomb_without_decoding_it() -> TestResult {
        // A PNG header claiming 100 000 × 100 000 pixels, with no pixel data at all.
        let bomb = test_images::png_with_header_only(100_000, 100_000);
        let err = check_upload(&bomb, &UploadLimits::default());
        assert!(
            matches!(
                err,
                Err(DecodeError::TooManyPixels {
                    width: 100_000,
                    height: 100_000,
                    ..
                })
            ),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn refuses_truncated_images() -> TestResult {
        let picture = test_images::noise(96, 64, 7);
        for format in crate::imaging::ACCEPTED_FORMATS {
            let bytes = test_images::encode(&picture, format)?;
            let cut = &bytes[..bytes.len() * 2 / 3];
            let err = check_upload(cut, &UploadLimits::default());
            assert!(
                matches!(err, Err(DecodeError::Corrupt(_))),
                "{format}: {err:?}"
            );
            if let Err(err) = err {
                assert!(
                    err.to_string()
                        .starts_with("the image data is truncated or corrupt")
                );
            }
        }
        Ok(())
    }

    #[test]
    fn refuses_a_truncated_animated_gif_frame() -> TestResult {
        let bytes = test_images::animated_gif(48, 32, 3)?;
        assert!(check_upload(&bytes, &UploadLimits::default()).is_ok());
        let cut = &bytes[..bytes.len() - 20];
        let err = check_upload(cut, &UploadLimits::default());
        assert!(matches!(err, Err(DecodeError::Corrupt(_))), "{err:?}");
        Ok(())
    }

    #[test]
    fn zero_sized_images_are_corrupt() {
        let empty = test_images::png_with_header_only(0, 10);
        let err = check_upload(&empty, &UploadLimits::default());
        assert!(matches!(err, Err(DecodeError::Corrupt(_))), "{err:?}");
    }

    #[test]
    fn garbage_after_valid_magic_is_corrupt() {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend_from_slice(&[0x42; 64]);
        let err = check_upload(&bytes, &UploadLimits::default());
        assert!(matches!(err, Err(DecodeError::Corrupt(_))), "{err:?}");
    }
}
