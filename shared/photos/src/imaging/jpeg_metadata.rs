//! Removing metadata from JPEGs by dropping marker segments, never touching the entropy-coded
//! data. `img-parts` stops parsing at the first scan and keeps the rest opaque, but metadata can
//! also sit between the scans of a progressive JPEG and after the end-of-image marker (the
//! secondary images of a multi-picture file carry their own EXIF), so this walks the whole file.

/// Why a JPEG could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub(crate) struct MalformedJpeg {
    what: &'static str,
    offset: usize,
}

const MARKER_PREFIX: u8 = 0xFF;
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const TEM: u8 = 0x01;
const RST0: u8 = 0xD0;
const RST7: u8 = 0xD7;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const APP15: u8 = 0xEF;
const COM: u8 = 0xFE;

/// Returns a copy of the JPEG without privacy metadata: EXIF and XMP (APP1), IPTC (APP13),
/// comments, and every other APPn except a JFIF header without thumbnail (APP0), the ICC
/// profile (APP2) and Adobe's colour-transform flag (APP14). Anything after the end-of-image marker is dropped too.
pub(crate) fn strip(bytes: &[u8]) -> Result<Vec<u8>, MalformedJpeg> {
    let mut out = Vec::with_capacity(bytes.len());
    walk(bytes, |kept| out.extend_from_slice(kept))?;
    Ok(out)
}

/// Checks that the JPEG's marker structure is intact up to its end-of-image marker. Our JPEG
/// decoder is lenient and fills a truncated scan with grey, so this is what catches a cut file.
pub(crate) fn check_complete(bytes: &[u8]) -> Result<(), MalformedJpeg> {
    match walk(bytes, |_| {})? {
        Ending::EndOfImage => Ok(()),
        Ending::EndOfData => Err(MalformedJpeg {
            what: "missing end-of-image marker",
            offset: bytes.len(),
        }),
    }
}

/// How the walk finished.
enum Ending {
    EndOfImage,
    EndOfData,
}

/// Walks every marker, handing `keep` the byte runs that are not metadata, in order.
fn walk(bytes: &[u8], mut keep: impl FnMut(&[u8])) -> Result<Ending, MalformedJpeg> {
    if !bytes.starts_with(&[MARKER_PREFIX, SOI]) {
        return Err(MalformedJpeg {
            what: "missing start-of-image marker",
            offset: 0,
        });
    }
    // Bytes from `kept_from` up to the current position are kept but not yet handed over, so
    // runs of entropy-coded data go out in one piece.
    let mut kept_from = 0;
    let mut pos = 2;
    while let Some(found) = find_marker_prefix(bytes, pos) {
        let Some(&marker) = bytes.get(found + 1) else {
            break;
        };
        match marker {
            // Inside scan data FF 00 is an escaped FF byte, RSTn are restart points, and a run
            // of FF is fill before a marker: none of them start a segment.
            0x00 | MARKER_PREFIX | TEM | SOI | RST0..=RST7 => pos = found + 1,
            EOI => {
                keep(&bytes[kept_from..found + 2]);
                return Ok(Ending::EndOfImage);
            }
            _ => {
                let end = segment_end(bytes, found)?;
                if is_metadata(marker, &bytes[found + 4..end]) {
                    keep(&bytes[kept_from..found]);
                    kept_from = end;
                }
                pos = end;
            }
        }
    }
    // No end-of-image marker: decoders tolerate that, and nothing follows to drop.
    keep(&bytes[kept_from..]);
    Ok(Ending::EndOfData)
}

fn find_marker_prefix(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    rest.iter()
        .position(|&byte| byte == MARKER_PREFIX)
        .map(|i| from + i)
}

/// The end of the segment whose marker is at `start`; its big-endian length counts itself.
fn segment_end(bytes: &[u8], start: usize) -> Result<usize, MalformedJpeg> {
    let length = bytes
        .get(start + 2..start + 4)
        .map(|len| usize::from(u16::from_be_bytes([len[0], len[1]])))
        .ok_or(MalformedJpeg {
            what: "truncated segment length",
            offset: start,
        })?;
    if length < 2 {
        return Err(MalformedJpeg {
            what: "segment length below 2",
            offset: start,
        });
    }
    let end = start + 2 + length;
    if end > bytes.len() {
        return Err(MalformedJpeg {
            what: "segment runs past the end of the file",
            offset: start,
        });
    }
    Ok(end)
}

fn is_metadata(marker: u8, contents: &[u8]) -> bool {
    match marker {
        // A JFXX APP0 holds a thumbnail, which may show the picture before it was cropped, and
        // so may a JFIF header (its thumbnail size bytes are not zero): only a bare JFIF
        // header stays (decoders do not need it; it is kept as found when it holds nothing).
        APP0 => !is_bare_jfif(contents),
        // APP2 also carries multi-picture indexes and FlashPix data; only the profile stays.
        APP2 => !contents.starts_with(b"ICC_PROFILE\0"),
        APP14 => !contents.starts_with(b"Adobe"),
        APP1..=APP15 | COM => true,
        _ => false,
    }
}

/// A JFIF header without a thumbnail: `JFIF\0`, version, units, densities, then a 0x0
/// thumbnail size and nothing after.
fn is_bare_jfif(contents: &[u8]) -> bool {
    contents.starts_with(b"JFIF\0") && contents.get(12..) == Some(&[0, 0][..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, contents: &[u8]) -> Vec<u8> {
        let length = u16::try_from(contents.len() + 2).unwrap_or(u16::MAX);
        let mut segment = vec![MARKER_PREFIX, marker];
        segment.extend_from_slice(&length.to_be_bytes());
        segment.extend_from_slice(contents);
        segment
    }

    /// A structurally plausible JPEG: enough for the walker, which never decodes.
    fn jpeg(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut jpeg = vec![MARKER_PREFIX, SOI];
        for part in parts {
            jpeg.extend_from_slice(part);
        }
        jpeg
    }

    #[test]
    fn keeps_image_segments_and_drops_metadata_everywhere() -> Result<(), MalformedJpeg> {
        let jfif = segment(APP0, b"JFIF\0\x01\x02\0\0\x01\0\x01\0\0");
        // A JFIF header carrying a 1x1 thumbnail (3 bytes of RGB) is dropped whole.
        let jfif_thumbnail = segment(APP0, b"JFIF\0\x01\x02\0\0\x01\0\x01\x01\x01RGB");
        let exif = segment(APP1, b"Exif\0\0GPS");
        let icc = segment(APP2, b"ICC_PROFILE\0\x01\x01profile");
        let mpf = segment(APP2, b"MPF\0index");
        let adobe = segment(APP14, b"Adobe\0\x64");
        let comment = segment(COM, b"shot at home");
        let dqt = segment(0xDB, &[0; 65]);
        let sos = segment(0xDA, &[1, 1, 0, 0, 63, 0]);
        // Entropy data with an escaped FF, a restart marker and fill bytes.
        let scan = vec![0x12, 0xFF, 0x00, 0x34, 0xFF, RST0, 0x56, 0xFF, 0xFF];
        let iptc = segment(0xED, b"Photoshop 3.0\0iptc");
        let eoi = vec![MARKER_PREFIX, EOI];
        let trailing = b"\xFF\xD8 secondary image with its own EXIF".to_vec();
        let input = jpeg(&[
            jfif.clone(),
            jfif_thumbnail,
            exif,
            icc.clone(),
            mpf,
            adobe.clone(),
            comment,
            dqt.clone(),
            sos.clone(),
            scan.clone(),
            iptc,
            sos.clone(),
            scan.clone(),
            eoi.clone(),
            trailing,
        ]);
        let expected = jpeg(&[
            jfif,
            icc,
            adobe,
            dqt,
            sos.clone(),
            scan.clone(),
            sos,
            scan,
            eoi,
        ]);
        assert_eq!(strip(&input)?, expected);
        Ok(())
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let input = jpeg(&[segment(APP1, b"Exif\0\0"), segment(0xDB, &[0; 8])]);
        for cut in 0..input.len() {
            // Cuts inside a segment fail; cuts between segments end the walk cleanly.
            let _ = strip(&input[..cut]);
        }
        assert!(strip(b"not a jpeg").is_err());
        assert!(strip(&jpeg(&[vec![MARKER_PREFIX, APP1, 0x00, 0x01]])).is_err());
        assert!(strip(&jpeg(&[vec![MARKER_PREFIX, APP1, 0x00, 0x40, 1, 2]])).is_err());
    }

    #[test]
    fn completeness_needs_the_end_of_image_marker() {
        let complete = jpeg(&[segment(0xDB, &[0; 8]), vec![MARKER_PREFIX, EOI]]);
        assert_eq!(check_complete(&complete), Ok(()));
        assert!(check_complete(&complete[..complete.len() - 2]).is_err());
        assert!(check_complete(&complete[..complete.len() - 1]).is_err());
    }
}
