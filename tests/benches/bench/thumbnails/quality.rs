//! How close each side's thumbnails come to an ideal one, so a speed-up cannot hide a loss of
//! quality: PSNR of the luma against a reference made the slow, exact way (full-size decode,
//! the same centred square, one Lanczos3 pass with the `image` crate, which neither side uses).

use image::RgbImage;
use image::imageops::{self, FilterType};

/// The references of one photo, one per size.
pub struct Reference {
    images: Vec<(u32, RgbImage)>,
}

impl Reference {
    /// Full decode, centred square of the shorter side, Lanczos3 straight to each size.
    pub fn new(jpeg: &[u8], sizes: &[u32]) -> Self {
        let full = image::load_from_memory(jpeg)
            .expect("decode the test photo")
            .into_rgb8();
        let (width, height) = full.dimensions();
        let side = width.min(height);
        let square = imageops::crop_imm(&full, (width - side) / 2, (height - side) / 2, side, side)
            .to_image();
        let images = sizes
            .iter()
            .map(|&size| {
                let resized = imageops::resize(&square, size, size, FilterType::Lanczos3);
                (size, resized)
            })
            .collect();
        Self { images }
    }

    /// PSNR in dB of a thumbnail (a JPEG as shipped) against the reference of its size.
    pub fn psnr(&self, size: u32, thumbnail_jpeg: &[u8]) -> f64 {
        let (_, reference) = self
            .images
            .iter()
            .find(|(s, _)| *s == size)
            .expect("a reference of this size");
        let thumbnail = image::load_from_memory(thumbnail_jpeg)
            .expect("decode a thumbnail")
            .into_rgb8();
        assert_eq!(thumbnail.dimensions(), reference.dimensions(), "{size} px");
        luma_psnr(reference, &thumbnail)
    }
}

/// PSNR of the BT.601 luma, where the eye sees detail (and where resampling and JPEG lose it).
fn luma_psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let luma = |p: &image::Rgb<u8>| {
        let [r, g, b] = p.0.map(f64::from);
        0.299 * r + 0.587 * g + 0.114 * b
    };
    let squared: f64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| (luma(p) - luma(q)).powi(2))
        .sum();
    let mse = squared / f64::from(a.width() * a.height());
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}
