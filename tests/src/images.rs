//! Pictures made in code for tests and benchmarks: perceptually distinct per seed.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

/// A colourful picture (gradient, bands and a disc); different seeds give perceptually
/// different pictures.
#[must_use]
pub fn photo(width: u32, height: u32, seed: u32) -> RgbImage {
    let (w, h) = (width.max(1), height.max(1));
    let radius = i64::from(w.min(h) / 3);
    let (cx, cy) = (i64::from(seed * 97 % w), i64::from(seed * 53 % h));
    RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
        if dx * dx + dy * dy < radius * radius {
            return match seed % 3 {
                0 => Rgb([250, 30, 30]),
                1 => Rgb([20, 200, 40]),
                _ => Rgb([30, 40, 220]),
            };
        }
        let band = u8::try_from((x / 40 + y / 30 + seed) % 4).unwrap_or(0);
        let gradient = |v: u32, max: u32| u8::try_from(v * 255 / max).unwrap_or(u8::MAX);
        Rgb([gradient(x, w), gradient(y, h), band * 60])
    })
}

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
