//! Property tests of the upload checks on hostile files: arbitrary bytes, mutations of small
//! valid images of every accepted format, and headers that declare any dimensions. Sniffing,
//! checking, stripping metadata, fingerprinting and making thumbnails must each return a
//! result or an error, never panic, and never allocate more than the pixel limit and the
//! file's size justify.

#![allow(clippy::unwrap_used)]

mod seeds;

use proptest::collection::vec;
use proptest::prelude::*;

use self::seeds::{SEEDS, declare_dimensions, fix_png_checksums, lossy_webp};
use super::{
    Fingerprint, ImageFormat, UploadLimits, check_upload, make_thumbnails, strip_metadata,
};
use testkit::mutation::{mutated, mutation, mutations};
use testkit::{cases, peak_alloc::peak_bytes_during};

/// Small, so that an image declaring the most pixels allowed still decodes quickly and the
/// allocation bound below is tight.
const LIMITS: UploadLimits = UploadLimits {
    max_pixels: 1_000_000,
};

/// Cases per property unless `PROPTEST_CASES` says otherwise. Decoding is the slow part, so
/// fewer than for the envelope: the six properties take about eight seconds together in a
/// debug build on two cores.
const CASES: u32 = 1_000;

/// The most a decode (`check_upload` or `Fingerprint::of_image`) may allocate for a file of
/// `len` bytes under [`LIMITS`].
///
/// Per allowed pixel: the widest decoded pixel is 8 bytes (16-bit RGBA), and fingerprinting
/// holds it beside a rotated copy (EXIF orientation, 8 bytes), then converts it to 8-bit RGBA
/// (4) and that to RGB (3) before shrinking: 8 + 8 + 4 + 3 = 23 bytes even if all were held at
/// once, so 24.
/// Per byte of the file: the JPEG decoder reads the file into a `Vec` that may double as it
/// grows (2), and the WebP orientation reader copies it (1): 4.
/// Whatever the file and the image: the lossy WebP decoder allocates a partition buffer of
/// the size a 24-bit field declares before reading it, up to 16 MiB (the one allocation these
/// tests found that a small file can inflate; the format caps it); and 2 MiB for zlib
/// windows, Huffman tables, the pHash's DCT plans and the decoder's 1 MiB slack above a
/// declared image's size.
fn decode_alloc_bound(len: usize) -> usize {
    let pixels = usize::try_from(LIMITS.max_pixels).unwrap();
    24 * pixels + 4 * len + (16 << 20) + (2 << 20)
}

/// The most `strip_metadata` may allocate: PNG and WebP copy the file into a buffer
/// `img-parts` cuts into chunks, gather the output and copy it into a `Vec` (3 × the file);
/// JPEG and GIF only write the output (1 ×); plus the list of chunks.
fn strip_alloc_bound(len: usize) -> usize {
    4 * len + (64 << 10)
}

/// Runs every upload check on `bytes`, checking each one's allocation, and that they agree.
fn check_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
    let sniffed = ImageFormat::sniff(bytes);
    let (checked, peak) = peak_bytes_during(|| check_upload(bytes, &LIMITS));
    prop_assert!(
        peak <= decode_alloc_bound(bytes.len()),
        "check_upload allocated {peak} bytes"
    );
    if let Ok(checked) = checked {
        prop_assert_eq!(Some(checked.format), sniffed);
        prop_assert!(u64::from(checked.width) * u64::from(checked.height) <= LIMITS.max_pixels);
    }
    if let Some(format) = sniffed {
        let (_, peak) = peak_bytes_during(|| strip_metadata(bytes, format));
        prop_assert!(
            peak <= strip_alloc_bound(bytes.len()),
            "strip_metadata allocated {peak} bytes"
        );
    }
    let (fingerprint, peak) = peak_bytes_during(|| Fingerprint::of_image(bytes, &LIMITS));
    prop_assert!(
        peak <= decode_alloc_bound(bytes.len()),
        "fingerprinting allocated {peak} bytes"
    );
    // Fingerprinting decodes the same way, so whatever passes the check can be fingerprinted.
    if checked.is_ok() {
        prop_assert!(fingerprint.is_ok(), "{fingerprint:?}");
    }
    Ok(())
}

/// A seed's index, biased to none in particular; shrinking goes towards the first (JPEG).
fn seed() -> impl Strategy<Value = usize> {
    0..SEEDS.len()
}

/// Dimensions a header might claim: tiny, zero, around the limit, or anything its field holds.
fn dimension() -> impl Strategy<Value = u32> {
    prop_oneof![
        0..=4u32,
        900..=1_100u32,
        0..=70_000u32,
        any::<u32>(),
        Just(u32::MAX)
    ]
}

/// A width and height: each drawn alone, or from a pixel count spread evenly on a log scale
/// from 1 to 10^10 and an aspect ratio, so every order of magnitude around the limit (and
/// around the allocation budget) is as likely as the next.
fn dimensions() -> impl Strategy<Value = (u32, u32)> {
    let spread = (0.0..10.0f64, -3.0..3.0f64).prop_map(|(log_pixels, log_aspect)| {
        let width = (10f64.powf(log_pixels) * 10f64.powf(log_aspect)).sqrt();
        let height = 10f64.powf(log_pixels) / width.max(1.0);
        // Float to integer casts saturate, which is what a header field of any width wants.
        (width as u32, height as u32)
    });
    prop_oneof![(dimension(), dimension()), spread]
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn arbitrary_bytes_never_panic_the_upload_checks(bytes in vec(any::<u8>(), 0..2048)) {
        check_everything(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_behind_a_format_signature_never_panic_the_upload_checks(
        magic in prop_oneof![
            Just(&b"\xFF\xD8\xFF"[..]),
            Just(&b"\x89PNG\r\n\x1a\n"[..]),
            Just(&b"GIF89a"[..]),
            Just(&b"RIFF\0\0\0\0WEBP"[..]),
        ],
        tail in vec(any::<u8>(), 0..2048),
    ) {
        check_everything(&[magic, &tail].concat())?;
    }

    #[test]
    fn mutated_images_pass_or_fail_the_upload_checks_cleanly(
        seed in seed(),
        edits in mutations(8),
        fix_checksums in any::<bool>(),
    ) {
        let mut bytes = mutated(&SEEDS[seed].bytes, &edits);
        if fix_checksums {
            fix_png_checksums(&mut bytes);
        }
        check_everything(&bytes)?;
    }

    #[test]
    fn images_declaring_any_dimensions_fail_cleanly_within_the_pixel_limit(
        seed in seed(),
        which in 0..8usize,
        declared in dimensions(),
        edits in vec(mutation(), 0..3),
    ) {
        let mut bytes = SEEDS[seed].bytes.clone();
        declare_dimensions(&mut bytes, which, declared.0, declared.1);
        check_everything(&mutated(&bytes, &edits))?;
    }

    #[test]
    fn mutated_images_never_panic_the_thumbnail_maker(
        seed in seed(),
        edits in mutations(8),
        which in 0..8usize,
        declared in dimensions(),
    ) {
        // The worker's path: the JPEG scaled decoder is another decoder of the same bytes.
        let mut bytes = mutated(&SEEDS[seed].bytes, &edits);
        declare_dimensions(&mut bytes, which, declared.0, declared.1);
        let (thumbnails, peak) = peak_bytes_during(|| make_thumbnails(&bytes, &[64, 16], &LIMITS));
        prop_assert!(
            peak <= decode_alloc_bound(bytes.len()),
            "make_thumbnails allocated {peak} bytes"
        );
        if check_upload(&bytes, &LIMITS).is_ok() {
            prop_assert!(thumbnails.is_ok(), "{thumbnails:?}");
        }
    }

    #[test]
    fn lossy_webp_of_any_size_and_data_never_panics_the_upload_checks(
        width in 0..=0x3FFFu16,
        height in 0..=0x3FFFu16,
        body in vec(any::<u8>(), 0..1024),
    ) {
        check_everything(&lossy_webp(width, height, &body))?;
    }
}

#[test]
fn a_gif_frame_far_larger_than_its_canvas_is_refused_without_allocating_for_it() {
    // Found by `images_declaring_any_dimensions_fail_cleanly_within_the_pixel_limit`: the
    // canvas passed the pixel check, and the GIF decoder then allocated 92 MB for a
    // 4300 x 4300 first frame before finding its data missing.
    let gif = SEEDS.iter().find(|seed| seed.name == "gif").unwrap();
    let mut bytes = gif.bytes.clone();
    declare_dimensions(&mut bytes, 1, 4_300, 4_300);
    let (result, peak) = peak_bytes_during(|| check_upload(&bytes, &LIMITS));
    let message = "decoding this 24x16 image would need more memory than allowed";
    assert_eq!(result, Err(super::DecodeError::Corrupt(message.into())));
    assert!(peak < 1 << 20, "{peak}");
    check_everything(&bytes).unwrap();
}

#[test]
fn a_webp_exif_chunk_declaring_gigabytes_is_not_allocated() {
    // Found by `mutated_images_pass_or_fail_the_upload_checks_cleanly`: two bytes inserted
    // before the EXIF chunk of the extended WebP shifted its size field, and fingerprinting
    // allocated 788 MB reading the orientation. Here the size says 4 GiB outright.
    let webp = SEEDS
        .iter()
        .find(|seed| seed.name == "extended webp")
        .unwrap();
    let mut bytes = webp.bytes.clone();
    let exif = bytes.windows(4).position(|id| id == b"EXIF").unwrap();
    bytes[exif + 4..exif + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let (fingerprint, peak) = peak_bytes_during(|| Fingerprint::of_image(&bytes, &LIMITS));
    assert!(fingerprint.is_ok(), "{fingerprint:?}");
    assert!(peak < 1 << 20, "{peak}");
    check_everything(&bytes).unwrap();
}

#[test]
fn a_lossy_webp_partition_declaring_16_mib_costs_no_more_than_that() {
    // Found by `mutated_images_pass_or_fail_the_upload_checks_cleanly`: a 103-byte lossy WebP
    // whose frame header declares a partition of almost 16 MiB, which the decoder allocates
    // before it finds the data missing (about 15 MB here, with image-webp 0.2). The 24-bit
    // field caps it, hence its own term in the bound rather than a fix in our code.
    let bytes: [u8; 103] = [
        0x52, 0x49, 0x46, 0x46, 0x56, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38,
        0x20, 0x4A, 0x00, 0x00, 0x01, 0x10, 0x08, 0x00, 0x9D, 0x01, 0x2A, 0x18, 0x00, 0x10, 0x00,
        0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5B, 0x5A, 0x5A, 0x5A,
        0x5A, 0x4A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A,
        0x5A, 0x5A, 0x80, 0x00, 0x00, 0x73, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A,
        0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0xFD,
        0xC9, 0x79, 0x68, 0x36, 0xE3, 0xA5, 0xE3, 0x99, 0x5A, 0x4A, 0x5A, 0x5A, 0x5A,
    ];
    let result = check_upload(&bytes, &LIMITS);
    assert!(
        matches!(result, Err(super::DecodeError::Corrupt(_))),
        "{result:?}"
    );
    check_everything(&bytes).unwrap();
}
