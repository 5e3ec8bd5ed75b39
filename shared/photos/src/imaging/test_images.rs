//! Test pictures generated in code, so the repository holds no binary fixtures and every test
//! can say exactly what its input contains.

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{
    AnimationDecoder, Delay, DynamicImage, ExtendedColorType, Frame, ImageEncoder, ImageResult,
    Rgb, RgbImage, Rgba, RgbaImage,
};
use img_parts::jpeg::Jpeg;
use img_parts::png::PngChunk;
use img_parts::{Bytes, ImageEXIF};

use super::format::ImageFormat;

type TestResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The GPSInfo pointer entry (tag 0x8825, type LONG) of [`exif_with_gps`], little-endian.
pub(crate) const GPS_MARKER: &[u8] = &[0x25, 0x88, 0x04, 0x00];

/// A deterministic pseudo-random sequence (Knuth's MMIX LCG), so noise is the same every run.
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u8(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0.to_be_bytes()[0]
    }
}

/// A photo-like picture: gradients, a disc and a bar, with a little noise.
pub(crate) fn scene(width: u32, height: u32) -> RgbImage {
    let mut rng = Lcg::new(42);
    let (w, h) = (width as f32, height as f32);
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        let in_disc = (fx - 0.35).powi(2) + (fy - 0.45).powi(2) < 0.04;
        let in_bar = (0.6..0.8).contains(&fx) && (0.2..0.9).contains(&fy);
        let jitter = f32::from(rng.next_u8() % 16);
        let base = if in_disc {
            [230.0, 60.0, 40.0]
        } else if in_bar {
            [30.0, 40.0, 200.0]
        } else {
            [255.0 * fx, 180.0 * fy, 120.0 * (1.0 - fx)]
        };
        Rgb(base.map(|c| (c * 0.92 + jitter).clamp(0.0, 255.0) as u8))
    })
}

/// A different picture from [`scene`]: diagonal stripes and a dark corner.
pub(crate) fn other_scene(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let stripe = ((x + 2 * y) / 12) % 2 == 0;
        let dark = x > width * 2 / 3 && y < height / 3;
        match (stripe, dark) {
            (_, true) => Rgb([10, 10, 10]),
            (true, false) => Rgb([250, 240, 200]),
            (false, false) => Rgb([40, 140, 60]),
        }
    })
}

/// Pure noise: hard to compress, so truncation always cuts into pixel data.
pub(crate) fn noise(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = Lcg::new(seed);
    RgbImage::from_fn(width, height, |_, _| {
        Rgb([rng.next_u8(), rng.next_u8(), rng.next_u8()])
    })
}

/// Red top-left quadrant, blue elsewhere: shows where the top-left corner ends up.
pub(crate) fn red_top_left(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        if x < width / 2 && y < height / 2 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    })
}

/// Black, with alpha rising from fully transparent on the left to opaque on the right.
pub(crate) fn translucent(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, _| {
        let alpha = (x * 255 / width.saturating_sub(1).max(1)).min(255) as u8;
        Rgba([0, 0, 0, alpha])
    })
}

/// Encodes an RGB picture; JPEG at quality 90, the others losslessly.
pub(crate) fn encode(picture: &RgbImage, format: ImageFormat) -> ImageResult<Vec<u8>> {
    match format {
        ImageFormat::Jpeg => encode_jpeg(picture, 90),
        ImageFormat::Gif => encode_rgba(&DynamicImage::from(picture.clone()).to_rgba8(), format),
        _ => encode_raw(
            picture.as_raw(),
            picture.dimensions(),
            ExtendedColorType::Rgb8,
            format,
        ),
    }
}

/// Encodes an RGBA picture (JPEG is refused by the encoder, as it has no alpha).
pub(crate) fn encode_rgba(picture: &RgbaImage, format: ImageFormat) -> ImageResult<Vec<u8>> {
    if format == ImageFormat::Gif {
        let frame = Frame::new(picture.clone());
        return encode_gif(vec![frame]);
    }
    encode_raw(
        picture.as_raw(),
        picture.dimensions(),
        ExtendedColorType::Rgba8,
        format,
    )
}

pub(crate) fn encode_jpeg(picture: &RgbImage, quality: u8) -> ImageResult<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality).encode_image(picture)?;
    Ok(out)
}

fn encode_raw(
    raw: &[u8],
    (width, height): (u32, u32),
    color: ExtendedColorType,
    format: ImageFormat,
) -> ImageResult<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        ImageFormat::Jpeg => JpegEncoder::new(&mut out).write_image(raw, width, height, color)?,
        ImageFormat::Png => PngEncoder::new(&mut out).write_image(raw, width, height, color)?,
        ImageFormat::WebP => {
            WebPEncoder::new_lossless(&mut out).write_image(raw, width, height, color)?
        }
        ImageFormat::Gif => GifEncoder::new(&mut out).encode(raw, width, height, color)?,
    }
    Ok(out)
}

fn encode_gif(frames: Vec<Frame>) -> ImageResult<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite)?;
        encoder.encode_frames(frames)?;
    }
    Ok(out)
}

/// A looping GIF whose frames are shifted noise, so each frame differs.
pub(crate) fn animated_gif(width: u32, height: u32, frames: u64) -> ImageResult<Vec<u8>> {
    let frames = (0..frames)
        .map(|seed| {
            let rgba = DynamicImage::from(noise(width, height, seed)).to_rgba8();
            Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(100, 1))
        })
        .collect();
    encode_gif(frames)
}

pub(crate) fn gif_frame_count(bytes: &[u8]) -> TestResult<usize> {
    let frames = GifDecoder::new(Cursor::new(bytes))?
        .into_frames()
        .collect_frames()?;
    Ok(frames.len())
}

/// Inserts raw extension blocks right after the header, screen descriptor and colour table.
pub(crate) fn insert_after_gif_header(gif: &[u8], blocks: &[u8]) -> Vec<u8> {
    let packed = gif.get(10).copied().unwrap_or(0);
    let colour_table = if packed & 0x80 == 0 {
        0
    } else {
        3 << ((packed & 0x07) + 1)
    };
    let at = (13 + colour_table).min(gif.len());
    [&gif[..at], blocks, &gif[at..]].concat()
}

/// A PNG with a valid IHDR claiming `width` × `height` and a token IDAT: enough for a header
/// read, nowhere near enough pixels.
pub(crate) fn png_with_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let chunks = [
        PngChunk::new(*b"IHDR", Bytes::from(ihdr)),
        PngChunk::new(*b"IDAT", Bytes::from_static(&[0x78, 0x9C, 0x03, 0x00])),
        PngChunk::new(*b"IEND", Bytes::new()),
    ];
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for chunk in chunks {
        png.extend_from_slice(&chunk.encoder().bytes());
    }
    png
}

/// A little-endian TIFF (raw EXIF) with an orientation and a GPS IFD locating the picture.
pub(crate) fn exif_with_gps() -> Vec<u8> {
    let mut tiff = b"II\x2A\x00\x08\x00\x00\x00".to_vec();
    // IFD0 at 8: orientation, and the GPS IFD pointer (to offset 38).
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&ifd_entry(0x0112, 3, 1, [1, 0, 0, 0]));
    tiff.extend_from_slice(&ifd_entry(0x8825, 4, 1, 38u32.to_le_bytes()));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD at 38: latitude ref "N" and the latitude rationals at offset 68.
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&ifd_entry(0x0001, 2, 2, *b"N\0\0\0"));
    tiff.extend_from_slice(&ifd_entry(0x0002, 5, 3, 68u32.to_le_bytes()));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    for (numerator, denominator) in [(51u32, 1u32), (30, 1), (1234, 100)] {
        tiff.extend_from_slice(&numerator.to_le_bytes());
        tiff.extend_from_slice(&denominator.to_le_bytes());
    }
    tiff
}

/// A little-endian TIFF (raw EXIF) holding only an orientation tag.
pub(crate) fn exif_with_orientation(orientation: u16) -> Vec<u8> {
    let mut tiff = b"II\x2A\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    let [low, high] = orientation.to_le_bytes();
    tiff.extend_from_slice(&ifd_entry(0x0112, 3, 1, [low, high, 0, 0]));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff
}

fn ifd_entry(tag: u16, kind: u16, count: u32, value: [u8; 4]) -> [u8; 12] {
    let mut entry = [0; 12];
    entry[..2].copy_from_slice(&tag.to_le_bytes());
    entry[2..4].copy_from_slice(&kind.to_le_bytes());
    entry[4..8].copy_from_slice(&count.to_le_bytes());
    entry[8..].copy_from_slice(&value);
    entry
}

/// A JPEG of `picture` whose EXIF says to display it with the given orientation (1–8).
pub(crate) fn jpeg_with_orientation(picture: &RgbImage, orientation: u16) -> TestResult<Vec<u8>> {
    let mut jpeg = Jpeg::from_bytes(Bytes::from(encode_jpeg(picture, 95)?))?;
    jpeg.set_exif(Some(Bytes::from(exif_with_orientation(orientation))));
    Ok(jpeg.encoder().bytes().to_vec())
}
