"""A synthetic but photo-like test image: smooth light, texture, sensor noise and some text,
saved as a phone would save it (JPEG, quality 92), so its size is in the range of a real photo."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFilter


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
