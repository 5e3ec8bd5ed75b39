//! Pictures made in code for tests and benchmarks: each seed gives a perceptually distinct
//! picture (another layout, not just another colour), so perceptual-hash moderation can tell
//! them apart like real photos.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

/// A colourful picture: a gradient whose direction and colours, a band pattern whose period,
/// and two discs whose places and sizes all depend on `seed`.
#[must_use]
pub fn photo(width: u32, height: u32, seed: u32) -> RgbImage {
    let (w, h) = (i64::from(width.max(1)), i64::from(height.max(1)));
    let mix = |n: u32| {
        (seed
            .wrapping_mul(2_654_435_761)
            .wrapping_add(n.wrapping_mul(40_503)))
            >> 8
    };
    let discs: Vec<(i64, i64, i64, Rgb<u8>)> = (0..2)
        .map(|d| {
            let r = w.min(h) / 8 + i64::from(mix(d * 3) % 100) * w.min(h) / 400;
            let colour = Rgb([
                (mix(d * 5) % 256) as u8,
                (mix(d * 7) % 256) as u8,
                (mix(d * 11) % 256) as u8,
            ]);
            (
                i64::from(mix(d * 3 + 1)) % w,
                i64::from(mix(d * 3 + 2)) % h,
                r,
                colour,
            )
        })
        .collect();
    let period = 12 + i64::from(mix(13) % 50);
    let direction = mix(17) % 4;
    RgbImage::from_fn(width, height, |x, y| {
        let (x, y) = (i64::from(x), i64::from(y));
        for (cx, cy, r, colour) in &discs {
            if (x - cx).pow(2) + (y - cy).pow(2) < r * r {
                return *colour;
            }
        }
        let t = match direction {
            0 => x * 255 / w,
            1 => y * 255 / h,
            2 => (x + y) * 255 / (w + h),
            _ => (w - x + y) * 255 / (w + h),
        };
        let band = if ((x / period) + (y / period)) % 2 == 0 {
            40
        } else {
            0
        };
        let channel =
            |k: u32| ((t * i64::from(k % 3 + 1) + band + i64::from(mix(k) % 64)) % 256) as u8;
        Rgb([channel(19), channel(23), channel(29)])
    })
}

/// The seed of the picture the end-to-end check puts on its blocklist.
pub const BANNED_SEED: u32 = 999;

/// Encodes `image` in `format`.
pub fn encode(image: &RgbImage, format: ImageFormat) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format)?;
    Ok(bytes.into_inner())
}

/// A JPEG of [`photo`].
pub fn jpeg_photo(width: u32, height: u32, seed: u32) -> Result<Vec<u8>, image::ImageError> {
    encode(&photo(width, height, seed), ImageFormat::Jpeg)
}

/// A phone-camera-like JPEG (quality 90) of [`photo`] with sensor-like noise, which makes it
/// about as large as a real photo (a 12 MP one is 3-4 MB); plain [`jpeg_photo`]s compress
/// far better than real photos.
pub fn phone_photo(width: u32, height: u32, seed: u32) -> Result<Vec<u8>, image::ImageError> {
    let base = photo(width, height, seed);
    // The same noise for every seed: the picture underneath already differs.
    let mut state: u32 = 12_345;
    let noisy = RgbImage::from_fn(width, height, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = i16::from((state >> 24) as u8 % 24) - 12;
        let Rgb(p) = *base.get_pixel(x, y);
        Rgb(p.map(|c| (i16::from(c) + noise).clamp(0, 255) as u8))
    });
    let mut bytes = Cursor::new(Vec::new());
    noisy.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut bytes, 90,
    ))?;
    Ok(bytes.into_inner())
}
