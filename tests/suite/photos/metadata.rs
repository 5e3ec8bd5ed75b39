//! What is served of an upload keeps only what rendering needs: for every format, a GPS tag,
//! an XMP packet, a private chunk and an embedded thumbnail are gone from the served copy.

use image::ImageFormat;
use img_parts::jpeg::{Jpeg, JpegSegment};
use img_parts::png::{Png, PngChunk};
use img_parts::riff::{RiffChunk, RiffContent};
use img_parts::webp::WebP;
use img_parts::{Bytes, ImageEXIF};
use photos::ImageState;

use super::fixtures::{jpeg, photo, png, with_gps_exif};
use crate::app::{Options, spawn_app};

/// Marks planted in each kind of metadata; none may be served.
const GPS: &[u8] = b"GPS-46.2N";
const XMP: &[u8] = b"<x:xmpmeta>secret-xmp-owner</x:xmpmeta>";
const PRIVATE: &[u8] = b"c2pa-private-manifest";
/// The pixels of a 2x2 embedded thumbnail (12 bytes of RGB).
const THUMBNAIL: &[u8] = b"THUMBNAILPIX";

/// EXIF (TIFF, little endian) whose only IFD entry is an ASCII tag holding [`GPS`].
fn exif() -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    let count = u32::try_from(GPS.len()).unwrap();
    tiff.extend([1, 0, 0x0e, 0x01, 2, 0]); // one entry: ImageDescription, ASCII
    tiff.extend(count.to_le_bytes());
    tiff.extend(26u32.to_le_bytes()); // its value's offset, after the IFD
    tiff.extend([0, 0, 0, 0]);
    tiff.extend(GPS);
    tiff
}

fn png_with_everything() -> Vec<u8> {
    let mut image = Png::from_bytes(png(&photo(320, 240, 21)).into()).unwrap();
    let chunks = [
        (*b"eXIf", exif()),
        (
            *b"iTXt",
            [b"XML:com.adobe.xmp\0\0\0\0\0".as_slice(), XMP].concat(),
        ),
        (*b"caBX", PRIVATE.to_vec()),
        (*b"prVt", THUMBNAIL.to_vec()),
    ];
    for (kind, contents) in chunks {
        image
            .chunks_mut()
            .insert(1, PngChunk::new(kind, Bytes::from(contents)));
    }
    image.encoder().bytes().to_vec()
}

fn webp_with_everything() -> Vec<u8> {
    let plain = support::images::encode(&photo(320, 240, 22), ImageFormat::WebP).unwrap();
    let mut image = WebP::from_bytes(plain.into()).unwrap();
    // Setting EXIF makes the file the extended format, which may hold other chunks.
    image.set_exif(Some(Bytes::from(exif())));
    for (id, contents) in [(*b"XMP ", XMP), (*b"C2PA", PRIVATE), (*b"THMB", THUMBNAIL)] {
        let chunk = RiffChunk::new(id, RiffContent::Data(Bytes::from_static(contents)));
        image.chunks_mut().push(chunk);
    }
    image.encoder().bytes().to_vec()
}

fn jpeg_with_everything() -> Vec<u8> {
    let with_exif = with_gps_exif(&jpeg(&photo(320, 240, 23)));
    let mut image = Jpeg::from_bytes(with_exif.into()).unwrap();
    image.set_exif(Some(Bytes::from(exif())));
    // A JFIF header with a 2x2 thumbnail, an XMP packet, and a C2PA (JUMBF, APP11) segment.
    let jfif = [
        b"JFIF\0\x01\x02\0\0\x01\0\x01\x02\x02".as_slice(),
        THUMBNAIL,
    ]
    .concat();
    let xmp = [b"http://ns.adobe.com/xap/1.0/\0".as_slice(), XMP].concat();
    let segments = [(0xE0, jfif), (0xE1, xmp), (0xEB, PRIVATE.to_vec())];
    image.segments_mut().retain(|s| s.marker() != 0xE0);
    for (marker, contents) in segments.into_iter().rev() {
        let segment = JpegSegment::new_with_contents(marker, Bytes::from(contents));
        image.segments_mut().insert(0, segment);
    }
    image.encoder().bytes().to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_served_copy_of_every_format_keeps_no_gps_xmp_private_chunk_or_thumbnail() {
    let app = spawn_app("metadata-allowlist", Options::default()).await;
    let _worker = app.start_worker();
    let uploads = [
        ("png", png_with_everything()),
        ("webp", webp_with_everything()),
        ("jpeg", jpeg_with_everything()),
    ];
    for (format, bytes) in uploads {
        for mark in [GPS, XMP, PRIVATE, THUMBNAIL] {
            assert!(contains(&bytes, mark), "the {format} upload lacks a mark");
        }
        let image_id = app.accepted_upload(format, bytes).await;
        let status = app.wait_for(image_id, ImageState::Ready).await;
        let served = app.get_bytes(&status.original_url.unwrap()).await;
        for mark in [GPS, XMP, PRIVATE, THUMBNAIL] {
            assert!(
                !contains(&served, mark),
                "the served {format} keeps {}",
                String::from_utf8_lossy(mark)
            );
        }
        image::load_from_memory(&served).unwrap();
    }
}
