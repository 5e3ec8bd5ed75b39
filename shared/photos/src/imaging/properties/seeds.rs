//! Seeds for the upload property tests: small valid images of every accepted format and of
//! the variants their decoders branch on (EXIF, alpha, animation, the extended WebP header),
//! and the places in each where the header declares the image's dimensions, so a test can
//! make an image lie about its size.

use std::sync::LazyLock;

use img_parts::webp::WebP;
use img_parts::{Bytes, ImageEXIF};

use crate::imaging::format::ImageFormat;
use crate::imaging::test_images;

/// A valid image to mutate.
#[derive(Debug)]
pub(super) struct Seed {
    pub(super) name: &'static str,
    pub(super) bytes: Vec<u8>,
}

/// Every seed, made once per test binary: encoding them is the slow part of a case otherwise.
pub(super) static SEEDS: LazyLock<Vec<Seed>> = LazyLock::new(|| {
    let scene = test_images::scene(24, 16);
    let seeds = [
        ("jpeg", test_images::encode(&scene, ImageFormat::Jpeg)),
        ("jpeg with EXIF", jpeg_with_exif(&scene)),
        ("png", test_images::encode(&scene, ImageFormat::Png)),
        ("png with alpha", png_with_alpha()),
        ("gif", test_images::encode(&scene, ImageFormat::Gif)),
        ("animated gif", test_images::animated_gif(16, 12, 3)),
        ("webp", test_images::encode(&scene, ImageFormat::WebP)),
        ("extended webp", extended_webp(&scene)),
        ("lossy webp", Ok(lossy_webp(24, 16, &[0; 64]))),
    ];
    seeds
        .into_iter()
        .map(|(name, bytes)| Seed {
            name,
            bytes: bytes.unwrap_or_else(|e| panic!("seed {name}: {e}")),
        })
        .collect()
});

fn jpeg_with_exif(scene: &image::RgbImage) -> image::ImageResult<Vec<u8>> {
    test_images::jpeg_with_orientation(scene, 6)
        .map_err(|e| image::ImageError::IoError(std::io::Error::other(e.to_string())))
}

fn png_with_alpha() -> image::ImageResult<Vec<u8>> {
    test_images::encode_rgba(&test_images::translucent(16, 16), ImageFormat::Png)
}

/// A WebP with EXIF, which puts it in the extended format with a VP8X canvas header.
fn extended_webp(scene: &image::RgbImage) -> image::ImageResult<Vec<u8>> {
    let plain = test_images::encode(scene, ImageFormat::WebP)?;
    let mut webp = WebP::from_bytes(Bytes::from(plain))
        .map_err(|e| image::ImageError::IoError(std::io::Error::other(e.to_string())))?;
    webp.set_exif(Some(Bytes::from(test_images::exif_with_gps())));
    Ok(webp.encoder().bytes().to_vec())
}

/// A lossy WebP key frame header for `width` × `height` followed by `body` as the compressed
/// data, its first half as the first partition (all zeros decode as a flat picture). Our
/// encoder writes only lossless WebP, so the lossy decoder is reached this way.
pub(super) fn lossy_webp(width: u16, height: u16, body: &[u8]) -> Vec<u8> {
    let first_partition = u32::try_from(body.len() / 2)
        .unwrap_or(u32::MAX)
        .min(0x7_FFFF);
    // Frame tag: key frame (bit 0 clear), version 0, shown (bit 4), partition size above.
    let tag = (first_partition << 5) | 0b1_0000;
    let mut vp8 = tag.to_le_bytes()[..3].to_vec();
    vp8.extend_from_slice(&[0x9D, 0x01, 0x2A]);
    vp8.extend_from_slice(&(width & 0x3FFF).to_le_bytes());
    vp8.extend_from_slice(&(height & 0x3FFF).to_le_bytes());
    vp8.extend_from_slice(body);
    if vp8.len() % 2 == 1 {
        vp8.push(0);
    }
    let chunk_len = u32::try_from(vp8.len()).unwrap_or(u32::MAX);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(chunk_len + 12).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8 ");
    webp.extend_from_slice(&chunk_len.to_le_bytes());
    webp.extend_from_slice(&vp8);
    webp
}

/// How a header stores a width and height, at a byte offset.
#[derive(Debug, Clone, Copy)]
enum Dimensions {
    /// PNG's IHDR: width then height, big-endian `u32`.
    PngIhdr,
    /// A GIF screen or frame: width then height, little-endian `u16`.
    GifLe16,
    /// A JPEG start-of-frame segment: height then width, big-endian `u16`.
    JpegSof,
    /// WebP lossless: 14 bits each of width − 1 and height − 1, little-endian.
    WebPLossless,
    /// WebP's VP8X canvas: 24 bits each of width − 1 and height − 1, little-endian.
    WebPCanvas,
    /// WebP lossy: 14 bits each of width and height (top two bits scale), little-endian.
    WebPLossy,
}

/// Every place in `bytes` where a header declares dimensions, found by walking the format's
/// structure as far as it is intact.
fn dimension_fields(bytes: &[u8]) -> Vec<(usize, Dimensions)> {
    match ImageFormat::sniff(bytes) {
        Some(ImageFormat::Png) if bytes.get(12..16) == Some(b"IHDR") => {
            vec![(16, Dimensions::PngIhdr)]
        }
        Some(ImageFormat::Gif) => gif_fields(bytes),
        Some(ImageFormat::Jpeg) => jpeg_fields(bytes),
        Some(ImageFormat::WebP) => webp_fields(bytes),
        _ => Vec::new(),
    }
}

fn gif_fields(bytes: &[u8]) -> Vec<(usize, Dimensions)> {
    let table = |packed: u8| {
        if packed & 0x80 == 0 {
            0
        } else {
            3 << ((packed & 7) + 1)
        }
    };
    let mut fields = vec![(6, Dimensions::GifLe16)];
    let mut pos = 13 + bytes.get(10).map_or(0, |&packed| table(packed));
    while let Some(&block) = bytes.get(pos) {
        pos += match block {
            0x2C => {
                fields.push((pos + 5, Dimensions::GifLe16));
                10 + bytes.get(pos + 9).map_or(0, |&packed| table(packed)) + 1
            }
            0x21 => 2,
            _ => break,
        };
        // Skip the sub-blocks that follow an extension label or an LZW code size.
        while let Some(&len) = bytes.get(pos) {
            pos += usize::from(len) + 1;
            if len == 0 {
                break;
            }
        }
    }
    fields
}

fn jpeg_fields(bytes: &[u8]) -> Vec<(usize, Dimensions)> {
    let is_sof =
        |marker: u8| matches!(marker, 0xC0..=0xCF) && ![0xC4, 0xC8, 0xCC].contains(&marker);
    let mut fields = Vec::new();
    let mut pos = 2;
    while let (Some(0xFF), Some(&marker), Some(len)) = (
        bytes.get(pos),
        bytes.get(pos + 1),
        bytes.get(pos + 2..pos + 4),
    ) {
        if is_sof(marker) {
            fields.push((pos + 5, Dimensions::JpegSof));
        }
        if marker == 0xDA {
            break;
        }
        pos += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
    }
    fields
}

fn webp_fields(bytes: &[u8]) -> Vec<(usize, Dimensions)> {
    let mut fields = Vec::new();
    let mut pos = 12;
    while let (Some(id), Some(len)) = (bytes.get(pos..pos + 4), bytes.get(pos + 4..pos + 8)) {
        let data = pos + 8;
        match id {
            b"VP8L" => fields.push((data + 1, Dimensions::WebPLossless)),
            b"VP8X" => fields.push((data + 4, Dimensions::WebPCanvas)),
            b"VP8 " => fields.push((data + 6, Dimensions::WebPLossy)),
            _ => {}
        }
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        pos = data.saturating_add(len).saturating_add(len % 2);
    }
    fields
}

/// Makes one of the headers in `bytes` (chosen by `which`) declare `width` × `height`, cut to
/// what its field can hold. PNG chunk checksums are recomputed so the lie gets past them.
pub(super) fn declare_dimensions(bytes: &mut [u8], which: usize, width: u32, height: u32) {
    let fields = dimension_fields(bytes);
    let Some(&(at, field)) = fields.get(which % fields.len().max(1)) else {
        return;
    };
    let (w, h) = (width.to_le_bytes(), height.to_le_bytes());
    let patch: Vec<u8> = match field {
        Dimensions::PngIhdr => [width.to_be_bytes(), height.to_be_bytes()].concat(),
        Dimensions::GifLe16 => vec![w[0], w[1], h[0], h[1]],
        Dimensions::JpegSof => vec![h[1], h[0], w[1], w[0]],
        Dimensions::WebPLossless => {
            let old = bytes
                .get(at + 3)
                .map_or(0, |&top| u32::from(top & 0xF0) << 24);
            let bits = (width.wrapping_sub(1) & 0x3FFF) | (height.wrapping_sub(1) & 0x3FFF) << 14;
            (bits | old).to_le_bytes().to_vec()
        }
        Dimensions::WebPCanvas => {
            let (w, h) = (width.wrapping_sub(1), height.wrapping_sub(1));
            [&w.to_le_bytes()[..3], &h.to_le_bytes()[..3]].concat()
        }
        Dimensions::WebPLossy => {
            let keep_scale =
                |at: usize| bytes.get(at).map_or(0, |&high| u16::from(high & 0xC0) << 8);
            let w = (u16::try_from(width & 0x3FFF).unwrap_or(0) | keep_scale(at + 1)).to_le_bytes();
            let h =
                (u16::try_from(height & 0x3FFF).unwrap_or(0) | keep_scale(at + 3)).to_le_bytes();
            vec![w[0], w[1], h[0], h[1]]
        }
    };
    let end = (at + patch.len()).min(bytes.len());
    if at < end {
        bytes[at..end].copy_from_slice(&patch[..end - at]);
    }
    if matches!(field, Dimensions::PngIhdr) {
        fix_png_checksums(bytes);
    }
}

/// Rewrites every PNG chunk's CRC, so a mutated chunk reaches the decoder instead of failing
/// its checksum.
pub(super) fn fix_png_checksums(bytes: &mut [u8]) {
    let mut pos = 8;
    while let Some(len) = bytes.get(pos..pos + 4) {
        let len = usize::try_from(u32::from_be_bytes([len[0], len[1], len[2], len[3]]));
        let Some(end) = len.ok().and_then(|len| (pos + 8).checked_add(len)) else {
            return;
        };
        if end + 4 > bytes.len() {
            return;
        }
        let crc = crc32(&bytes[pos + 4..end]);
        bytes[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        pos = end + 4;
    }
}

/// CRC-32 as PNG uses it (the zlib polynomial), bit by bit: seeds are a few kilobytes.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn every_seed_passes_the_upload_checks_and_shows_its_dimension_fields() {
    use crate::imaging::{UploadLimits, check_upload};
    for seed in SEEDS.iter() {
        let checked = check_upload(&seed.bytes, &UploadLimits::default());
        assert!(checked.is_ok(), "{}: {checked:?}", seed.name);
        assert!(!dimension_fields(&seed.bytes).is_empty(), "{}", seed.name);
    }
}

#[test]
fn declared_dimensions_are_what_the_header_reads_back() {
    use crate::imaging::{DecodeError, UploadLimits, check_upload};
    for seed in SEEDS.iter() {
        let mut bytes = seed.bytes.clone();
        declare_dimensions(&mut bytes, 0, 3_000, 2_000);
        let expected = DecodeError::TooManyPixels {
            width: 3_000,
            height: 2_000,
            max: 1_000_000,
        };
        let small = UploadLimits {
            max_pixels: 1_000_000,
        };
        let result = check_upload(&bytes, &small);
        assert_eq!(result, Err(expected), "{}", seed.name);
    }
}
