//! Removing privacy metadata (GPS position, camera serials, names, comments) from an upload
//! before it is stored or served. Only containers are rewritten: the pixels are never
//! re-encoded, so quality is untouched and the work is a copy of the bytes.

use img_parts::Bytes;
use img_parts::ImageEXIF;
use img_parts::png::Png;
use img_parts::riff::{RiffChunk, RiffContent};
use img_parts::webp::{CHUNK_EXIF, CHUNK_VP8X, WebP};

use super::format::ImageFormat;
use super::{gif_metadata, jpeg_metadata};

/// The PNG chunks a served copy keeps: what rendering needs (the image, its palette and
/// transparency, APNG frames) and the colour information. Everything else goes, named or not:
/// text and XMP (`tEXt`, `zTXt`, `iTXt`), EXIF, timestamps, C2PA manifests (`caBX`) and any
/// private chunk.
const PNG_KEPT_CHUNKS: [&[u8; 4]; 14] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"acTL", b"fcTL", b"fdAT",
];

/// The WebP chunks a served copy keeps: the bitstreams, alpha, animation and the colour
/// profile. EXIF, XMP and any other chunk go.
const WEBP_KEPT_CHUNKS: [&[u8; 4]; 7] = [
    b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP",
];

/// The VP8X flag announcing an XMP chunk, which `img-parts` does not clear when the chunk goes.
const VP8X_XMP_FLAG: u8 = 0b0000_0100;

/// Why metadata could not be removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The container structure could not be walked (or is not the declared format).
    #[error("the {format} file structure is malformed: {detail}")]
    Malformed {
        /// The format the bytes were handled as.
        format: ImageFormat,
        /// What was wrong, and usually where.
        detail: String,
    },
}

/// Returns a copy of `bytes` without privacy metadata, leaving the encoded pixels as they are.
///
/// - JPEG: drops EXIF/XMP, IPTC, comments and every APPn but a JFIF header without thumbnail,
///   ICC and Adobe, including segments between scans and anything after the end-of-image
///   marker.
/// - PNG: keeps only the chunks rendering needs and colour information ([`PNG_KEPT_CHUNKS`]),
///   and drops bytes after `IEND`.
/// - WebP: keeps only the bitstream, alpha, animation and ICC chunks ([`WEBP_KEPT_CHUNKS`]),
///   and clears the VP8X flags of what went.
/// - GIF: drops comment extensions and application extensions other than looping
///   (`NETSCAPE2.0`, `ANIMEXTS1.0`), and bytes after the trailer.
///
/// `format` is normally the one [`check_upload`](super::check_upload) sniffed.
pub fn strip_metadata(bytes: &[u8], format: ImageFormat) -> Result<Vec<u8>, MetadataError> {
    let malformed = |detail: String| MetadataError::Malformed { format, detail };
    match format {
        ImageFormat::Jpeg => jpeg_metadata::strip(bytes).map_err(|e| malformed(e.to_string())),
        ImageFormat::Gif => gif_metadata::strip(bytes).map_err(|e| malformed(e.to_string())),
        ImageFormat::Png => strip_png(bytes).map_err(|e| malformed(e.to_string())),
        ImageFormat::WebP => strip_webp(bytes).map_err(|e| malformed(e.to_string())),
    }
}

fn strip_png(bytes: &[u8]) -> Result<Vec<u8>, img_parts::Error> {
    let mut png = Png::from_bytes(Bytes::copy_from_slice(bytes))?;
    png.chunks_mut()
        .retain(|chunk| PNG_KEPT_CHUNKS.contains(&&chunk.kind()));
    Ok(png.encoder().bytes().to_vec())
}

fn strip_webp(bytes: &[u8]) -> Result<Vec<u8>, img_parts::Error> {
    let mut webp = WebP::from_bytes(Bytes::copy_from_slice(bytes))?;
    let unwanted: Vec<[u8; 4]> = webp
        .chunks()
        .iter()
        .map(RiffChunk::id)
        .filter(|id| !WEBP_KEPT_CHUNKS.contains(&id) && *id != CHUNK_EXIF)
        .collect();
    for id in unwanted {
        webp.remove_chunks_by_id(id);
    }
    // Going through `set_exif` rather than removing the chunk keeps the VP8X flags in step,
    // and drops the VP8X chunk entirely when nothing left needs the extended format.
    webp.set_exif(None);
    for chunk in webp.chunks_mut() {
        if chunk.id() == CHUNK_VP8X {
            clear_xmp_flag(chunk);
        }
    }
    Ok(webp.encoder().bytes().to_vec())
}

fn clear_xmp_flag(vp8x: &mut RiffChunk) {
    if let RiffContent::Data(data) = vp8x.content_mut()
        && data.first().is_some_and(|flags| flags & VP8X_XMP_FLAG != 0)
    {
        let mut cleared = data.to_vec();
        cleared[0] &= !VP8X_XMP_FLAG;
        *data = Bytes::from(cleared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::test_images;
    use img_parts::jpeg::{Jpeg, JpegSegment, markers};
    use img_parts::png::PngChunk;
    use img_parts::webp::{CHUNK_EXIF, CHUNK_XMP};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    /// Stripping must not change a single decoded pixel.
    fn assert_same_pixels(before: &[u8], after: &[u8]) -> TestResult {
        let before = image::load_from_memory(before)?;
        let after = image::load_from_memory(after)?;
        assert_eq!(before.color(), after.color());
        assert_eq!(before.as_bytes(), after.as_bytes());
        assert_eq!(
            (before.width(), before.height()),
            (after.width(), after.height())
        );
        Ok(())
    }

    #[test]
    fn jpeg_loses_exif_xmp_and_comments_but_keeps_pixels() -> TestResult {
        let plain = test_images::encode(&test_images::scene(64, 48), ImageFormat::Jpeg)?;
        let mut jpeg = Jpeg::from_bytes(Bytes::from(plain))?;
        jpeg.set_exif(Some(Bytes::from(test_images::exif_with_gps())));
        let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Alice</x:xmpmeta>";
        let comment = JpegSegment::new_with_contents(markers::COM, Bytes::from_static(b"home"));
        let xmp = JpegSegment::new_with_contents(markers::APP1, Bytes::from_static(xmp));
        jpeg.segments_mut().insert(1, comment);
        jpeg.segments_mut().insert(1, xmp);
        let input = jpeg.encoder().bytes().to_vec();
        assert!(contains(&input, b"Exif\0\0") && contains(&input, test_images::GPS_MARKER));

        let stripped = strip_metadata(&input, ImageFormat::Jpeg)?;
        for needle in [
            &b"Exif\0\0"[..],
            test_images::GPS_MARKER,
            b"xmpmeta",
            b"home",
        ] {
            assert!(
                !contains(&stripped, needle),
                "{:?}",
                String::from_utf8_lossy(needle)
            );
        }
        assert!(contains(&stripped, b"JFIF\0") || !contains(&input, b"JFIF\0"));
        assert_same_pixels(&input, &stripped)
    }

    #[test]
    fn png_loses_text_time_and_exif_chunks() -> TestResult {
        let plain = test_images::encode(&test_images::scene(40, 30), ImageFormat::Png)?;
        let mut png = Png::from_bytes(Bytes::from(plain))?;
        let text = PngChunk::new(*b"tEXt", Bytes::from_static(b"Author\0Alice Example"));
        let time = PngChunk::new(*b"tIME", Bytes::from_static(&[0x07, 0xE8, 1, 2, 3, 4, 5]));
        png.chunks_mut().insert(1, text);
        png.chunks_mut().insert(1, time);
        png.set_exif(Some(Bytes::from(test_images::exif_with_gps())));
        let input = png.encoder().bytes().to_vec();

        let stripped = strip_metadata(&input, ImageFormat::Png)?;
        for needle in [
            &b"tEXt"[..],
            b"Alice",
            b"tIME",
            b"eXIf",
            test_images::GPS_MARKER,
        ] {
            assert!(
                !contains(&stripped, needle),
                "{:?}",
                String::from_utf8_lossy(needle)
            );
        }
        assert_same_pixels(&input, &stripped)
    }

    #[test]
    fn webp_loses_exif_and_xmp_chunks() -> TestResult {
        let plain = test_images::encode(&test_images::scene(40, 30), ImageFormat::WebP)?;
        let mut webp = WebP::from_bytes(Bytes::from(plain))?;
        let xmp = RiffContent::Data(Bytes::from_static(b"<x:xmpmeta>Alice</x:xmpmeta>"));
        webp.chunks_mut().push(RiffChunk::new(CHUNK_XMP, xmp));
        webp.set_exif(Some(Bytes::from(test_images::exif_with_gps())));
        let input = webp.encoder().bytes().to_vec();
        assert!(contains(&input, b"EXIF") && contains(&input, b"VP8X"));

        let stripped = strip_metadata(&input, ImageFormat::WebP)?;
        for needle in [&b"EXIF"[..], b"XMP ", b"Alice", test_images::GPS_MARKER] {
            assert!(
                !contains(&stripped, needle),
                "{:?}",
                String::from_utf8_lossy(needle)
            );
        }
        assert_same_pixels(&input, &stripped)
    }

    #[test]
    fn webp_that_needs_vp8x_keeps_it_with_metadata_flags_cleared() -> TestResult {
        let picture = test_images::translucent(32, 32);
        let plain = test_images::encode_rgba(&picture, ImageFormat::WebP)?;
        let mut webp = WebP::from_bytes(Bytes::from(plain))?;
        let icc = RiffContent::Data(Bytes::from_static(b"not really a profile"));
        webp.chunks_mut()
            .push(RiffChunk::new(*b"ICCP", icc.clone()));
        webp.chunks_mut().push(RiffChunk::new(CHUNK_XMP, icc));
        webp.set_exif(Some(Bytes::from(test_images::exif_with_gps())));
        let input = webp.encoder().bytes().to_vec();

        let stripped = WebP::from_bytes(Bytes::from(strip_metadata(&input, ImageFormat::WebP)?))?;
        let flags = stripped
            .chunk_by_id(CHUNK_VP8X)
            .and_then(|chunk| chunk.content().data())
            .and_then(|data| data.first().copied());
        assert_eq!(flags.map(|flags| flags & 0b0000_1100), Some(0));
        assert!(stripped.chunk_by_id(CHUNK_EXIF).is_none());
        assert!(stripped.chunk_by_id(CHUNK_XMP).is_none());
        Ok(())
    }

    #[test]
    fn gif_loses_comments_and_keeps_animation() -> TestResult {
        let plain = test_images::animated_gif(24, 16, 3)?;
        let comment = b"\x21\xFE\x0Csecret place\x00";
        let input = test_images::insert_after_gif_header(&plain, comment);
        assert!(contains(&input, b"secret place"));

        let stripped = strip_metadata(&input, ImageFormat::Gif)?;
        assert!(!contains(&stripped, b"secret place"));
        assert!(contains(&stripped, b"NETSCAPE2.0"));
        assert_eq!(test_images::gif_frame_count(&stripped)?, 3);
        assert_same_pixels(&input, &stripped)
    }

    #[test]
    fn malformed_input_is_reported_per_format() -> TestResult {
        for format in crate::imaging::ACCEPTED_FORMATS {
            let err = strip_metadata(b"definitely not an image", format);
            let Err(MetadataError::Malformed {
                format: reported,
                detail,
            }) = err
            else {
                return Err(format!("{format}: expected an error, got {err:?}").into());
            };
            assert_eq!(reported, format);
            assert!(!detail.is_empty());
        }
        Ok(())
    }
}
