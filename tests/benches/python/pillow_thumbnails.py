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

    python pillow_thumbnails.py --sizes 64,256,512 --quality 85 --seconds 5 IMAGE...

prints one JSON line per input: file, width, height (as stored), iterations, seconds,
images_per_second.
"""

import argparse
import io
import json
import time
from pathlib import Path

from PIL import ExifTags, Image, ImageOps

REDUCING_GAP = 2.0  # Image.thumbnail()'s default


def make_thumbnails(data, sizes, quality, use_draft):
    """One upload's thumbnails, as JPEG bytes in the order of `sizes`."""
    image = Image.open(io.BytesIO(data))
    if use_draft:
        # draft() picks the largest 1/scale whose result is still >= this on both sides, so
        # the shorter side (the square's) keeps at least REDUCING_GAP x the largest size.
        wanted = int(max(sizes) * REDUCING_GAP)
        image.draft("RGB", (wanted, wanted))
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
    return thumbnails


def bench(path, sizes, quality, seconds, use_draft, out_dir):
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    thumbnails = make_thumbnails(data, sizes, quality, use_draft)  # warm-up, not timed
    if out_dir:
        for size, jpeg in zip(sizes, thumbnails):
            Path(out_dir, f"{Path(path).stem}-{size}.jpg").write_bytes(jpeg)
    iterations = 0
    start = time.perf_counter()
    while True:
        make_thumbnails(data, sizes, quality, use_draft)
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return {
        "file": str(path),
        "width": width,
        "height": height,
        "iterations": iterations,
        "seconds": elapsed,
        "images_per_second": iterations / elapsed,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256,512", help="comma-separated square sizes")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per input")
    parser.add_argument("--plain", action="store_true", help="full-size decode, no draft()")
    parser.add_argument("--out", help="also write the thumbnails of each input to this folder")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if any(size <= 0 for size in sizes):
        parser.error("--sizes must be positive")
    for path in args.images:
        result = bench(path, sizes, args.quality, args.seconds, not args.plain, args.out)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
