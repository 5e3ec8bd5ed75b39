//! Test images made in code: photos with distinct content, EXIF location data, bombs, fakes.

use image::{ImageFormat, RgbImage};
use img_parts::ImageEXIF;
use img_parts::jpeg::Jpeg;

pub use support::images::photo;

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    support::images::encode(image, format).unwrap()
}

pub fn jpeg(image: &RgbImage) -> Vec<u8> {
    encode(image, ImageFormat::Jpeg)
}

pub fn png(image: &RgbImage) -> Vec<u8> {
    encode(image, ImageFormat::Png)
}

/// `jpeg` with an EXIF segment holding a GPS position, as phone photos have.
pub fn with_gps_exif(jpeg: &[u8]) -> Vec<u8> {
    // TIFF header (little endian), IFD0 with one entry: the GPS IFD pointer (0x8825) to a GPS
    // IFD holding GPSLatitudeRef = "N".
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend([1, 0, 0x25, 0x88, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0, 0, 0, 0, 0]);
    tiff.extend([
        1, 0, 1, 0, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let mut image = Jpeg::from_bytes(jpeg.to_vec().into()).unwrap();
    image.set_exif(Some(tiff.into()));
    let mut out = Vec::new();
    image.encoder().write_to(&mut out).unwrap();
    out
}

/// A valid PNG whose header claims 100,000 × 100,000 pixels: a decompression bomb.
pub fn png_bomb() -> Vec<u8> {
    let mut bytes = png(&RgbImage::new(1, 1));
    // IHDR data starts after the 8-byte signature, 4-byte length and 4-byte type.
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// A valid PNG of `side` x `side` pixels of one colour, at the best compression: a small
/// file (about 150 KiB at 7000 px) that decodes to `side`² x 3 bytes.
pub fn compressed_png(side: u32) -> Vec<u8> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut out = Vec::new();
    let pixels = vec![0u8; side as usize * side as usize * 3];
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::NoFilter)
        .write_image(&pixels, side, side, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// The start of a BMP file: an image format we do not take.
pub fn bmp() -> Vec<u8> {
    let mut bytes = b"BM".to_vec();
    bytes.resize(64, 0);
    bytes
}
