//! The thumbnail job's work (three square crops: 64, 256 and 512 px) per second on one
//! core, against Pillow's fastest path (DCT-scaled `draft()` decoding) on the same files.

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use shared::photos::imaging::{UploadLimits, make_thumbnails};

use crate::python;
use crate::report::Section;

const SIZES: [u32; 3] = [64, 256, 512];

/// A photo-like JPEG: gradients, shapes and sensor-like noise, quality 90.
fn test_photo(width: u32, height: u32) -> Vec<u8> {
    let base = support::images::photo(width, height, 5);
    let mut seed: u32 = 12345;
    let noisy = RgbImage::from_fn(width, height, |x, y| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = i16::from((seed >> 24) as u8 % 24) - 12;
        let Rgb(p) = *base.get_pixel(x, y);
        Rgb(p.map(|c| (i16::from(c) + noise).clamp(0, 255) as u8))
    });
    let mut bytes = Cursor::new(Vec::new());
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    noisy
        .write_with_encoder(encoder)
        .expect("encode test photo");
    bytes.into_inner()
}

/// Thumbnail sets per second, single-threaded, for at least `duration`.
fn ours(bytes: &[u8], duration: Duration) -> f64 {
    let limits = UploadLimits::default();
    let started = Instant::now();
    let mut done = 0u32;
    while started.elapsed() < duration || done == 0 {
        let thumbnails = make_thumbnails(bytes, &SIZES, &limits).expect("thumbnails");
        assert_eq!(thumbnails.len(), SIZES.len());
        done += 1;
    }
    f64::from(done) / started.elapsed().as_secs_f64()
}

pub fn run(duration: Duration, section: &mut Section) {
    let photos = [("3 MP", 2048, 1536), ("12 MP", 4000, 3000)];
    let dir = std::env::temp_dir().join(format!("bench-photos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let python = python::interpreter();
    for (label, width, height) in photos {
        let bytes = test_photo(width, height);
        let path = dir.join(format!("{width}x{height}.jpg"));
        std::fs::write(&path, &bytes).expect("write test photo");
        let rate = ours(&bytes, duration);
        let note = format!("{width}×{height} JPEG, one core, decode + crop + 3 sizes + JPEG q85");
        section.add(
            format!("{label}: thumbnail job (scaled decode, fast_image_resize, SIMD JPEG)"),
            format!("{rate:.1} images/s"),
            &note,
        );
        let Ok(python) = &python else {
            continue;
        };
        let seconds = duration.as_secs().max(1).to_string();
        for (variant, extra) in [
            ("draft(), its fastest path", None),
            ("full decode", Some("--plain")),
        ] {
            let mut args = vec![
                "pillow_thumbnails.py".into(),
                "--sizes".into(),
                "64,256,512".into(),
                "--quality".into(),
                "85".into(),
                "--seconds".into(),
                seconds.clone(),
            ];
            args.extend(extra.map(String::from));
            args.push(path.display().to_string());
            match python::run_json(python, &args, &[]) {
                Ok(lines) => {
                    let pillow = lines
                        .first()
                        .and_then(|l| l["images_per_second"].as_f64())
                        .unwrap_or(0.0);
                    section.add(
                        format!("{label}: Pillow, {variant}"),
                        format!("{pillow:.1} images/s"),
                        &note,
                    );
                    if extra.is_none() {
                        section.add(
                            format!("{label}: ratio (ours / Pillow draft)"),
                            format!("{:.2}", rate / pillow),
                            "target > 1",
                        );
                    }
                }
                Err(error) => section.add(format!("{label}: Pillow, {variant}"), "skipped", error),
            }
        }
    }
    if let Err(reason) = python {
        section.add("Pillow", "skipped", reason);
    }
    let _ = std::fs::remove_dir_all(dir);
}
