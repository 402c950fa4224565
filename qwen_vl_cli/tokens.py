"""``qwen-vl tokens``: image and video token estimates per model, from the documented formulas.

No API call and no key needed. Image sizes come from Pillow (EXIF orientation applied); MP4/MOV
size and duration from the file's boxes; other videos need ``--duration`` and ``--size``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.media.probe import probe_mp4
from qwen_vl_core.models import DEFAULT_MODEL, get_capabilities
from qwen_vl_core.tokens import image_geometry, video_frame_count, video_tokens

from ._common import EXIT_OK, EXIT_USAGE, CLIError, Console
from ._request import LOW_DETAIL_TOKENS

__all__ = ["add_parser", "run", "estimate", "DEFAULT_MODELS"]

DEFAULT_MODELS = (DEFAULT_MODEL, "qwen-vl-max", "qvq-max", "qwen-vl-ocr")
_SIZE = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")

EPILOG = f"""\
Formulas (Alibaba Cloud Model Studio, "Rules for converting images and videos to tokens"):
  image: each side rounded to the model's patch (32 px for Qwen3-VL and qwen-vl-max/plus, 28 px
  for QVQ and Qwen2.5-VL), scaled into [4, cap] patches (cap 2560 at 32 px, 1280 at 28 px,
  16384 with --high-resolution; --max-pixels lowers it), tokens = patches + 2.
  video: frames sampled at --fps (default 2) within [4, 512], each pair of frames shares one
  set of patches; an estimate, not exact.
  --detail low uses max_pixels = {LOW_DETAIL_TOKENS} x patch^2, as `analyze` does.

examples:
  qwen-vl tokens scan.png photo.jpg
  qwen-vl tokens clip.mp4 --fps 1 --model qwen3-vl-plus --json
  qwen-vl tokens recording.avi --duration 42 --size 1280x720

exit codes: 0 every file estimated, 2 a file is missing, unreadable or needs --duration/--size
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tokens",
        help="estimate image/video tokens per model (no API call)",
        description="Estimate the visual tokens each file costs, per model, without calling the API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="images and videos")
    p.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        help=f"model to estimate for (repeatable; default: {', '.join(DEFAULT_MODELS)})",
    )
    p.add_argument("--high-resolution", action="store_true", help="as with vl_high_resolution_images (images)")
    p.add_argument("--detail", choices=("auto", "low", "high"), default="auto", help="as the request field (images)")
    p.add_argument("--min-pixels", type=int, metavar="N", help="images: raise the pixel floor")
    p.add_argument("--max-pixels", type=int, metavar="N", help="images: lower the pixel cap")
    p.add_argument("--fps", type=float, help="videos: frames sampled per second (default 2)")
    p.add_argument("--duration", type=float, metavar="S", help="videos: duration in seconds (when it cannot be read)")
    p.add_argument("--size", metavar="WxH", help="videos: frame size (when it cannot be read)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = _SIZE.match(text)
    if not m or not int(m.group(1)) or not int(m.group(2)):
        raise CLIError(f"--size must look like 1280x720, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    from qwen_vl_core.media.resize import oriented_size

    try:
        with Image.open(path) as img:
            return oriented_size(img)
    except Exception as exc:  # unreadable, or HEIC without pillow-heif
        hint = " (install pillow-heif to read HEIC)" if path.suffix.lower() in (".heic", ".heif") else ""
        raise InputValidationError(f"cannot read the image size ({type(exc).__name__}: {exc}){hint}") from None


def _image_note(width: int, height: int) -> str | None:
    if min(width, height) <= 10:
        return "DashScope refuses it: each side must be more than 10 px"
    if max(width, height) / min(width, height) > 200:
        return "DashScope refuses it: aspect ratio above 200:1"
    return None


def estimate(path: Path, args: argparse.Namespace, models: list[str]) -> dict[str, Any]:
    """One row: ``{"file", "kind", "format", "width", "height", "duration_s"?, "tokens": {model: n|None}, ...}``."""
    from qwen_vl_core.media.formats import detect_format

    row: dict[str, Any] = {"file": str(path), "kind": None, "tokens": {m: None for m in models}}
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except FileNotFoundError:
        row["error"] = "no such file"
        return row
    except IsADirectoryError:
        row["error"] = "is a directory"
        return row
    except OSError as exc:
        row["error"] = f"cannot be read ({exc.strerror or exc})"
        return row
    info = detect_format(head)
    if info is None or info[0] not in ("image", "video"):
        row["error"] = f"not an image or a video ({info[1] if info else 'unknown format'})"
        return row
    kind, fmt, _mime = info
    row.update(kind=kind, format=fmt)
    if kind == "image":
        try:
            width, height = _image_size(path)
        except InputValidationError as exc:
            row["error"] = str(exc)
            return row
        row.update(width=width, height=height)
        note = _image_note(width, height)
        if note:
            row["note"] = note
        resized: dict[str, list[int]] = {}
        for model in models:
            options: dict[str, Any] = {"high_resolution": args.high_resolution or args.detail == "high"}
            max_pixels = args.max_pixels
            if args.detail == "low":
                patch = get_capabilities(model).patch_size
                max_pixels = LOW_DETAIL_TOKENS * patch * patch
            geo = image_geometry(width, height, model, min_pixels=args.min_pixels, max_pixels=max_pixels, **options)
            row["tokens"][model] = geo.tokens
            resized[model] = [geo.width, geo.height]
        row["model_input"] = resized
        return row
    probed = probe_mp4(path) if fmt in ("MP4", "MOV") else None
    size = _parse_size(args.size) or ((probed.width, probed.height) if probed else None)
    duration = args.duration if args.duration is not None else (probed.duration_s if probed else None)
    if size:
        row.update(width=size[0], height=size[1])
    if duration is not None:
        row["duration_s"] = round(duration, 3)
    missing = [flag for flag, value in (("--duration S", duration), ("--size WxH", size)) if value is None]
    if missing:
        row["error"] = f"needs {' and '.join(missing)} (the {fmt} file was not probed)"
        return row
    assert size is not None and duration is not None
    if duration < 2:
        row["note"] = "DashScope refuses videos shorter than 2 s"
    row["frames"] = video_frame_count(duration, args.fps)
    for model in models:
        if not get_capabilities(model).video:
            row["tokens"][model] = None
            row.setdefault("not_supported", []).append(model)
            continue
        row["tokens"][model] = video_tokens(size[0], size[1], duration, model, fps=args.fps)
    return row


_ORDER = ("file", "kind", "format", "width", "height", "duration_s", "frames", "tokens", "model_input", "not_supported", "note", "error")


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in sorted(row, key=lambda k: _ORDER.index(k) if k in _ORDER else len(_ORDER))}


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _table(rows: list[dict[str, Any]], models: list[str], totals: dict[str, int | None]) -> str:
    header = ["FILE", "KIND", "SIZE", *models]
    lines: list[tuple[list[str], str | None]] = []
    for row in rows:
        size = f"{row['width']}x{row['height']}" if row.get("width") else "?"
        if row.get("duration_s") is not None:
            size += f" {row['duration_s']:g}s"
        cells = [row["file"], row.get("kind") or "?", size]
        unsupported = row.get("not_supported", ())
        cells += ["n/a" if m in unsupported else _cell(row["tokens"][m]) for m in models]
        lines.append((cells, row.get("error")))
    if len(rows) > 1:
        lines.append((["TOTAL", "", "", *[_cell(totals.get(m)) for m in models]], None))
    widths = [len(h) for h in header]
    for cells, error in lines:
        for i, cell in enumerate(cells[: 3 if error else len(cells)]):
            widths[i] = max(widths[i], len(cell))
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for cells, error in lines:
        shown = cells[:3] if error else cells
        text = "  ".join(c.ljust(w) for c, w in zip(shown, widths))
        out.append((text + "  " + error) if error else text.rstrip())
    out += [f"note: {r['file']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(out)


def run(args: argparse.Namespace, console: Console) -> int:
    models = list(dict.fromkeys(args.models or DEFAULT_MODELS))
    for name, value in (("--min-pixels", args.min_pixels), ("--max-pixels", args.max_pixels)):
        if value is not None and value <= 0:
            raise CLIError(f"{name} must be a positive integer, got {value}")
    if args.fps is not None and not 0.1 <= args.fps <= 10:
        raise CLIError(f"--fps must be from 0.1 to 10, got {args.fps:g}")
    if args.detail == "low" and args.max_pixels is not None:
        raise CLIError("--detail low sets max_pixels; give either --detail low or --max-pixels")
    if args.duration is not None and args.duration <= 0:
        raise CLIError(f"--duration must be positive, got {args.duration:g}")
    _parse_size(args.size)
    rows = [_ordered(estimate(Path(f).expanduser(), args, models)) for f in args.files]
    ok = [r for r in rows if not r.get("error")]
    # A model that cannot take one of the files gets no total: that request could not be made.
    totals = {m: None if any(r["tokens"][m] is None for r in ok) else sum(r["tokens"][m] for r in ok) for m in models}
    failed = [r for r in rows if r.get("error")]
    if args.json:
        console.out(json.dumps({"models": models, "files": rows, "total": totals}, ensure_ascii=False, indent=2))
    else:
        console.out(_table(rows, models, totals))
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise CLIError(f"no estimate for {first['file']!r}: {first['error']}{more}", EXIT_USAGE)
    return EXIT_OK
