"""Pillow baseline of the thumbnail benchmark: the Rust thumbnail job's work, done with Pillow.

For each input JPEG this repeats, on one thread, what the Rust worker does per upload: decode,
apply the EXIF orientation, take the centred square of the shorter side, resize it to every
size (square) with a Lanczos filter and encode each as a baseline JPEG, into memory. It uses
Pillow's fastest correct path, the one ``Image.thumbnail()`` takes:

* ``draft()`` makes libjpeg decode at 1/2, 1/4 or 1/8 scale (DCT scaling), keeping at least
  ``reducing_gap`` × the largest size on the shorter side; ``thumbnail()`` asks for
  ``size * reducing_gap`` the same way, and its default gap is 2.0.
* ``resize(..., box=square, reducing_gap=2.0)`` crops without a copy and, for the small sizes,
  first box-reduces by an integer factor so the Lanczos pass shrinks by at most ~2×
  (``thumbnail()`` passes its ``reducing_gap`` to ``resize()`` likewise). The filter is
  LANCZOS (Lanczos3, as in the Rust worker) rather than ``thumbnail()``'s default BICUBIC.

``--plain`` skips ``draft()`` (full-size decode), for reference; the rest is unchanged.
``--draft-scale N`` (1, 2, 4 or 8) makes ``draft()`` decode at exactly 1/N of the stored size
instead, so the benchmark can give Pillow the same decode scale as the Rust side (1 = full).
``--cpu N`` pins the process to that CPU first. ``--out DIR`` writes the warm-up run's
thumbnails as ``<stem>-<size>.jpg``, as shipped, for the quality comparison.

    python pillow_thumbnails.py --sizes 64,256,512 --quality 85 --seconds 5 IMAGE...

prints one JSON line per input: file, width, height (as stored), decoded_width and
decoded_height (what the decoder produced, before orientation), iterations, seconds (wall),
cpu_seconds (``time.process_time()``, every thread of the process), images_per_second.
"""

import argparse
import io
import json
import os
import time
from pathlib import Path

from PIL import ExifTags, Image, ImageOps

REDUCING_GAP = 2.0  # Image.thumbnail()'s default


def draft(image, sizes, draft_scale):
    """Asks libjpeg for a DCT-scaled decode; returns the size it will decode to."""
    if draft_scale is None:
        # draft() picks the largest 1/scale whose result is still >= this on both sides, so
        # the shorter side (the square's) keeps at least REDUCING_GAP x the largest size.
        wanted = int(max(sizes) * REDUCING_GAP)
        image.draft("RGB", (wanted, wanted))
    elif draft_scale > 1:
        # draft() takes scale = min(width // w, height // h), rounded down to 8, 4, 2 or 1:
        # asking for (width // N, height // N) gives exactly N for the photo sizes we use,
        # and the check below proves it.
        width, height = image.size
        image.draft("RGB", (width // draft_scale, height // draft_scale))
        expected = (-(-width // draft_scale), -(-height // draft_scale))
        if image.size != expected:
            raise SystemExit(f"draft() gave {image.size}, not 1/{draft_scale} = {expected}")
    return image.size


def make_thumbnails(data, sizes, quality, use_draft, draft_scale=None):
    """One upload's thumbnails, as JPEG bytes in the order of `sizes`, and the decoded size."""
    image = Image.open(io.BytesIO(data))
    decoded = draft(image, sizes, draft_scale) if use_draft else image.size
    if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        image = image.convert("RGB")  # greyscale or CMYK JPEGs
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = (left, top, left + side, top + side)
    thumbnails = []
    for size in sizes:
        thumbnail = image.resize(
            (size, size), Image.Resampling.LANCZOS, box=square, reducing_gap=REDUCING_GAP
        )
        out = io.BytesIO()
        thumbnail.save(out, "JPEG", quality=quality)  # baseline: progressive defaults to off
        thumbnails.append(out.getvalue())
    return thumbnails, decoded


def bench(path, sizes, quality, seconds, use_draft, draft_scale, out_dir):
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    # warm-up, not timed
    thumbnails, decoded = make_thumbnails(data, sizes, quality, use_draft, draft_scale)
    if out_dir:
        for size, jpeg in zip(sizes, thumbnails):
            Path(out_dir, f"{Path(path).stem}-{size}.jpg").write_bytes(jpeg)
    iterations = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while True:
        make_thumbnails(data, sizes, quality, use_draft, draft_scale)
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return {
        "file": str(path),
        "width": width,
        "height": height,
        "decoded_width": decoded[0],
        "decoded_height": decoded[1],
        "iterations": iterations,
        "seconds": elapsed,
        "cpu_seconds": time.process_time() - cpu_start,
        "images_per_second": iterations / elapsed,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256,512", help="comma-separated square sizes")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per input")
    parser.add_argument("--plain", action="store_true", help="full-size decode, no draft()")
    parser.add_argument(
        "--draft-scale", type=int, choices=[1, 2, 4, 8], help="decode at exactly 1/N scale"
    )
    parser.add_argument("--cpu", type=int, help="pin the process to this CPU")
    parser.add_argument("--out", help="also write the thumbnails of each input to this folder")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if any(size <= 0 for size in sizes):
        parser.error("--sizes must be positive")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    use_draft = not args.plain and args.draft_scale != 1
    for path in args.images:
        result = bench(
            path, sizes, args.quality, args.seconds, use_draft, args.draft_scale, args.out
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
