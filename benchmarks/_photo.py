"""Benchmark images and image measures.

:func:`photo_jpeg` is a synthetic but photo-like test image: smooth light, texture, sensor noise and
some text, saved as a phone would save it (JPEG, quality 92), so its size is in the range of a real
photo. :func:`server_view` is what the model sees of an original (the server's bicubic resize), and
:func:`psnr` compares a sent image with it."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageChops, ImageDraw, ImageFilter


def photo_jpeg(width: int = 4032, height: int = 3024, quality: int = 92) -> bytes:
    small = Image.linear_gradient("L").resize((width, height))
    base = Image.merge("RGB", (small, small.rotate(90).resize((width, height)), small.transpose(Image.FLIP_LEFT_RIGHT)))
    texture = Image.effect_noise((width // 4, height // 4), 64).resize((width, height), Image.BICUBIC)
    base = Image.blend(base, Image.merge("RGB", (texture, texture, texture)), 0.35)
    draw = ImageDraw.Draw(base)
    for i in range(40):
        x = (i * 977) % width
        y = (i * 613) % height
        draw.ellipse((x, y, x + 300, y + 200), outline=(255 - i * 5, i * 6, 128), width=8)
        draw.text((x + 20, y + 80), f"Receipt line {i}: 12.{i:02d} CNY", fill=(10, 10, 10))
    grain = Image.effect_noise((width, height), 18)
    base = Image.blend(base, Image.merge("RGB", (grain, grain, grain)), 0.12).filter(ImageFilter.SMOOTH)
    buf = io.BytesIO()
    base.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def photo_image(width: int = 1280, height: int = 800) -> Image.Image:
    """The same photo-like picture as pixels (for saving as PNG / WEBP / JPEG at about 1 MP)."""
    img = Image.open(io.BytesIO(photo_jpeg(width, height)))
    img.load()
    return img


def server_view(original: bytes, size: tuple[int, int]) -> Image.Image:
    """What the model sees of ``original`` at ``size``: the full-resolution decode, resized bicubic
    (Pillow's default filter, as the open-source Qwen-VL preprocessing does)."""
    img = Image.open(io.BytesIO(original))
    img.load()
    return img.convert("RGB").resize(size, Image.Resampling.BICUBIC)


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio of ``a`` against ``b`` (same size), in dB over RGB."""
    hist = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).histogram()
    mse = sum(count * (i % 256) ** 2 for i, count in enumerate(hist)) / (a.width * a.height * 3)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def smallest_jpeg_at(view: Image.Image, target_psnr: float) -> tuple[int, str]:
    """Bytes and settings of the smallest JPEG of ``view`` (4:4:4 or 4:2:0, quality 50..100) whose
    PSNR against ``view`` reaches ``target_psnr``."""
    best: tuple[int, str] = (10**12, "unreachable")
    for subsampling, name in ((0, "4:4:4"), (2, "4:2:0")):
        lo, hi = 50, 100
        found = None
        while lo <= hi:  # PSNR grows with quality: the lowest quality that reaches the target
            q = (lo + hi) // 2
            buf = io.BytesIO()
            view.save(buf, "JPEG", quality=q, subsampling=subsampling)
            if psnr(Image.open(io.BytesIO(buf.getvalue())), view) >= target_psnr:
                found, hi = (len(buf.getvalue()), f"quality {q}, {name}"), q - 1
            else:
                lo = q + 1
        if found and found[0] < best[0]:
            best = found
    return best
