//! JPEG decoding at a reduced DCT scale, the thumbnail job's biggest saving: a JPEG can be
//! decoded straight to 1/2, 1/4 or 1/8 of its size by using fewer DCT coefficients, which
//! skips most of the inverse DCT and colour conversion work (what libjpeg's scaled decoding
//! and Pillow's `draft()` do). A 12 MP photo becomes a 1000×750 picture before any resizing.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use jpeg_decoder::{Decoder, PixelFormat};

/// Decodes a JPEG at the smallest scale whose shorter side still has at least `min_side`
/// pixels (the full size if the image is smaller), with its EXIF orientation applied.
///
/// `None` when this path does not apply or fails (CMYK or 16-bit data, a file this decoder
/// reads differently): the caller then takes the general path, which gives the proper error.
pub(crate) fn decode_at_least(bytes: &[u8], min_side: u32, max_buffer: u64) -> Option<RgbImage> {
    let mut decoder = Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(usize::try_from(max_buffer).unwrap_or(usize::MAX));
    let attempt = (|| {
        let (width, height) = scale_to_at_least(&mut decoder, min_side)?;
        let pixels = decoder.decode()?;
        Ok::<_, jpeg_decoder::Error>((width, height, pixels))
    })();
    let (width, height, pixels) = match attempt {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::debug!(%error, "scaled JPEG decode failed; using the full decoder");
            return None;
        }
    };
    let format = decoder.info()?.pixel_format;
    let (width, height) = (u32::from(width), u32::from(height));
    let rgb = match format {
        PixelFormat::RGB24 => RgbImage::from_raw(width, height, pixels)?,
        PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(width, height, pixels)?).into_rgb8()
        }
        PixelFormat::L16 | PixelFormat::CMYK32 => return None,
    };
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let mut picture = DynamicImage::ImageRgb8(rgb);
    picture.apply_orientation(orientation);
    Some(picture.into_rgb8())
}

/// The size, as stored (before orientation), that [`decode_at_least`] decodes this JPEG to,
/// from its header alone; `None` where [`decode_at_least`] would not apply.
pub(crate) fn size_at_least(bytes: &[u8], min_side: u32) -> Option<(u32, u32)> {
    let mut decoder = Decoder::new(Cursor::new(bytes));
    let (width, height) = scale_to_at_least(&mut decoder, min_side).ok()?;
    match decoder.info()?.pixel_format {
        PixelFormat::RGB24 | PixelFormat::L8 => Some((u32::from(width), u32::from(height))),
        PixelFormat::L16 | PixelFormat::CMYK32 => None,
    }
}

/// Reads the header and sets the smallest DCT scale whose shorter side keeps `min_side`.
fn scale_to_at_least<R: std::io::Read>(
    decoder: &mut Decoder<R>,
    min_side: u32,
) -> Result<(u16, u16), jpeg_decoder::Error> {
    decoder.read_info()?;
    // The decoder settles for a scale where either side reaches its request, so only the
    // shorter side gets one; the other asks for more than any scale gives.
    let (full_width, full_height) = decoder
        .info()
        .map_or((0, 0), |info| (info.width, info.height));
    let side = u16::try_from(min_side).unwrap_or(u16::MAX);
    if full_width >= full_height {
        decoder.scale(u16::MAX, side)
    } else {
        decoder.scale(side, u16::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::test_images;

    #[test]
    fn decodes_at_the_smallest_scale_that_covers_the_side_and_applies_the_orientation()
    -> Result<(), Box<dyn std::error::Error>> {
        let landscape = test_images::red_top_left(1600, 800);
        let bytes = test_images::jpeg_with_orientation(&landscape, 6)?;
        let cases = [(64, (100, 200)), (150, (200, 400)), (800, (800, 1600))];
        for (min_side, expected) in cases {
            let picture = decode_at_least(&bytes, min_side, u64::MAX).ok_or("not decoded")?;
            assert_eq!(picture.dimensions(), expected, "at least {min_side}");
            // Stored landscape: the size before the orientation turns it.
            let stored = size_at_least(&bytes, min_side).ok_or("no size")?;
            assert_eq!(
                stored,
                (expected.1, expected.0),
                "size of at least {min_side}"
            );
        }
        Ok(())
    }
}
