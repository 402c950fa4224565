"""``qwen-vl ground``: find things in an image and get boxes (or points) in pixels of that image,
printed, as JSON, or drawn on a copy of the image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qwen_vl_core.grounding import CONVENTIONS, GroundingParseError, draw_boxes, ground
from qwen_vl_core.models import DEFAULT_MODEL, get_capabilities

from ._common import EXIT_API, EXIT_OK, CLIError, Console, add_connection_args, make_client

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Ask a Qwen-VL model to locate things in an image ("find every signature") and get boxes in
pixels of IMAGE as you have it: the model's coordinates (relative 0-1000 for Qwen3-VL, pixels of
the image as the server resized it for Qwen2.5-VL) are mapped back through the sizes the client
recorded (original, sent after any downscale, as the model saw it).
"""

EPILOG = """\
output:
  default     one line per box: label, then x1 y1 x2 y2 (points: x y) in pixels of IMAGE
  --json      one JSON object: model, convention, image sizes, boxes / points (with the model's
              raw numbers), notes (an assumed convention, clamped coordinates), the answer text
  --draw OUT  also save IMAGE with the boxes drawn on it (PNG or JPEG by OUT's suffix)

examples:
  qwen-vl ground contract.png "find every signature" --draw signatures.png
  qwen-vl ground shelf.jpg "each bottle" --points --json
  qwen-vl ground plan.png "every door" --model qwen-vl-max --high-resolution

exit codes: 0 boxes found (or an empty answer: nothing found), 2 usage or input error,
3 API error or an answer with no readable boxes
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ground",
        help="locate things in an image: boxes in pixels of the image, as JSON or drawn",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("image", metavar="IMAGE", help="the image: local path, URL, data: URL")
    p.add_argument("prompt", metavar="PROMPT", help='what to find, e.g. "find every signature"')
    group = p.add_argument_group("request")
    group.add_argument("--model", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    group.add_argument("--points", action="store_true", help="ask for points (point_2d) instead of boxes")
    group.add_argument(
        "--convention",
        choices=CONVENTIONS,
        help="the coordinates the model answers in (default: the model's, from the registry)",
    )
    group.add_argument("--raw-prompt", action="store_true", help="send PROMPT as written, without the JSON format instruction")
    group.add_argument("--high-resolution", action="store_true", help="vl_high_resolution_images (up to 16384 tokens)")
    group.add_argument("--max-pixels", type=int, metavar="N", help="per-image pixel cap")
    group.add_argument("--min-pixels", type=int, metavar="N", help="per-image pixel floor")
    group.add_argument("--max-tokens", type=int, metavar="N", help="longest answer")
    group.add_argument("--no-resize", action="store_true", help="send the image as it is (no client downscale)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--draw", metavar="OUT", help="save IMAGE with the boxes drawn on it")
    add_connection_args(p)
    p.set_defaults(run=run)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.high_resolution:
        options["high_resolution"] = True
    for name in ("max_pixels", "min_pixels", "max_tokens"):
        value = getattr(args, name)
        if value is not None:
            if value <= 0:
                raise CLIError(f"--{name.replace('_', '-')} must be positive, got {value}")
            options[name] = value
    return options


def _draw_target(path: str) -> Path:
    out = Path(path).expanduser()
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise CLIError(f"--draw {path!r}: give a .png, .jpg or .webp file name")
    if not out.parent.exists():
        raise CLIError(f"--draw {path!r}: the folder {str(out.parent)!r} does not exist")
    return out


def _line(item: Any) -> str:
    label = item.label or "-"
    coords = item.rounded()
    return f"{label}\t" + " ".join(str(v) for v in coords)


def run(args: argparse.Namespace, console: Console) -> int:
    options = _options(args)
    target = _draw_target(args.draw) if args.draw else None
    get_capabilities(args.model)  # nothing to check: unknown models are allowed (a note says what was assumed)
    client = make_client(args, console, max_retries=None, retry_backoff_s=None)
    kind = "point" if args.points else "box"
    with client:
        try:
            found = ground(client, args.image, args.prompt, model=args.model, kind=kind, convention=args.convention,
                           instruct=not args.raw_prompt, **options)  # fmt: skip
        except GroundingParseError as exc:
            console.error(str(exc))
            return EXIT_API
    for note in found.notes:
        console.warn(note)
    if target is not None:
        if found.image.width is None:
            raise CLIError(f"--draw: the image {args.image!r} was sent by URL and not downloaded; draw on a local copy")
        draw_boxes(args.image, found).save(target)
        console.note(f"drew {len(found)} item{'s' if len(found) != 1 else ''} on {target}")
    if args.json:
        console.out(json.dumps(found.to_dict(), ensure_ascii=False))
    else:
        for item in [*found.boxes, *found.points]:
            console.out(_line(item))
    return EXIT_OK
