//! The image formats we accept, identified from the bytes themselves: a declared content type
//! or file name is whatever the client chose to send, so it is never trusted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An image format the photo domain accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// JPEG (JFIF or Exif).
    Jpeg,
    /// PNG, including APNG.
    Png,
    /// GIF 87a or 89a, possibly animated.
    Gif,
    /// WebP, lossy or lossless.
    WebP,
}

/// Every accepted format, for iteration in tests and listings.
pub const ACCEPTED_FORMATS: [ImageFormat; 4] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Gif,
    ImageFormat::WebP,
];

impl ImageFormat {
    /// The usual file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::WebP => "webp",
        }
    }

    /// The MIME type to serve the image with.
    pub fn mime(&self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
        }
    }

    /// The lowercase name used by `Display`, `FromStr` and serde.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::WebP => "webp",
        }
    }

    /// Detects an accepted format from the magic bytes at the start of `bytes`.
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else {
            None
        }
    }

    /// The `image` crate's name for this format, to pin its decoder to what we sniffed.
    pub(crate) fn to_image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Gif => image::ImageFormat::Gif,
            Self::WebP => image::ImageFormat::WebP,
        }
    }
}

/// Names a common image or document format we do not accept, so the rejection can say what was
/// sent instead of a vague "not an image".
pub(crate) fn sniff_foreign(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 8] = [
        (b"BM", "BMP"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"%PDF", "PDF"),
        (b"8BPS", "Photoshop (PSD)"),
        (b"\0\0\x01\0", "ICO"),
        (b"\xFF\x0A", "JPEG XL"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "JPEG XL"),
    ];
    if let Some((_, name)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(name);
    }
    if let Some(name) = iso_media_brand(bytes) {
        return Some(name);
    }
    let head = &bytes[..bytes.len().min(512)];
    head.windows(4)
        .any(|window| window.eq_ignore_ascii_case(b"<svg"))
        .then_some("SVG")
}

/// HEIC and AVIF are ISO media files: an `ftyp` box whose major brand names the codec.
fn iso_media_brand(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    match bytes.get(8..12)? {
        b"avif" | b"avis" => Some("AVIF"),
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
            Some("HEIC")
        }
        _ => None,
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The reason a string is not one of our format names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown image format {0:?}; expected one of jpeg, png, gif, webp")]
pub struct UnknownFormat(pub String);

impl FromStr for ImageFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ACCEPTED_FORMATS
            .into_iter()
            .find(|format| format.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_from_str_and_serde()
    -> Result<(), Box<dyn std::error::Error>> {
        for format in ACCEPTED_FORMATS {
            assert_eq!(format.to_string().parse::<ImageFormat>()?, format);
            let json = serde_json::to_string(&format)?;
            assert_eq!(json, format!("\"{format}\""));
            assert_eq!(serde_json::from_str::<ImageFormat>(&json)?, format);
        }
        assert_eq!(ImageFormat::WebP.to_string(), "webp");
        assert_eq!(ImageFormat::Jpeg.extension(), "jpg");
        assert_eq!(ImageFormat::Gif.mime(), "image/gif");
        assert!("JPEG".parse::<ImageFormat>().is_err());
        assert!("bmp".parse::<ImageFormat>().is_err());
        Ok(())
    }

    #[test]
    fn sniffs_magic_bytes_only() {
        assert_eq!(
            ImageFormat::sniff(b"\xFF\xD8\xFF\xE0rest"),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(ImageFormat::Png)
        );
        assert_eq!(ImageFormat::sniff(b"GIF89a..."), Some(ImageFormat::Gif));
        assert_eq!(ImageFormat::sniff(b"GIF87a..."), Some(ImageFormat::Gif));
        assert_eq!(
            ImageFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::WebP)
        );
        assert_eq!(ImageFormat::sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(ImageFormat::sniff(b"BM...."), None);
        assert_eq!(ImageFormat::sniff(b""), None);
        assert_eq!(ImageFormat::sniff(b"\xFF\xD8"), None);
    }

    #[test]
    fn names_foreign_formats() {
        assert_eq!(sniff_foreign(b"BM\x36\x00"), Some("BMP"));
        assert_eq!(sniff_foreign(b"II*\0\x08"), Some("TIFF"));
        assert_eq!(sniff_foreign(b"%PDF-1.7"), Some("PDF"));
        assert_eq!(sniff_foreign(b"\0\0\0\x18ftypheic\0\0\0\0"), Some("HEIC"));
        assert_eq!(sniff_foreign(b"\0\0\0\x1cftypavif\0\0\0\0"), Some("AVIF"));
        assert_eq!(
            sniff_foreign(b"<?xml version=\"1.0\"?>\n<svg xmlns="),
            Some("SVG")
        );
        assert_eq!(sniff_foreign(b"hello world"), None);
    }
}
