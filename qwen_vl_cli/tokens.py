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
from qwen_vl_core.messages import MIN_VIDEO_SECONDS
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
  video: the documented frame count (whole seconds unless the fraction is more than one sampling
  interval, times --fps, default 2; at least 4 and at most 512 frames, 80 for models other than
  Qwen3-VL, Qwen2.5-VL and QVQ), each frame resized within 128 to 768 patches of 32x32 px and the
  model's total; each pair of frames shares one set of patches. An estimate, not exact.
  --detail low uses max_pixels = {LOW_DETAIL_TOKENS} x patch^2, as `analyze` does.

Checks: an image with a side of 10 px or less or an aspect ratio over 200:1, and a video shorter
than 2 s or longer than a model takes (Qwen3-VL-Plus 1 h, Qwen3-VL-Flash and qwen-vl-max 20 min,
other Qwen2.5-VL models and QVQ 10 min, Qwen3.5 2 h), are reported ("refused"); --check makes them
exit 2. The length of an MP4/MOV file is read from its header; other containers and URLs cannot be
checked here (the estimate uses --duration and --size, and says so in its note).

examples:
  qwen-vl tokens scan.png photo.jpg
  qwen-vl tokens clip.mp4 --fps 1 --model qwen3-vl-plus --json
  qwen-vl tokens recording.avi --duration 42 --size 1280x720
  qwen-vl tokens https://example.com/clip.mp4 --duration 90 --size 1920x1080
  qwen-vl tokens --check upload/*.jpg || echo "DashScope would refuse one of them"

exit codes: 0 every file estimated, 2 a file is missing, unreadable or needs --duration/--size,
or (with --check) DashScope would refuse one
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tokens",
        help="estimate image/video tokens per model (no API call)",
        description="Estimate the visual tokens each file costs, per model, without calling the API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="images and videos (an http(s) URL needs --size, and --duration for a video)")
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
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 2 when DashScope would refuse a file for one of the models (an image with a side of "
        "10 px or less or an aspect ratio over 200:1, a video shorter than 2 s or longer than the model takes)",
    )
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


_VIDEO_SUFFIXES = {".mp4": "MP4", ".m4v": "MP4", ".mov": "MOV", ".avi": "AVI", ".mkv": "MKV", ".flv": "FLV", ".wmv": "WMV"}
_URL_NOTE = (
    "a URL cannot be checked here (not downloaded): its format, size and length are DashScope's to "
    "check when the request is sent"
)


def _minutes(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 and seconds % 3600 == 0 else f"{seconds / 60:g} min"


def _image_row(row: dict[str, Any], width: int, height: int, args: argparse.Namespace, models: list[str]) -> dict[str, Any]:
    row.update(width=width, height=height)
    note = _image_note(width, height)
    if note:
        row["note"] = note
        row["refused"] = {m: note.removeprefix("DashScope refuses it: ") for m in models}
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


def _video_row(
    row: dict[str, Any], size: tuple[int, int], duration: float, args: argparse.Namespace, models: list[str]
) -> dict[str, Any]:
    """Tokens per model, and what DashScope would refuse: shorter than 2 s, or longer than the
    model's newest documented limit (the registry's ``max_video_seconds``)."""
    refused: dict[str, str] = {}
    if duration < MIN_VIDEO_SECONDS:
        row["note"] = f"DashScope refuses videos shorter than {MIN_VIDEO_SECONDS:g} s"
    frames: dict[str, int] = {}
    for model in models:
        caps = get_capabilities(model)
        if not caps.video:
            row["tokens"][model] = None
            row.setdefault("not_supported", []).append(model)
            continue
        if duration < MIN_VIDEO_SECONDS:
            refused[model] = f"shorter than {MIN_VIDEO_SECONDS:g} s"
        elif caps.known and caps.max_video_seconds is not None and duration > caps.max_video_seconds:
            refused[model] = f"longer than {_minutes(caps.max_video_seconds)}, the most {model} takes"
        frames[model] = video_frame_count(duration, args.fps, max_frames=caps.max_video_frames)
        row["tokens"][model] = video_tokens(size[0], size[1], duration, model, fps=args.fps)
    row["frames"] = frames
    if refused:
        row["refused"] = refused
    return row


def _url_row(url: str, args: argparse.Namespace, models: list[str]) -> dict[str, Any]:
    """A URL: nothing is downloaded; with --size (and --duration for a video) it is estimated."""
    row: dict[str, Any] = {"file": url, "kind": None, "tokens": {m: None for m in models}, "note": _URL_NOTE}
    suffix = Path(url.split("?", 1)[0].split("#", 1)[0]).suffix.lower()
    kind = "video" if suffix in _VIDEO_SUFFIXES or args.duration is not None else "image"
    row["kind"] = kind
    size = _parse_size(args.size)
    needed = [("--size WxH", size)] + ([("--duration S", args.duration)] if kind == "video" else [])
    missing = [flag for flag, value in needed if value is None]
    if missing:
        row["error"] = f"needs {' and '.join(missing)} (a URL is not downloaded)"
        return row
    assert size is not None
    if kind == "image":
        return _image_row(row, size[0], size[1], args, models)
    row.update(width=size[0], height=size[1], duration_s=round(args.duration, 3))
    return _video_row(row, size, args.duration, args, models)


def estimate(path: Path | str, args: argparse.Namespace, models: list[str]) -> dict[str, Any]:
    """One row: ``{"file", "kind", "format", "width", "height", "duration_s"?, "frames"?, "tokens":
    {model: n|None}, "refused"?: {model: why}, "note"?, ...}``."""
    from qwen_vl_core.media.formats import detect_format
    from qwen_vl_core.media.sources import is_remote_url

    if is_remote_url(str(path)):
        return _url_row(str(path), args, models)
    path = Path(path).expanduser()
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
        return _image_row(row, width, height, args, models)
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
    if probed is None:
        row["note"] = (
            f"the length of a {fmt} file cannot be read here (only MP4/MOV headers are): the figures use "
            "--duration, and the real length is DashScope's to check when the request is sent"
        )
    return _video_row(row, size, duration, args, models)


_ORDER = (
    "file", "kind", "format", "width", "height", "duration_s", "frames", "tokens", "model_input", "not_supported",
    "refused", "note", "error",
)


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
    for r in rows:
        if r.get("refused") and not (r.get("note") or "").startswith("DashScope refuses"):
            out += [f"refused: {r['file']}: {model}: {why}" for model, why in r["refused"].items()]
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
    rows = [_ordered(estimate(f, args, models)) for f in args.files]
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
    refused = [r for r in rows if r.get("refused")]
    if args.check and refused:
        first = refused[0]
        model, why = next(iter(first["refused"].items()))
        more = f" (and {len(refused) - 1} more file(s))" if len(refused) > 1 else ""
        raise CLIError(f"--check: DashScope would refuse {first['file']!r} for {model}: {why}{more}", EXIT_USAGE)
    return EXIT_OK
