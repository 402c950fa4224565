"""Bytes on the wire for one 4032x3024 photo: QwenVLClient versus Base64 of the original file
(what ChatOpenAI and the raw openai SDK send), both measured at the same local DashScope-protocol
server in one run, with the image tokens the documented formula gives for each; and the image we
send versus the floor at equal quality (the server's own view of the photo as the smallest JPEG
that reaches our PSNR against that view).

    python benchmarks/bytes_on_wire.py [--model qwen3-vl-plus] [--high-resolution]
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from benchmarks._photo import photo_jpeg, psnr, server_view, smallest_jpeg_at  # noqa: E402
from qwen_vl_core import DEFAULT_MODEL, QwenVLClient  # noqa: E402
from qwen_vl_core.tokens import image_tokens  # noqa: E402
from tests.fake_dashscope import DashScopeServer, data_url_image_size  # noqa: E402

KEY = "sk-benchmark-not-a-real-key"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--high-resolution", action="store_true")
    args = ap.parse_args(argv)
    opts = {"high_resolution": True} if args.high_resolution else {}

    data = photo_jpeg()
    with tempfile.TemporaryDirectory() as tmp, DashScopeServer() as server:
        path = Path(tmp) / "photo.jpg"
        path.write_bytes(data)
        w, h = Image.open(path).size

        # ours: a local path, resized client-side to exactly what the model looks at
        with QwenVLClient(api_key=KEY, base_url=server.url) as client:
            client.chat([{"role": "user", "content": [{"type": "text", "text": "Describe."}, {"image": str(path)}]}],
                        model=args.model, **opts)
        ours = server.requests[-1]
        our_url = ours.json["messages"][0]["content"][1]["image_url"]["url"]
        sent_w, sent_h = data_url_image_size(our_url)

        # peer: ChatOpenAI with the documented Base64 data URL of the file
        from langchain_core.messages import HumanMessage
        from langchain_openai import ChatOpenAI

        data_url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
        peer = ChatOpenAI(model=args.model, api_key=KEY, base_url=server.compatible_url, max_retries=0,
                          extra_body={"vl_high_resolution_images": True} if args.high_resolution else None)
        peer.invoke([HumanMessage(content=[{"type": "text", "text": "Describe."},
                                           {"type": "image_url", "image_url": {"url": data_url}}])])
        theirs = server.requests[-1]

    our_bytes, peer_bytes = len(ours.body), len(theirs.body)
    our_tokens = image_tokens(sent_w, sent_h, args.model, **opts)
    peer_tokens = image_tokens(w, h, args.model, **opts)
    print(f"photo: {w}x{h} JPEG, {len(data):,} bytes; model {args.model}{' (high resolution)' if opts else ''}")
    print(f"{'client':<28}{'request bytes':>16}{'image sent':>14}{'image tokens':>14}")
    print(f"{'QwenVLClient (ours)':<28}{our_bytes:>16,}{f'{sent_w}x{sent_h}':>14}{our_tokens:>14,}")
    print(f"{'ChatOpenAI (Base64 of file)':<28}{peer_bytes:>16,}{f'{w}x{h}':>14}{peer_tokens:>14,}")
    print(f"ratio bytes ours/peer: {our_bytes / peer_bytes:.3f}  (peer sends {peer_bytes / our_bytes:.1f}x more)")
    print(f"ratio image tokens ours/peer: {our_tokens / peer_tokens:.3f}")
    if (sent_w, sent_h) != (w, h):
        import io

        sent = base64.b64decode(our_url.split(",", 1)[1])
        view = server_view(data, (sent_w, sent_h))
        quality = psnr(Image.open(io.BytesIO(sent)), view)
        floor, settings = smallest_jpeg_at(view, quality)
        print(f"image sent: {len(sent):,} bytes at {quality:.2f} dB PSNR against the server's bicubic resize; "
              f"floor at equal quality ({settings}): {floor:,} bytes; ratio ours/floor {len(sent) / floor:.3f}")
    return 0 if our_tokens == peer_tokens else 1


if __name__ == "__main__":
    raise SystemExit(main())
