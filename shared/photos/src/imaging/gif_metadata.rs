//! Removing metadata from GIFs. No crate we depend on rewrites GIF blocks without re-encoding,
//! so this walks the block structure itself: header, logical screen descriptor, global colour
//! table, then extension, image and trailer blocks, each followed by length-prefixed
//! sub-blocks. Every read is bounds-checked; malformed input is an error, never a panic.

/// Which part of the GIF structure was broken, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub(crate) struct MalformedGif {
    what: String,
    offset: usize,
}

const EXTENSION_INTRODUCER: u8 = 0x21;
const IMAGE_SEPARATOR: u8 = 0x2C;
const TRAILER: u8 = 0x3B;

const GRAPHIC_CONTROL_LABEL: u8 = 0xF9;
const PLAIN_TEXT_LABEL: u8 = 0x01;
const APPLICATION_LABEL: u8 = 0xFF;

/// Application extensions that only control looping; every other one (XMP, ICC, editor data)
/// is metadata.
const KEPT_APPLICATIONS: [&[u8; 11]; 2] = [b"NETSCAPE2.0", b"ANIMEXTS1.0"];

/// Returns a copy of the GIF without comment extensions and non-looping application
/// extensions, and without anything after the trailer.
///
/// A file that ends cleanly between blocks but lacks its trailer gets one: browsers accept
/// such files, and a cut inside a block is still reported as malformed.
pub(crate) fn strip(bytes: &[u8]) -> Result<Vec<u8>, MalformedGif> {
    let mut input = Reader { bytes, pos: 0 };
    let mut out = Vec::with_capacity(bytes.len());
    let header = input.take(6, "GIF header")?;
    if header != b"GIF87a" && header != b"GIF89a" {
        return Err(input.malformed_at(0, "not a GIF header"));
    }
    out.extend_from_slice(header);
    let screen = input.take(7, "logical screen descriptor")?;
    out.extend_from_slice(screen);
    out.extend_from_slice(input.take(colour_table_len(screen[4]), "global colour table")?);
    while !input.is_at_end() {
        match input.byte("block introducer")? {
            TRAILER => break,
            IMAGE_SEPARATOR => copy_image(&mut input, &mut out)?,
            EXTENSION_INTRODUCER => copy_extension_unless_metadata(&mut input, &mut out)?,
            other => {
                let offset = input.pos - 1;
                return Err(
                    input.malformed_at(offset, &format!("unknown block type 0x{other:02X}"))
                );
            }
        }
    }
    out.push(TRAILER);
    Ok(out)
}

/// Image descriptor, optional local colour table, LZW code size and data sub-blocks.
fn copy_image(input: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), MalformedGif> {
    let descriptor = input.take(9, "image descriptor")?;
    let colour_table = input.take(colour_table_len(descriptor[8]), "local colour table")?;
    let lzw_code_size = input.byte("LZW code size")?;
    let data = input.sub_blocks("image data")?;
    out.push(IMAGE_SEPARATOR);
    out.extend_from_slice(descriptor);
    out.extend_from_slice(colour_table);
    out.push(lzw_code_size);
    out.extend_from_slice(data);
    Ok(())
}

fn copy_extension_unless_metadata(
    input: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), MalformedGif> {
    let label = input.byte("extension label")?;
    let body = input.sub_blocks("extension")?;
    let keep = match label {
        GRAPHIC_CONTROL_LABEL | PLAIN_TEXT_LABEL => true,
        // The first sub-block of an application extension is its 11-byte identifier.
        APPLICATION_LABEL => body
            .get(1..12)
            .is_some_and(|id| body[0] == 11 && KEPT_APPLICATIONS.iter().any(|kept| id == *kept)),
        // Comments, and extensions no decoder knows, are dropped.
        _ => false,
    };
    if keep {
        out.push(EXTENSION_INTRODUCER);
        out.push(label);
        out.extend_from_slice(body);
    }
    Ok(())
}

/// The packed field's top bit says a colour table follows; its low three bits give its size.
fn colour_table_len(packed: u8) -> usize {
    if packed & 0x80 == 0 {
        0
    } else {
        3 << ((packed & 0x07) + 1)
    }
}

/// A bounds-checked cursor over the input.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn is_at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], MalformedGif> {
        let end = self.pos.checked_add(len);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(slice) => {
                self.pos += len;
                Ok(slice)
            }
            None => Err(self.malformed_at(self.pos, &format!("truncated {what}"))),
        }
    }

    fn byte(&mut self, what: &str) -> Result<u8, MalformedGif> {
        Ok(self.take(1, what)?[0])
    }

    /// Skips a run of sub-blocks and returns it whole, terminator included.
    fn sub_blocks(&mut self, what: &str) -> Result<&'a [u8], MalformedGif> {
        let start = self.pos;
        loop {
            let len = self.byte(what)?;
            if len == 0 {
                return Ok(&self.bytes[start..self.pos]);
            }
            self.take(usize::from(len), what)?;
        }
    }

    fn malformed_at(&self, offset: usize, what: &str) -> MalformedGif {
        MalformedGif {
            what: what.to_owned(),
            offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 GIF with a two-colour global table, built by hand so every block is known.
    fn tiny_gif(extensions: &[u8]) -> Vec<u8> {
        let mut gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00".to_vec();
        gif.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
        gif.extend_from_slice(extensions);
        gif.extend_from_slice(b"\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00");
        gif.push(TRAILER);
        gif
    }

    #[test]
    fn drops_comments_and_foreign_applications_but_keeps_looping() -> Result<(), MalformedGif> {
        let comment = b"\x21\xFE\x05hello\x00";
        let xmp = b"\x21\xFF\x0BXMP DataXMP\x03abc\x00";
        let looping = b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00";
        let control = b"\x21\xF9\x04\x00\x0A\x00\x00\x00";
        let input = tiny_gif(&[&comment[..], xmp, looping, control].concat());
        let stripped = strip(&input)?;
        assert_eq!(stripped, tiny_gif(&[&looping[..], control].concat()));
        Ok(())
    }

    #[test]
    fn drops_trailing_bytes_and_adds_a_missing_trailer() -> Result<(), MalformedGif> {
        let clean = tiny_gif(b"");
        let mut with_junk = clean.clone();
        with_junk.extend_from_slice(b"secret appended data");
        assert_eq!(strip(&with_junk)?, clean);
        assert_eq!(strip(&clean[..clean.len() - 1])?, clean);
        Ok(())
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let input = tiny_gif(b"\x21\xFE\x05hello\x00");
        // Cutting right after the colour table (19) or the comment (28) is a clean end between
        // blocks; anywhere else must fail.
        let clean_ends = [19, 28];
        for cut in 0..input.len() - 1 {
            let result = strip(&input[..cut]);
            assert_eq!(
                result.is_ok(),
                clean_ends.contains(&cut),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn reports_unknown_blocks_with_their_offset() {
        let mut input = tiny_gif(b"");
        let trailer = input.len() - 1;
        input[trailer] = 0x99;
        let err = strip(&input).map(|_| ()).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown block type 0x99 at byte 34"));
    }
}
