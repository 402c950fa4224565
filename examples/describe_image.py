"""Describe an image with Qwen-VL: the README's main job.

    DASHSCOPE_API_KEY=sk-... python examples/describe_image.py photo.jpg [--prompt "..."] [--model qwen3-vl-plus]
    python examples/describe_image.py photo.jpg --base-url http://localhost:8000/v1   # another endpoint

The image may be a local path, a file:// URI, an http(s) URL or an oss:// URL. The answer streams
to stdout; a thinking model's reasoning streams to stderr before it, and token usage (image tokens
included) goes to stderr at the end. The endpoint is the region's DashScope host (--region), or
--base-url / DASHSCOPE_BASE_URL for any other (a DashScope host, or an OpenAI-compatible /v1 base).

Exit codes, as the qwen-vl command's: 0 answered, 2 bad input or settings (nothing was sent),
3 the API call failed.
"""

from __future__ import annotations

import argparse
import sys

from qwen_vl_core import DEFAULT_MODEL, QwenVLClient, QwenVLError
from qwen_vl_core.errors import ConfigurationError, InputValidationError

EXIT_USAGE, EXIT_API = 2, 3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Describe an image with Qwen-VL.")
    ap.add_argument("image", help="local path, file:// URI, http(s) URL or oss:// URL")
    ap.add_argument("--prompt", default="Describe this image in detail.")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--region", default=None, help="beijing (default), singapore, us or hongkong")
    ap.add_argument(
        "--base-url",
        default=None,
        help="another endpoint: a DashScope host or any OpenAI-compatible /v1 base (default: DASHSCOPE_BASE_URL, "
        "else the region's host)",
    )
    args = ap.parse_args(argv)
    try:
        with QwenVLClient(region=args.region, base_url=args.base_url) as client:
            usage = None
            thinking = False
            for delta in client.stream(
                [{"role": "user", "content": [{"image": args.image}, {"type": "text", "text": args.prompt}]}],
                model=args.model,
            ):
                if delta.reasoning:  # a thinking model: its reasoning, apart from the answer
                    if not thinking:
                        print("--- Reasoning ---", file=sys.stderr)
                        thinking = True
                    print(delta.reasoning, end="", file=sys.stderr, flush=True)
                if delta.text:
                    if thinking:
                        print("\n--- Answer ---", file=sys.stderr)
                        thinking = False
                    sys.stdout.write(delta.text)
                    sys.stdout.flush()
                usage = delta.usage or usage
            print()
            if usage:
                print(f"tokens: {usage.to_dict()}", file=sys.stderr)
    except (InputValidationError, ConfigurationError, ValueError) as exc:  # checked before anything was sent
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except QwenVLError as exc:  # the server or the connection failed
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_API
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
