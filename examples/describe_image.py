"""Describe an image with Qwen-VL: the README's main job.

    DASHSCOPE_API_KEY=sk-... python examples/describe_image.py photo.jpg [--prompt "..."] [--model qwen3-vl-plus]

The image may be a local path, a file:// URI, an http(s) URL or an oss:// URL. The answer streams
to stdout; token usage (image tokens included) goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from qwen_vl_core import DEFAULT_MODEL, QwenVLClient, QwenVLError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Describe an image with Qwen-VL.")
    ap.add_argument("image", help="local path, file:// URI, http(s) URL or oss:// URL")
    ap.add_argument("--prompt", default="Describe this image in detail.")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--region", default=None, help="beijing (default), singapore, us or hongkong")
    args = ap.parse_args(argv)
    try:
        with QwenVLClient(region=args.region) as client:
            usage = None
            for delta in client.stream(
                [{"role": "user", "content": [{"image": args.image}, {"type": "text", "text": args.prompt}]}],
                model=args.model,
            ):
                sys.stdout.write(delta.text)
                sys.stdout.flush()
                usage = delta.usage or usage
            print()
            if usage:
                print(f"tokens: {usage.to_dict()}", file=sys.stderr)
    except (QwenVLError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
