//! Square JPEG thumbnails of an upload, the thumbnail worker's hot path: the image is decoded,
//! oriented and flattened once, and every size is resized straight from the centred square.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use super::decoder::decode_for_display;
use super::upload::{UploadError, UploadLimits};

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
    Image(#[from] UploadError),
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
        source: image::ImageError,
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
    let picture = decode_for_display(bytes, limits)?;
    let options = centred_square_options(&picture);
    let mut resizer = Resizer::new();
    sizes
        .iter()
        .map(|&size| {
            let jpeg = render(&mut resizer, &picture, &options, size)?;
            Ok(Thumbnail { size, jpeg })
        })
        .collect()
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

fn render(
    resizer: &mut Resizer,
    picture: &RgbImage,
    options: &ResizeOptions,
    size: u32,
) -> Result<Vec<u8>, ThumbnailError> {
    let mut thumbnail = RgbImage::new(size, size);
    resizer
        .resize(picture, &mut thumbnail, options)
        .map_err(|source| ThumbnailError::Resize { size, source })?;
    let mut jpeg = Vec::new();
    // image's JPEG encoder only writes baseline (sequential) JPEGs, which every client decodes.
    JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .write_image(thumbnail.as_raw(), size, size, ExtendedColorType::Rgb8)
        .map_err(|source| ThumbnailError::Encode { size, source })?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photos::imaging::format::ImageFormat;
    use crate::photos::imaging::test_images;
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
        let bytes = test_images::jpeg_with_orientation(&test_images::red_top_left(200, 100), 6)?;
        let thumbnails = make_thumbnails(&bytes, &[64], &UploadLimits::default())?;
        let thumbnail = decode_jpeg(&thumbnails[0].jpeg)?;
        assert_eq!(thumbnail.dimensions(), (64, 64));
        assert!(
            is_red(thumbnail.get_pixel(58, 5)),
            "top-right should be red"
        );
        assert!(
            is_blue(thumbnail.get_pixel(5, 5)),
            "top-left should be blue"
        );
        assert!(is_blue(thumbnail.get_pixel(58, 44)));
        assert!(is_blue(thumbnail.get_pixel(5, 58)));
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
        for format in crate::photos::imaging::ACCEPTED_FORMATS {
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
            Err(ThumbnailError::Image(UploadError::NotAnImage))
        ));
        Ok(())
    }
}
