//! Square JPEG thumbnails of an upload, the thumbnail worker's hot path. Chosen by measurement
//! (the benchmark compares it with Pillow): the image is decoded once, a JPEG at the smallest
//! DCT scale that still covers the largest size; each thumbnail is resized from the centred
//! square with Lanczos3 (fast_image_resize, SIMD); and the JPEGs are written by a SIMD encoder.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use jpeg_encoder::{ColorType, Encoder, EncodingError};

use super::decoder::{decode_for_display_at_least, display_size_at_least};
use super::upload::{DecodeError, UploadLimits};

/// JPEG quality of every thumbnail: no visible artefacts at thumbnail sizes, far fewer bytes
/// than near-lossless qualities.
const JPEG_QUALITY: u8 = 85;

/// The largest thumbnail side we make; anything bigger is a full-size image, not a thumbnail.
pub const MAX_THUMBNAIL_SIZE: u32 = 4096;

/// One square thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// Width and height in pixels.
    pub size: u32,
    /// The baseline JPEG.
    pub jpeg: Vec<u8>,
}

/// Why thumbnails could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// The upload itself is unusable (not an image, too large, corrupt...).
    #[error(transparent)]
    Image(#[from] DecodeError),
    /// A requested size is zero or above [`MAX_THUMBNAIL_SIZE`].
    #[error(
        "thumbnail size {0} is not allowed; sizes must be between 1 and {MAX_THUMBNAIL_SIZE} pixels"
    )]
    InvalidSize(u32),
    /// Resizing failed; a bug rather than a bad image, since the input was decoded already.
    #[error("resizing the image to {size}x{size} failed: {source}")]
    Resize {
        /// The thumbnail being made.
        size: u32,
        /// The resizer's error.
        source: fast_image_resize::ResizeError,
    },
    /// JPEG encoding failed.
    #[error("encoding the {size}x{size} thumbnail failed: {source}")]
    Encode {
        /// The thumbnail being made.
        size: u32,
        /// The encoder's error.
        source: EncodingError,
    },
}

/// Makes one square JPEG thumbnail per entry of `sizes`, in that order.
///
/// The EXIF orientation is applied first, so thumbnails look the way the photo was taken. Each
/// is the centred square of the shorter side, resized (up if the image is smaller) to exactly
/// `size` × `size`, with transparency flattened onto white.
pub fn make_thumbnails(
    bytes: &[u8],
    sizes: &[u32],
    limits: &UploadLimits,
) -> Result<Vec<Thumbnail>, ThumbnailError> {
    if let Some(&bad) = sizes
        .iter()
        .find(|&&size| size == 0 || size > MAX_THUMBNAIL_SIZE)
    {
        return Err(ThumbnailError::InvalidSize(bad));
    }
    let Some(&largest) = sizes.iter().max() else {
        return Ok(Vec::new());
    };
    let picture = decode_for_display_at_least(bytes, limits, largest)?;
    let square = centred_square_options(&picture);
    let mut resizer = Resizer::new();
    // Every size straight from the decoded square: one Lanczos3 pass each, as sharp as the
    // filter gives (resizing the small ones from the previous thumbnail was a little faster
    // but lost 0.1-0.2 dB of luma PSNR at 64 and 256 px, measured by the benchmark).
    sizes
        .iter()
        .map(|&size| {
            let pixels = resize(&mut resizer, &picture, &square, size)?;
            Ok(Thumbnail {
                size,
                jpeg: encode(&pixels)?,
            })
        })
        .collect()
}

/// The size, as stored (before orientation), at which [`make_thumbnails`] decodes `bytes` for
/// these `sizes`: a JPEG's DCT-scaled size, else the full size. The benchmark gives Pillow's
/// `draft()` the same scale with it, so both sides decode the same number of pixels.
pub fn thumbnail_decode_size(
    bytes: &[u8],
    sizes: &[u32],
    limits: &UploadLimits,
) -> Result<(u32, u32), ThumbnailError> {
    let largest = sizes.iter().copied().max().unwrap_or(1);
    Ok(display_size_at_least(bytes, limits, largest)?)
}

/// Lanczos3 over the centred square of the shorter side. The crop is a view into the decoded
/// picture, so making the square copies no pixels.
fn centred_square_options(picture: &RgbImage) -> ResizeOptions {
    let (width, height) = picture.dimensions();
    let side = width.min(height);
    let left = (width - side) / 2;
    let top = (height - side) / 2;
    ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(
            f64::from(left),
            f64::from(top),
            f64::from(side),
            f64::from(side),
        )
}

fn resize(
    resizer: &mut Resizer,
    source: &RgbImage,
    options: &ResizeOptions,
    size: u32,
) -> Result<RgbImage, ThumbnailError> {
    let mut thumbnail = RgbImage::new(size, size);
    resizer
        .resize(source, &mut thumbnail, options)
        .map_err(|source| ThumbnailError::Resize { size, source })?;
    Ok(thumbnail)
}

/// A baseline (sequential) JPEG, which every client decodes.
fn encode(thumbnail: &RgbImage) -> Result<Vec<u8>, ThumbnailError> {
    let size = thumbnail.width();
    let side = u16::try_from(size).map_err(|_| ThumbnailError::InvalidSize(size))?;
    let mut jpeg = Vec::new();
    Encoder::new(&mut jpeg, JPEG_QUALITY)
        .encode(thumbnail.as_raw(), side, side, ColorType::Rgb)
        .map_err(|source| ThumbnailError::Encode { size, source })?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::format::ImageFormat;
    use crate::imaging::test_images;
    use image::{Rgb, RgbImage};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, image::ImageError> {
        let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)?;
        Ok(image.into_rgb8())
    }

    fn is_red(pixel: &Rgb<u8>) -> bool {
        let [r, g, b] = pixel.0;
        r > 200 && g < 60 && b < 60
    }

    fn is_blue(pixel: &Rgb<u8>) -> bool {
        let [r, g, b] = pixel.0;
        r < 60 && g < 60 && b > 200
    }

    #[test]
    fn non_square_images_give_exact_squares_in_the_requested_order() -> TestResult {
        let bytes = test_images::encode(&test_images::scene(300, 200), ImageFormat::Jpeg)?;
        let sizes = [64, 512, 256];
        let thumbnails = make_thumbnails(&bytes, &sizes, &UploadLimits::default())?;
        assert_eq!(thumbnails.iter().map(|t| t.size).collect::<Vec<_>>(), sizes);
        for thumbnail in &thumbnails {
            // 512 is larger than the 200-pixel square: it must be upscaled, not refused.
            let decoded = decode_jpeg(&thumbnail.jpeg)?;
            assert_eq!(decoded.dimensions(), (thumbnail.size, thumbnail.size));
            assert_eq!(ImageFormat::sniff(&thumbnail.jpeg), Some(ImageFormat::Jpeg));
        }
        Ok(())
    }

    #[test]
    fn exif_orientation_is_applied_before_cropping() -> TestResult {
        // Landscape 200x100 with a red top-left quadrant. Orientation 6 means "rotate 90°
        // clockwise to display": the picture becomes 100x200 with red at x 50..100, y 0..100.
        // Its centred square (y 50..150) is red in the top-right quarter only. Ignoring the
        // orientation would crop x 50..150 of the landscape and put the red top-left instead.
        // At 1600x800 the JPEG is decoded at 1/8 scale, through the scaled decoder.
        for (width, height) in [(200, 100), (1600, 800)] {
            let landscape = test_images::red_top_left(width, height);
            let bytes = test_images::jpeg_with_orientation(&landscape, 6)?;
            let thumbnails = make_thumbnails(&bytes, &[64, 32], &UploadLimits::default())?;
            let thumbnail = decode_jpeg(&thumbnails[0].jpeg)?;
            assert_eq!(thumbnail.dimensions(), (64, 64));
            assert!(
                is_red(thumbnail.get_pixel(58, 5)),
                "{width}x{height}: top-right should be red"
            );
            assert!(
                is_blue(thumbnail.get_pixel(5, 5)),
                "{width}x{height}: top-left should be blue"
            );
            assert!(is_blue(thumbnail.get_pixel(58, 44)));
            assert!(is_blue(thumbnail.get_pixel(5, 58)));
            let small = decode_jpeg(&thumbnails[1].jpeg)?;
            assert!(is_red(small.get_pixel(29, 2)) && is_blue(small.get_pixel(2, 2)));
        }
        Ok(())
    }

    #[test]
    fn alpha_is_flattened_onto_white() -> TestResult {
        let bytes = test_images::encode_rgba(&test_images::translucent(128, 64), ImageFormat::Png)?;
        let thumbnails = make_thumbnails(&bytes, &[32], &UploadLimits::default())?;
        let thumbnail = decode_jpeg(&thumbnails[0].jpeg)?;
        assert_eq!(thumbnail.dimensions(), (32, 32));
        // The centred square spans alpha 25%..75%: lighter on the left, darker on the right.
        let left = thumbnail.get_pixel(1, 16).0[0];
        let right = thumbnail.get_pixel(30, 16).0[0];
        assert!(left > right + 60, "left {left}, right {right}");
        assert!(left > 150 && right < 100, "left {left}, right {right}");
        Ok(())
    }

    #[test]
    fn every_format_works() -> TestResult {
        for format in crate::imaging::ACCEPTED_FORMATS {
            let bytes = test_images::encode(&test_images::scene(90, 120), format)?;
            let thumbnails = make_thumbnails(&bytes, &[48], &UploadLimits::default())?;
            assert_eq!(decode_jpeg(&thumbnails[0].jpeg)?.dimensions(), (48, 48));
        }
        Ok(())
    }

    #[test]
    fn refuses_bad_sizes_and_bad_images() -> TestResult {
        let bytes = test_images::encode(&test_images::scene(16, 16), ImageFormat::Png)?;
        let limits = UploadLimits::default();
        let zero = make_thumbnails(&bytes, &[64, 0], &limits);
        assert!(matches!(zero, Err(ThumbnailError::InvalidSize(0))));
        let huge = make_thumbnails(&bytes, &[MAX_THUMBNAIL_SIZE + 1], &limits);
        assert!(matches!(huge, Err(ThumbnailError::InvalidSize(_))));
        let not_image = make_thumbnails(b"hello", &[64], &limits);
        assert!(matches!(
            not_image,
            Err(ThumbnailError::Image(DecodeError::NotAnImage))
        ));
        Ok(())
    }
}
