"""Nasty images through the real endpoint handler, with the peak memory each one costs.

The corpus: decompression bombs by header, tall/thin and wide/short images, huge palettes, animated
PNG, polyglots, truncated files, CMYK, 16-bit, EXIF and ICC oddities, and ordinary photos' sizes. Each
goes through the AWS inference toolkit's handler service (``ToolkitHandler``, what the container runs)
in a process of its own serving the artifact, which resets its peak RSS (``/proc/self/clear_refs``)
before each image and reads it back (``VmHWM``) after.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from offline_stack.sam_template import PROJECT_ROOT
from reliability.leaks import leaks

# The stated limit: one model process (one TorchServe worker) stays under this for any image.
PEAK_RSS_LIMIT_MB = 2048


@dataclass
class CorpusImage:
    name: str
    body: bytes
    content_type: str = "image/png"


def _encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def _png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _photo_like(width: int, height: int, seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(height // 64, 2), max(width // 64, 2), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)


def _exif(**tags) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[int(tag[1:])] = value
    return exif.tobytes()


def build_corpus(full: bool) -> list[CorpusImage]:
    """The nasty images; ``full`` adds the large ones (12 MP and 40 Mpx sources)."""
    photo = _photo_like(640, 480)
    jpeg = _encoded(photo, "JPEG")
    png = _encoded(photo, "PNG")
    sixteen_bit = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    animated = io.BytesIO()
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(animated, "PNG", save_all=True, append_images=frames[1:], duration=100, loop=0)
    big_text = PngImagePlugin.PngInfo()
    big_text.add_text("comment", "A" * 20_000_000, zip=True)  # a zTXt chunk that inflates to 20 MB
    corpus = [
        CorpusImage("bomb-header-100k-x-100k", _png_with_header(100_000, 100_000)),
        CorpusImage("bomb-1bit-8000x6000", _encoded(Image.new("1", (8000, 6000)), "PNG")),
        CorpusImage("tall-thin-1x100000", _encoded(Image.new("RGB", (1, 100_000), (10, 20, 30)), "PNG")),
        CorpusImage("wide-short-100000x1", _encoded(Image.new("RGB", (100_000, 1), (10, 20, 30)), "PNG")),
        CorpusImage(
            "tall-thin-jpeg-8x60000", _encoded(Image.new("RGB", (8, 60_000), (200, 20, 30)), "JPEG"), "image/jpeg"
        ),
        CorpusImage("palette-2000x2000", _encoded(photo.resize((2000, 2000)).quantize(256), "PNG")),
        CorpusImage("palette-with-transparency", _encoded(photo.quantize(16), "PNG", transparency=3)),
        CorpusImage("animated-png-3-frames", animated.getvalue()),
        CorpusImage("polyglot-jpeg-with-zip-tail", jpeg + b"PK\x03\x04" + b"\x00" * 200, "image/jpeg"),
        CorpusImage("polyglot-png-with-html-tail", png + b"<html><script>alert(1)</script></html>"),
        CorpusImage("gif-sent-as-jpeg", _encoded(photo, "GIF"), "image/jpeg"),
        CorpusImage("truncated-jpeg", jpeg[: len(jpeg) // 2], "image/jpeg"),
        CorpusImage("truncated-png", png[: len(png) // 2]),
        CorpusImage("header-only-jpeg", jpeg[:20], "image/jpeg"),
        CorpusImage("empty", b"", "image/jpeg"),
        CorpusImage("cmyk-jpeg", _encoded(photo.convert("CMYK"), "JPEG"), "image/jpeg"),
        CorpusImage("16-bit-png", _encoded(sixteen_bit, "PNG")),
        CorpusImage("grayscale-alpha-png", _encoded(photo.convert("LA"), "PNG")),
        CorpusImage("1-bit-png", _encoded(photo.convert("1"), "PNG")),
        CorpusImage("exif-rotate-270", _encoded(photo, "JPEG", exif=_exif(t274=8)), "image/jpeg"),
        CorpusImage("exif-orientation-out-of-range", _encoded(photo, "JPEG", exif=_exif(t274=9)), "image/jpeg"),
        CorpusImage("exif-60kb-blob", _encoded(photo, "JPEG", exif=_exif(t270="x" * 60_000)), "image/jpeg"),
        CorpusImage("icc-profile-garbage", _encoded(photo, "JPEG", icc_profile=b"\x00" * 4096), "image/jpeg"),
        CorpusImage("png-text-bomb", _encoded(photo, "PNG", pnginfo=big_text)),
        CorpusImage("photo-640x480-jpeg", jpeg, "image/jpeg"),
    ]
    if full:
        corpus += [
            CorpusImage("phone-12mp-jpeg", _encoded(_photo_like(4000, 3000), "JPEG", quality=90), "image/jpeg"),
            CorpusImage(
                "progressive-12mp-jpeg", _encoded(_photo_like(4000, 3000, 2), "JPEG", progressive=True), "image/jpeg"
            ),
            CorpusImage("jpeg-40mpx-16000x2500", _encoded(_photo_like(16000, 2500, 3), "JPEG"), "image/jpeg"),
            CorpusImage("png-rgba-39mpx-6000x6600", _encoded(Image.new("RGBA", (6000, 6600), (1, 2, 3, 4)), "PNG")),
            CorpusImage("png-16-bit-39mpx", _encoded(Image.new("I;16", (6000, 6600), 300), "PNG")),
        ]
    return corpus


@dataclass
class CorpusOutcome:
    name: str
    status: int
    code: str
    peak_rss_mb: int
    milliseconds: float
    leaks: list[str]


def measure_corpus(model_dir: Path, corpus: list[CorpusImage], work_dir: Path) -> list[CorpusOutcome]:
    """Serve each image through the toolkit in a process of its own; return status and peak RSS per image."""
    corpus_dir = work_dir / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    index = []
    for number, item in enumerate(corpus):
        path = corpus_dir / f"{number:02d}-{item.name}"
        path.write_bytes(item.body)
        index.append({"name": item.name, "path": str(path), "content_type": item.content_type})
    (corpus_dir / "index.json").write_text(json.dumps(index))
    results = work_dir / "corpus-results.jsonl"
    # As the container: the artifact's code/ and nothing of training_jobs/ on the path.
    env = {**os.environ, "PYTHONPATH": f"{model_dir.resolve() / 'code'}{os.pathsep}{PROJECT_ROOT}"}
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.image_corpus",
            "--model-dir",
            str(model_dir),
            "--corpus",
            str(corpus_dir / "index.json"),
            "--results",
            str(results),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if process.returncode != 0:
        raise RuntimeError(f"the corpus process failed:\n{process.stdout[-3000:]}{process.stderr[-3000:]}")
    return [CorpusOutcome(**json.loads(line)) for line in results.read_text().splitlines()]


def _peak_rss_mb() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current RSS


def main(argv: list[str] | None = None) -> None:
    from offline_stack.model_container import ToolkitHandler

    parser = argparse.ArgumentParser(description="Serve a corpus of images through the toolkit, measuring peak RSS.")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args(argv)
    handler = ToolkitHandler(args.model_dir.resolve())
    with args.results.open("w") as results:
        for item in json.loads(args.corpus.read_text()):
            body = Path(item["path"]).read_bytes()
            _reset_peak_rss()
            started = time.perf_counter()
            status, data, _ = handler.invoke(body, {"Content-Type": item["content_type"]})
            milliseconds = (time.perf_counter() - started) * 1000
            text = data.decode("utf-8", "replace")
            try:
                code = json.loads(text).get("error", {}).get("code", "") if status != 200 else ""
            except ValueError:
                code = "not JSON"
            outcome = CorpusOutcome(item["name"], status, code, _peak_rss_mb(), round(milliseconds, 1), leaks(text))
            results.write(json.dumps(outcome.__dict__) + "\n")
            results.flush()


if __name__ == "__main__":
    main()
