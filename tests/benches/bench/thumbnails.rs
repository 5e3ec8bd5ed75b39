//! The thumbnail job (three square crops: 64, 256 and 512 px) against Pillow, like for like:
//! both sides decode the JPEG at the same DCT scale (the one our rule picks, asked of Pillow's
//! `draft()` and checked on both sides), run as separate processes pinned to the same CPU, one
//! warm-up each, in interleaved rounds (ours, Pillow, ours, Pillow...), with wall and CPU time
//! per image, and the quality of each side's thumbnails against one reference.

mod quality;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use photos::imaging::{UploadLimits, make_thumbnails, thumbnail_decode_size};

use crate::python;
use crate::report::{Section, median};

const SIZES: [u32; 3] = [64, 256, 512];

/// The argument that makes the bench binary run [`child`].
pub const CHILD_ARG: &str = "thumbnails-child";

/// One side's run: images made, wall and CPU seconds (every thread of its process).
#[derive(Clone, Copy)]
struct Run {
    images: f64,
    seconds: f64,
    cpu_seconds: f64,
}

impl Run {
    fn from_json(line: &serde_json::Value) -> Self {
        let field = |name: &str| line[name].as_f64().expect(name);
        Self {
            images: field("iterations"),
            seconds: field("seconds"),
            cpu_seconds: field("cpu_seconds"),
        }
    }

    fn per_second(self) -> f64 {
        self.images / self.seconds
    }

    fn cpu_ms_per_image(self) -> f64 {
        self.cpu_seconds * 1000.0 / self.images
    }
}

/// `bench thumbnails-child PATH SECONDS`: our side, in its own (pinned) process: one untimed
/// warm-up, then thumbnail sets for at least SECONDS; prints one JSON line like Pillow's.
pub fn child() {
    let args: Vec<String> = std::env::args().collect();
    let position = args.iter().position(|a| a == CHILD_ARG).expect(CHILD_ARG);
    let path = &args[position + 1];
    let seconds: f64 = args[position + 2].parse().expect("seconds");
    let bytes = std::fs::read(path).expect("read the test photo");
    let limits = UploadLimits::default();
    make_thumbnails(&bytes, &SIZES, &limits).expect("warm-up");
    let (started, cpu_started) = (Instant::now(), crate::cpu::process_cpu().as_secs_f64());
    let mut iterations = 0u32;
    while iterations == 0 || started.elapsed().as_secs_f64() < seconds {
        let thumbnails = make_thumbnails(&bytes, &SIZES, &limits).expect("thumbnails");
        assert_eq!(thumbnails.len(), SIZES.len());
        iterations += 1;
    }
    let line = serde_json::json!({
        "iterations": iterations,
        "seconds": started.elapsed().as_secs_f64(),
        "cpu_seconds": crate::cpu::process_cpu().as_secs_f64() - cpu_started,
    });
    println!("{line}");
}

/// The CPU both sides are pinned to (the last one), if `taskset` is there to do it.
fn pinned_cpu() -> Option<usize> {
    let taskset = Command::new("taskset").arg("--version").output();
    taskset.ok().filter(|o| o.status.success())?;
    std::thread::available_parallelism()
        .ok()
        .map(|n| n.get() - 1)
}

/// A command pinned to `cpu` (when there is one).
fn pinned(program: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpu.to_string()).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn ours(photo: &Path, seconds: f64, cpu: Option<usize>) -> Run {
    let exe = std::env::current_exe().expect("the bench binary");
    let output = pinned(&exe, cpu)
        .arg(CHILD_ARG)
        .arg(photo)
        .arg(seconds.to_string())
        .output()
        .expect("run our side");
    assert!(output.status.success(), "our side failed: {output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("JSON line");
    Run::from_json(&serde_json::from_str(line).expect("JSON"))
}

/// What one photo is run with.
struct Setup<'a> {
    label: &'a str,
    photo: &'a Path,
    scale: u32,
    decoded: (u32, u32),
    seconds: f64,
    cpu: Option<usize>,
}

fn pillow(python: &Path, setup: &Setup<'_>, out: Option<&Path>) -> Result<Run, String> {
    let mut args: Vec<String> = ["pillow_thumbnails.py", "--sizes", "64,256,512"]
        .into_iter()
        .chain(["--quality", "85", "--seconds"])
        .map(String::from)
        .collect();
    args.push(setup.seconds.to_string());
    args.extend(["--draft-scale".to_owned(), setup.scale.to_string()]);
    if let Some(cpu) = setup.cpu {
        args.extend(["--cpu".to_owned(), cpu.to_string()]);
    }
    if let Some(out) = out {
        args.extend(["--out".to_owned(), out.display().to_string()]);
    }
    args.push(setup.photo.display().to_string());
    let lines = python::run_json(&python.to_path_buf(), &args, &[])?;
    let line = lines.first().ok_or("no output from Pillow")?;
    let decoded = (
        line["decoded_width"].as_u64(),
        line["decoded_height"].as_u64(),
    );
    let ours = (u64::from(setup.decoded.0), u64::from(setup.decoded.1));
    if decoded != (Some(ours.0), Some(ours.1)) {
        return Err(format!("Pillow decoded {decoded:?}, we decode {ours:?}"));
    }
    Ok(Run::from_json(line))
}

/// Interleaved rounds of both sides; `None` for Pillow when Python is not available.
fn rounds(
    setup: &Setup<'_>,
    python: Option<&Path>,
    count: usize,
    out: &Path,
) -> Vec<(Run, Option<Run>)> {
    (0..count)
        .map(|round| {
            let mine = ours(setup.photo, setup.seconds, setup.cpu);
            let theirs = python.map(|python| {
                let out = (round == 0).then_some(out);
                pillow(python, setup, out).expect("Pillow's side")
            });
            (mine, theirs)
        })
        .collect()
}

/// Median wall rate and median CPU milliseconds per image of a side.
fn medians(runs: &[Run]) -> (f64, f64) {
    let mut rates: Vec<f64> = runs.iter().map(|r| r.per_second()).collect();
    let mut cpu: Vec<f64> = runs.iter().map(|r| r.cpu_ms_per_image()).collect();
    (median(&mut rates), median(&mut cpu))
}

pub fn run(seconds: f64, round_count: usize, section: &mut Section) {
    let photos = [("3 MP", 2048, 1536), ("12 MP", 4000, 3000)];
    let dir = std::env::temp_dir().join(format!("bench-photos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let python = python::interpreter();
    if let Err(reason) = &python {
        section.add("Pillow", "skipped", reason);
    }
    let cpu = pinned_cpu();
    for (label, width, height) in photos {
        let bytes = support::images::phone_photo(width, height, 5).expect("test photo");
        let photo = dir.join(format!("{width}x{height}.jpg"));
        std::fs::write(&photo, &bytes).expect("write test photo");
        let decoded =
            thumbnail_decode_size(&bytes, &SIZES, &UploadLimits::default()).expect("decode size");
        let scale = width / decoded.0;
        assert_eq!(
            (width.div_ceil(scale), height.div_ceil(scale)),
            decoded,
            "our decode is 1/{scale} of {width}×{height}"
        );
        let setup = Setup {
            label,
            photo: &photo,
            scale,
            decoded,
            seconds,
            cpu,
        };
        let runs = rounds(&setup, python.as_deref().ok(), round_count, &dir);
        report_speed(&setup, &runs, section);
        if python.is_ok() {
            report_quality(&setup, &bytes, &dir, section);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The conditions every speed row carries.
fn conditions(setup: &Setup<'_>, rounds: usize) -> String {
    let (w, h) = setup.decoded;
    let pinning = setup
        .cpu
        .map_or("not pinned (no taskset)".to_owned(), |cpu| {
            format!("both pinned to CPU {cpu}")
        });
    format!(
        "decode at 1/{} = {w}×{h} ({} px) on both sides, {pinning}, sequential, one warm-up, \
         {rounds} interleaved rounds of {:.1} s, median",
        setup.scale,
        u64::from(w) * u64::from(h),
        setup.seconds
    )
}

fn report_speed(setup: &Setup<'_>, runs: &[(Run, Option<Run>)], section: &mut Section) {
    let label = setup.label;
    let conditions = conditions(setup, runs.len());
    let work = "decode + crop + 64/256/512 + JPEG q85";
    let mine: Vec<Run> = runs.iter().map(|(mine, _)| *mine).collect();
    let (rate, cpu_ms) = medians(&mine);
    section.add(
        format!("{label}: thumbnail job (scaled decode, fast_image_resize, SIMD JPEG)"),
        format!("{rate:.1} images/s"),
        format!("{work}; CPU {cpu_ms:.1} ms/image; {conditions}"),
    );
    let theirs: Vec<Run> = runs.iter().filter_map(|(_, theirs)| *theirs).collect();
    if theirs.is_empty() {
        return;
    }
    let (pillow_rate, pillow_cpu_ms) = medians(&theirs);
    section.add(
        format!("{label}: Pillow, draft() at the same scale"),
        format!("{pillow_rate:.1} images/s"),
        format!("{work}; CPU {pillow_cpu_ms:.1} ms/image; {conditions}"),
    );
    // CPU time is the like-for-like figure: on a shared machine a pinned process still waits
    // for its CPU, and that wait lands in wall time on whichever side it hits.
    let mut ratios: Vec<f64> = runs
        .iter()
        .filter_map(|(mine, theirs)| theirs.map(|t| t.cpu_ms_per_image() / mine.cpu_ms_per_image()))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let (low, high) = (ratios[0], ratios[ratios.len() - 1]);
    section.add(
        format!("{label}: speed ratio (ours / Pillow, same decode scale)"),
        format!("{:.2}", pillow_cpu_ms / cpu_ms),
        format!(
            "target > 1; Pillow's median CPU ms per image over ours, rounds {low:.2}–{high:.2}; \
             wall images/s ratio {:.2}; {conditions}",
            rate / pillow_rate
        ),
    );
}

/// PSNR of each side's thumbnails (as shipped, JPEG q85) against the reference.
fn report_quality(setup: &Setup<'_>, bytes: &[u8], dir: &Path, section: &mut Section) {
    let reference = quality::Reference::new(bytes, &SIZES);
    let ours = make_thumbnails(bytes, &SIZES, &UploadLimits::default()).expect("thumbnails");
    let stem = setup.photo.file_stem().expect("stem").to_string_lossy();
    let mut worst = f64::INFINITY;
    let mut cells = Vec::new();
    for (size, thumbnail) in SIZES.iter().zip(&ours) {
        let pillow_jpeg = std::fs::read(dir.join(format!("{stem}-{size}.jpg")));
        let pillow_jpeg = pillow_jpeg.expect("Pillow's thumbnail");
        let mine = reference.psnr(*size, &thumbnail.jpeg);
        let theirs = reference.psnr(*size, &pillow_jpeg);
        worst = worst.min(mine - theirs);
        cells.push(format!("{size} px: {mine:.2} / {theirs:.2}"));
    }
    section.add(
        format!("{}: quality, luma PSNR dB (ours / Pillow)", setup.label),
        cells.join(", "),
        format!(
            "target: ours ≥ Pillow's at every size (worst difference {worst:+.2} dB); each \
             side's JPEG q85 output against full decode + Lanczos3 from the full centred square \
             (`image` crate); decode at 1/{}",
            setup.scale
        ),
    );
}
