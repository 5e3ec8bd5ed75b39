//! Decoding untrusted bytes safely: every decode in this module goes through here so the format
//! is sniffed, the header's pixel count is checked before any pixel is decoded, and the decoder
//! runs under memory limits that make a decompression bomb fail fast.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Rgb, RgbImage};
use img_parts::webp::WebP;
use img_parts::{Bytes, ImageEXIF};

use super::format::{ImageFormat, sniff_foreign};
use super::scaled_jpeg;
use super::upload::{CheckedImage, DecodeError, UploadLimits};

/// The widest decoded pixel (RGBA with 16-bit channels), for the allocation budget.
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Headroom for decoder state beyond the output buffer (Huffman tables, zlib windows, rows).
const WORKING_MEMORY: u64 = 64 * 1024 * 1024;

/// Room above a declared image's decoded size for buffers a decoder sizes from the data (a GIF
/// frame a little larger than its canvas, which viewers clip), so such files still decode.
const DECLARED_SIZE_SLACK: u64 = 1024 * 1024;

/// A decoder whose header has been read and found within the limits.
pub(crate) struct GuardedDecoder<'a> {
    bytes: &'a [u8],
    checked: CheckedImage,
    limits: UploadLimits,
    decoder: Box<dyn ImageDecoder + 'a>,
}

impl<'a> GuardedDecoder<'a> {
    /// Sniffs the format and reads the header, refusing anything [`check_upload`] would refuse
    /// before decoding.
    ///
    /// [`check_upload`]: super::check_upload
    pub(crate) fn open(bytes: &'a [u8], limits: &UploadLimits) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        let format = ImageFormat::sniff(bytes).ok_or_else(|| match sniff_foreign(bytes) {
            Some(name) => DecodeError::UnsupportedFormat(name.to_owned()),
            None => DecodeError::NotAnImage,
        })?;
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format.to_image_format());
        reader.limits(decoder_limits(limits));
        let mut decoder = match reader.into_decoder() {
            Ok(decoder) => decoder,
            Err(ImageError::Limits(_)) => return Err(limit_hit_in_header(bytes, format, limits)),
            Err(e) => return Err(decode_error(format, e)),
        };
        let (width, height) = decoder.dimensions();
        if width == 0 || height == 0 {
            return Err(DecodeError::Corrupt(format!(
                "the header declares an empty {width}x{height} image"
            )));
        }
        if pixels(width, height) > limits.max_pixels {
            return Err(too_many_pixels(width, height, limits));
        }
        decoder
            .set_limits(declared_size_limits(decoder.total_bytes(), limits))
            .map_err(|e| decode_error(format, e))?;
        Ok(Self {
            bytes,
            checked: CheckedImage {
                format,
                width,
                height,
            },
            limits: *limits,
            decoder: Box::new(decoder),
        })
    }

    /// The format and stored dimensions.
    pub(crate) fn checked(&self) -> CheckedImage {
        self.checked
    }

    /// The bytes the decoded pixels will take, as the header declares them.
    pub(crate) fn decoded_bytes(&self) -> u64 {
        self.decoder.total_bytes()
    }

    /// The EXIF orientation; unreadable EXIF means the camera did not rotate anything we can
    /// trust, so it counts as upright rather than failing the image.
    pub(crate) fn orientation(&mut self) -> Orientation {
        if self.checked.format == ImageFormat::WebP {
            return webp_orientation(self.bytes);
        }
        self.decoder
            .orientation()
            .unwrap_or(Orientation::NoTransforms)
    }

    /// Decodes every pixel (the first frame of an animation).
    pub(crate) fn decode(self) -> Result<DynamicImage, DecodeError> {
        let CheckedImage {
            format,
            width,
            height,
        } = self.checked;
        if self.decoder.total_bytes() > alloc_budget(&self.limits) {
            return Err(too_many_pixels(width, height, &self.limits));
        }
        DynamicImage::from_decoder(self.decoder).map_err(|e| match e {
            ImageError::Limits(_) => over_memory_budget(width, height, &self.limits),
            e => decode_error(format, e),
        })
    }
}

/// A WebP's EXIF orientation, read with `img-parts`, which slices every chunk out of the bytes
/// we hold after checking its length. The WebP decoder's own EXIF reader allocates the length
/// the chunk header declares before reading it (found by the property tests: a WebP whose EXIF
/// chunk size was shifted by two inserted bytes made fingerprinting allocate 788 MB, and any
/// size up to 4 GiB can be declared in a file of a few hundred bytes).
fn webp_orientation(bytes: &[u8]) -> Orientation {
    WebP::from_bytes(Bytes::copy_from_slice(bytes))
        .ok()
        .and_then(|webp| webp.exif())
        .and_then(|exif| Orientation::from_exif_chunk(&exif))
        .unwrap_or(Orientation::NoTransforms)
}

/// Decodes an upload as a viewer would show it: EXIF orientation applied, transparency
/// flattened onto white, 8-bit RGB.
pub(crate) fn decode_for_display(
    bytes: &[u8],
    limits: &UploadLimits,
) -> Result<RgbImage, DecodeError> {
    display(GuardedDecoder::open(bytes, limits)?)
}

/// Like [`decode_for_display`], but a JPEG may come out smaller, down to 1/8 scale, as long as
/// its shorter side keeps at least `min_side` pixels: all a thumbnail of that size needs.
pub(crate) fn decode_for_display_at_least(
    bytes: &[u8],
    limits: &UploadLimits,
    min_side: u32,
) -> Result<RgbImage, DecodeError> {
    let decoder = GuardedDecoder::open(bytes, limits)?;
    if decoder.checked().format == ImageFormat::Jpeg
        && let Some(picture) = scaled_jpeg::decode_at_least(bytes, min_side, alloc_budget(limits))
    {
        return Ok(picture);
    }
    display(decoder)
}

/// The size, as stored (before orientation), that [`decode_for_display_at_least`] decodes
/// `bytes` to: a JPEG's DCT-scaled size, else the full size.
pub(crate) fn display_size_at_least(
    bytes: &[u8],
    limits: &UploadLimits,
    min_side: u32,
) -> Result<(u32, u32), DecodeError> {
    let checked = GuardedDecoder::open(bytes, limits)?.checked();
    let scaled = (checked.format == ImageFormat::Jpeg)
        .then(|| scaled_jpeg::size_at_least(bytes, min_side))
        .flatten();
    Ok(scaled.unwrap_or((checked.width, checked.height)))
}

fn display(mut decoder: GuardedDecoder<'_>) -> Result<RgbImage, DecodeError> {
    let orientation = decoder.orientation();
    let mut image = decoder.decode()?;
    image.apply_orientation(orientation);
    Ok(flatten_onto_white(image))
}

/// Thumbnails and hashes are opaque, and a transparent area must look the same whatever colour
/// its hidden pixels happen to hold, so alpha is composited onto white.
fn flatten_onto_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (out, pixel) in rgb.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, alpha] = pixel.0;
        *out = Rgb([r, g, b].map(|channel| over_white(channel, alpha)));
    }
    rgb
}

fn over_white(channel: u8, alpha: u8) -> u8 {
    let (channel, alpha) = (u32::from(channel), u32::from(alpha));
    let blended = (channel * alpha + 255 * (255 - alpha) + 127) / 255;
    u8::try_from(blended).unwrap_or(u8::MAX)
}

/// The strict width/height limits can only trip when the pixel count is over too (the other
/// side is at least 1), and `max_alloc` stops the allocations a lying header would cause.
fn decoder_limits(limits: &UploadLimits) -> image::Limits {
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(side);
    decoder_limits.max_image_height = Some(side);
    decoder_limits.max_alloc = Some(alloc_budget(limits));
    decoder_limits
}

/// Once the header's dimensions passed, the budget shrinks to what an image of that size
/// needs: nothing inside an image needs more memory than its decoded pixels. Without this a
/// decoder may allocate for sizes declared deeper in the file up to the whole budget: a GIF's
/// first frame can claim far more pixels than its canvas, and `image` allocates a buffer for it
/// (found by the property tests: a 1.2 KB GIF with a 24x16 canvas and a 4300x4300 frame made
/// `check_upload` allocate 92 MB under a 1-megapixel limit; under the default 50 megapixels a
/// 10760x10760 frame made it 579 MB).
fn declared_size_limits(decoded_bytes: u64, limits: &UploadLimits) -> image::Limits {
    let mut declared = decoder_limits(limits);
    let needed = decoded_bytes.saturating_add(DECLARED_SIZE_SLACK);
    declared.max_alloc = Some(needed.min(alloc_budget(limits)));
    declared
}

fn alloc_budget(limits: &UploadLimits) -> u64 {
    limits
        .max_pixels
        .saturating_mul(MAX_BYTES_PER_PIXEL)
        .saturating_add(WORKING_MEMORY)
}

fn pixels(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height)
}

/// A limit tripped while the header was read, before we saw the dimensions: read the header
/// again without limits (it is small) so the error can say how large the image claims to be.
fn limit_hit_in_header(bytes: &[u8], format: ImageFormat, limits: &UploadLimits) -> DecodeError {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.to_image_format());
    reader.no_limits();
    match reader.into_dimensions() {
        Ok((width, height)) => over_memory_budget(width, height, limits),
        Err(e) => decode_error(format, e),
    }
}

fn over_memory_budget(width: u32, height: u32, limits: &UploadLimits) -> DecodeError {
    if pixels(width, height) > limits.max_pixels {
        too_many_pixels(width, height, limits)
    } else {
        DecodeError::Corrupt(format!(
            "decoding this {width}x{height} image would need more memory than allowed"
        ))
    }
}

fn too_many_pixels(width: u32, height: u32, limits: &UploadLimits) -> DecodeError {
    DecodeError::TooManyPixels {
        width,
        height,
        max: limits.max_pixels,
    }
}

fn decode_error(format: ImageFormat, error: ImageError) -> DecodeError {
    match error {
        ImageError::Unsupported(e) => DecodeError::UnsupportedFeature {
            format,
            detail: e.to_string(),
        },
        e => DecodeError::Corrupt(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::test_images;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn transparency_becomes_white() -> TestResult {
        let mut picture = image::RgbaImage::new(4, 4);
        picture.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        picture.put_pixel(1, 0, image::Rgba([0, 0, 0, 255]));
        picture.put_pixel(2, 0, image::Rgba([0, 0, 0, 128]));
        let png = test_images::encode_rgba(&picture, ImageFormat::Png)?;
        let rgb = decode_for_display(&png, &UploadLimits::default())?;
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(2, 0).0, [127, 127, 127]);
        Ok(())
    }

    #[test]
    fn display_decode_applies_a_webp_exif_orientation() -> TestResult {
        let plain = test_images::encode(&test_images::red_top_left(80, 40), ImageFormat::WebP)?;
        let mut webp = WebP::from_bytes(Bytes::from(plain))?;
        webp.set_exif(Some(Bytes::from(test_images::exif_with_orientation(6))));
        let bytes = webp.encoder().bytes().to_vec();
        let rgb = decode_for_display(&bytes, &UploadLimits::default())?;
        assert_eq!(rgb.dimensions(), (40, 80));
        // Rotated clockwise, the red top-left quadrant is now top right.
        assert_eq!(rgb.get_pixel(39, 0).0, [255, 0, 0]);
        Ok(())
    }

    #[test]
    fn display_decode_applies_exif_orientation() -> TestResult {
        let jpeg = test_images::jpeg_with_orientation(&test_images::red_top_left(80, 40), 6)?;
        let rgb = decode_for_display(&jpeg, &UploadLimits::default())?;
        assert_eq!(rgb.dimensions(), (40, 80));
        Ok(())
    }
}
