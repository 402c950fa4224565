"""Validation before anything is sent: formats, sizes, limits, data-URL overflow, videos, frame lists."""

from __future__ import annotations

import base64
import io
import os
import struct
import sys
from pathlib import Path

import pytest
from PIL import Image

from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.media import (
    MAX_IMAGE_BYTES,
    MediaOptions,
    resolve_frames,
    resolve_image,
    resolve_video,
)

ACCEPTED_IMAGES = "accepted image formats: BMP, JPEG, PNG, TIFF, WEBP, HEIC"
ACCEPTED_VIDEOS = "accepted video formats: MP4, AVI, MKV, MOV, FLV, WMV"

VIDEOS = {
    "MP4": (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64, "video/mp4"),
    "MOV": (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x00" * 64, "video/quicktime"),
    "MKV": (
        b"\x1a\x45\xdf\xa3\x93\x42\x86\x81\x01\x42\x82\x88matroska\x42\x87\x81\x04" + b"\x00" * 64,
        "video/x-matroska",
    ),
    "AVI": (b"RIFF" + struct.pack("<I", 4000) + b"AVI LIST" + b"\x00" * 64, "video/x-msvideo"),
    "FLV": (b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00" * 64, "video/x-flv"),
    "WMV": (bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C") + b"\x00" * 64, "video/x-ms-wmv"),
}
WEBM = b"\x1a\x45\xdf\xa3\x8f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87\x81\x04" + b"\x00" * 64


def image_bytes(size, fmt="PNG", color=(90, 140, 200), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt, **save)
    return buf.getvalue()


def noise(size, fmt="PNG", **save) -> bytes:
    img = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


# ------------------------------------------------------------------ dimensions


def test_side_too_short_names_input_and_limit(tmp_path: Path):
    path = tmp_path / "scan.png"
    path.write_bytes(image_bytes((6, 900)))
    with pytest.raises(InputValidationError) as info:
        resolve_image(path)
    assert str(info.value) == f"image '{path}' is 6x900 px; each side must be more than 10 px"


@pytest.mark.parametrize("size", [(10, 500), (500, 10), (3, 3)])
def test_ten_pixels_is_not_enough(size):
    with pytest.raises(InputValidationError, match=r"each side must be more than 10 px"):
        resolve_image(image_bytes(size))


def test_eleven_pixels_is_enough():
    media = resolve_image(image_bytes((11, 11)))
    assert (media.width, media.height) == (11, 11)


def test_aspect_ratio_limit():
    assert resolve_image(image_bytes((2200, 11))).width == 2200  # exactly 200:1 is allowed
    with pytest.raises(InputValidationError) as info:
        resolve_image(image_bytes((11, 2212)))
    message = str(info.value)
    assert "image '<bytes>' is 11x2212 px" in message
    assert "aspect ratio of 201.1:1" in message and "at most 200 times" in message


def test_pil_image_dimensions_are_checked():
    with pytest.raises(InputValidationError, match=r"image '<PIL image>' is 8x40 px"):
        resolve_image(Image.new("L", (8, 40)))


# ------------------------------------------------------------------ formats


def test_gif_is_refused_with_the_accepted_list(tmp_path: Path):
    path = tmp_path / "anim.png"  # the extension lies; the content decides
    path.write_bytes(image_bytes((40, 40), "GIF"))
    with pytest.raises(InputValidationError) as info:
        resolve_image(path)
    assert str(info.value) == f"image '{path}': detected GIF image; {ACCEPTED_IMAGES}"


def test_text_file_is_refused(tmp_path: Path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image at all\n")
    with pytest.raises(InputValidationError, match=rf"image '.*notes\.jpg': detected text file; {ACCEPTED_IMAGES}"):
        resolve_image(path)


def test_video_given_as_image_and_image_given_as_video():
    with pytest.raises(InputValidationError, match=rf"detected MP4 video, not an image; {ACCEPTED_IMAGES}"):
        resolve_image(VIDEOS["MP4"][0])
    with pytest.raises(
        InputValidationError, match=rf"video '<bytes>': detected PNG image, not a video; {ACCEPTED_VIDEOS}"
    ):
        resolve_video(image_bytes((40, 40)))


def test_webm_and_unknown_bytes_are_refused_as_video():
    with pytest.raises(InputValidationError, match=rf"detected WEBM video; {ACCEPTED_VIDEOS}"):
        resolve_video(WEBM)
    with pytest.raises(InputValidationError, match=r"detected an unrecognized format"):
        resolve_video(b"\x00\x01\x02\x03garbage\xff")


def test_corrupt_image_is_refused():
    with pytest.raises(InputValidationError, match=r"image '<bytes>': cannot be read as PNG"):
        resolve_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


def test_truncated_jpeg_that_needs_decoding_is_refused():
    data = image_bytes((3000, 2000), "JPEG", color=(10, 200, 90))
    with pytest.raises(InputValidationError, match=r"image '<bytes>': the JPEG file is truncated \(no end-of-image"):
        resolve_image(data[: len(data) // 3] + b"\x00" * 10)


# ------------------------------------------------------------------ truncated files (structure, not decoding)


def _heic(mdat: int, have: int) -> bytes:
    ftyp = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    return ftyp + struct.pack(">I", 8 + mdat) + b"mdat" + b"\x00" * have


def _whole(fmt: str) -> bytes:
    if fmt == "HEIC":
        return _heic(100, 100)
    save = {"WEBP": {"quality": 80}, "JPEG": {"quality": 90}}.get(fmt, {})
    return noise((64, 48), fmt, **save)


# each accepted format, cut where a copy or a download stops: the structure says more is missing
CUTS = {
    "PNG": [lambda d: d[:-12], lambda d: d[:-1], lambda d: d[: len(d) // 2]],  # IEND gone, its CRC cut, half
    "JPEG": [lambda d: d[:-2], lambda d: d[: len(d) // 2], lambda d: d[: len(d) // 2] + b"\x00" * 64],
    "WEBP": [lambda d: d[:-1], lambda d: d[: len(d) // 2]],
    "BMP": [lambda d: d[:-1], lambda d: d[: len(d) // 2]],
    "TIFF": [lambda d: d[:-1], lambda d: d[: len(d) // 2]],
    "HEIC": [lambda d: d[:-1], lambda d: d[:30]],
}


@pytest.mark.parametrize("fmt, cut", [(f, i) for f, cuts in CUTS.items() for i in range(len(cuts))])
def test_truncated_files_of_every_accepted_format_are_refused(fmt, cut, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # HEIC: the boxes are checked without the plugin
    whole = _whole(fmt)
    assert resolve_image(whole).kind == "image"  # the complete file goes through
    data = CUTS[fmt][cut](whole)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data)
    for value, named in ((path, f"image '{path}'"), (data, "image '<bytes>'")):
        with pytest.raises(InputValidationError) as info:
            resolve_image(value, options=MediaOptions(resize=False))
        message = str(info.value)
        assert message.startswith(f"{named}: the {fmt} file is truncated ("), message
        assert "use a complete copy" in message


def test_truncation_is_caught_even_when_pillow_would_accept_it(monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # common in ML code: gray fill, no error
    data = image_bytes((3000, 2000), "JPEG", color=(10, 200, 90))  # needs a downscale: would be decoded
    with pytest.raises(InputValidationError, match=r"the JPEG file is truncated"):
        resolve_image(data[:-200])
    with pytest.raises(InputValidationError, match=r"the PNG file is truncated"):
        resolve_image(image_bytes((3000, 2000))[:-12])


def test_data_after_the_end_of_a_whole_file_is_accepted():
    jpeg = noise((64, 48), "JPEG")
    motion_photo = jpeg + b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000)  # a phone's JPEG with a video after it
    assert resolve_image(motion_photo).mime == "image/jpeg"
    assert resolve_image(noise((64, 48)) + b"trailing bytes").mime == "image/png"
    assert resolve_image(noise((64, 48), "WEBP") + b"\x00" * 16).mime == "image/webp"


def test_a_damaged_header_is_named_as_unreadable():
    png = bytearray(image_bytes((64, 48)))
    png[20] ^= 0xFF  # IHDR height byte: the chunk CRC no longer matches
    with pytest.raises(InputValidationError, match=r"^image '<bytes>': cannot be read as PNG \(damaged IHDR chunk\)$"):
        resolve_image(bytes(png))
    jpeg = image_bytes((64, 48), "JPEG")
    sos = jpeg.index(b"\xff\xda")
    sof = jpeg.index(b"\xff\xc0")
    no_frame = jpeg[:sof] + jpeg[sof + 2 + int.from_bytes(jpeg[sof + 2 : sof + 4], "big") :]
    assert no_frame.index(b"\xff\xda") < sos
    with pytest.raises(InputValidationError, match=r"cannot be read as JPEG \(image data before the frame header"):
        resolve_image(no_frame)


# ------------------------------------------------------------------ byte limits


def test_image_over_10_mb_as_sent_is_refused():
    data = noise((1700, 1700), "JPEG", quality=100, subsampling=0)
    assert len(data) > MAX_IMAGE_BYTES
    with pytest.raises(InputValidationError) as info:
        resolve_image(data, options=MediaOptions(resize=False, upload=True))
    message = str(info.value)
    assert message.startswith("image '<bytes>' is ")
    assert "each image may be at most 10 MB (10485760 bytes)" in message and "resize=True" in message
    # with the default client-side downscale, the same photo goes through (as a pending upload or data URL)
    media = resolve_image(data)
    assert media.resized and media.sent_bytes <= MAX_IMAGE_BYTES


def _over_limit_png() -> tuple[bytes, int]:
    data = noise((60, 60))
    return data, len("data:image/png;base64,") + len(base64.b64encode(data))


def test_data_url_limit_is_inclusive():
    data, url_len = _over_limit_png()
    at_limit = resolve_image(data, options=MediaOptions(max_data_url_bytes=url_len, upload=False))
    assert at_limit.url is not None and len(at_limit.url) == url_len
    over = resolve_image(data, options=MediaOptions(max_data_url_bytes=url_len - 1, upload=True))
    assert over.url is None and over.pending is not None


def test_oversized_data_url_with_upload_becomes_pending(tmp_path: Path):
    data, url_len = _over_limit_png()
    path = tmp_path / "big scan.png"
    path.write_bytes(data)
    media = resolve_image(path, options=MediaOptions(max_data_url_bytes=url_len // 2))
    assert media.url is None
    pending = media.pending
    assert pending.data == data and pending.mime == "image/png"
    assert pending.filename == "big scan.png" and pending.source == str(path)
    assert media.sent_bytes == len(data) and "size=" in repr(pending) and "b'" not in repr(pending)


def test_oversized_data_url_without_upload_explains_how_to_proceed():
    data, url_len = _over_limit_png()
    with pytest.raises(InputValidationError) as info:
        resolve_image(data, options=MediaOptions(max_data_url_bytes=url_len - 100, upload=False))
    message = str(info.value)
    assert message.startswith("image '<bytes>': the data URL would be ")
    assert f"over the {(url_len - 100) / 1024:.1f} KB limit ({url_len - 100} bytes)" in message
    assert message.endswith(
        "pass upload=True to upload it to DashScope temporary storage, give a public URL, or resize the file"
    )


def test_default_data_url_limit_message_uses_megabytes():
    data = noise((1500, 1500), "JPEG", quality=100, subsampling=0)  # about 8.5 MB: data URL over 10 MB
    with pytest.raises(InputValidationError) as info:
        resolve_image(data, options=MediaOptions(resize=False, upload=False))
    assert "over the 10 MB limit (10485760 bytes)" in str(info.value)


# ------------------------------------------------------------------ videos


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_each_video_container_from_bytes_and_file(name, tmp_path: Path):
    data, mime = VIDEOS[name]
    media = resolve_video(data)
    assert media.kind == "video" and media.mime == mime and media.format == name
    assert media.url == f"data:{mime};base64," + base64.b64encode(data).decode()
    path = tmp_path / f"clip.{name.lower()}"
    path.write_bytes(data)
    assert resolve_video(path).url == media.url
    assert resolve_video(path.as_uri()).url == media.url


def test_video_over_100_mb_is_refused_before_reading(tmp_path: Path, monkeypatch):
    path = tmp_path / "long.mp4"
    with path.open("wb") as f:
        f.write(VIDEOS["MP4"][0])
        f.truncate(100 * 1024 * 1024 + 1)  # sparse: cheap
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or b"")
    with pytest.raises(InputValidationError) as info:
        resolve_video(path)
    assert read == []
    message = str(info.value)
    assert f"video '{path}' is 100 MB;" in message and "at most 100 MB" in message and "public http(s) URL" in message


def test_oversized_video_data_url(tmp_path: Path):
    data = VIDEOS["MOV"][0] + os.urandom(3000)
    path = tmp_path / "holiday.mov"
    path.write_bytes(data)
    media = resolve_video(path, options=MediaOptions(max_data_url_bytes=1000))
    assert media.url is None
    assert (media.pending.filename, media.pending.mime, media.pending.data) == ("holiday.mov", "video/quicktime", data)
    assert resolve_video(data, options=MediaOptions(max_data_url_bytes=1000)).pending.filename == "video.mov"
    with pytest.raises(InputValidationError, match=r"pass upload=True .* or compress the video$"):
        resolve_video(data, options=MediaOptions(max_data_url_bytes=1000, upload=False))


# ------------------------------------------------------------------ frame lists


def test_frame_count_limits():
    frame = "https://x/f.jpg"
    with pytest.raises(InputValidationError, match=r"video frame list has 3 frames; it must hold 4 to 512 images"):
        resolve_frames([frame] * 3)
    with pytest.raises(InputValidationError, match=r"has 513 frames"):
        resolve_frames([frame] * 513)
    with pytest.raises(InputValidationError, match=r"must be a list"):
        resolve_frames("https://x/f.jpg")
    assert len(resolve_frames([frame] * 512)) == 512


def test_frames_in_every_image_form(tmp_path: Path):
    path = tmp_path / "f3.png"
    path.write_bytes(image_bytes((64, 64)))
    frames = ["https://x/f1.jpg", image_bytes((64, 64), "JPEG"), path, Image.new("RGB", (64, 64))]
    out = resolve_frames(frames)
    assert [m.kind for m in out] == ["image"] * 4
    assert out[0].url == "https://x/f1.jpg"
    assert [m.mime for m in out[1:]] == ["image/jpeg", "image/png", "image/png"]


def test_frame_error_names_the_frame():
    frames = [image_bytes((64, 64))] * 4
    frames[1] = image_bytes((6, 900))
    with pytest.raises(
        InputValidationError, match=r"^frame 2 of 4 '<bytes>' is 6x900 px; each side must be more than 10 px$"
    ):
        resolve_frames(frames)
