"""Orchestration: any input form -> validated, downscaled, encoded wire URL (or a pending upload).

Everything is checked locally before a request is sent; each error names the input and the limit.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from ..errors import InputValidationError
from ..models import DEFAULT_MODEL, ModelCapabilities, get_capabilities
from ..tokens import frame_list_tokens
from .probe import ImageHeader, ImageProbeError, TruncatedImageError, probe_image, probe_mp4
from .formats import EXTENSIONS, IMAGE_FORMATS, VIDEO_FORMATS, describe_format, detect_format
from .resize import downscale, encode, oriented_size, plan_downscale, prepare, wants_lossless
from .sources import Loaded, load_source, megabytes
from .types import (
    MAX_ASPECT_RATIO,
    MAX_FRAMES,
    MAX_IMAGE_BYTES,
    MAX_VIDEO_UPLOAD_BYTES,
    MIN_FRAMES,
    MIN_SIDE_PX,
    MediaOptions,
    PendingUpload,
    ResolvedMedia,
)

__all__ = ["resolve_image", "resolve_video", "resolve_frames", "resolve_encoded", "image_byte_limit"]

_DEFAULT_OPTIONS = MediaOptions()
# Formats re-encoded (as PNG) even when no downscale is needed: BMP is uncompressed, and TIFF may
# use compressions or page layouts the server does not read.
_TRANSCODED = frozenset({"BMP", "TIFF"})


@dataclass(frozen=True)
class _Geometry:
    model: str | ModelCapabilities
    high_resolution: bool
    min_pixels: int | None
    max_pixels: int | None
    frames: int | None = None  # set for a frame list: its length

    def target(self, width: int, height: int) -> tuple[int, int] | None:
        size = plan_downscale(
            width,
            height,
            self.model,
            high_resolution=self.high_resolution,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
        )
        if size is not None and self.frames is not None:
            # Frames may be resized by the video rules: keep that estimate unchanged too.
            n = self.frames
            if frame_list_tokens([size] * n, self.model) != frame_list_tokens([(width, height)] * n, self.model):
                return None
        return size


def image_byte_limit(model: str | ModelCapabilities) -> int:
    """The largest image ``model`` takes by URL or temporary upload, from the registry (004: 20 MB
    for Qwen3.5, 10 MB for the others; :data:`~.types.MAX_IMAGE_BYTES` when unknown). A data URL
    is held to :data:`~.types.MAX_DATA_URL_BYTES` on top of that, for every model."""
    caps = model if isinstance(model, ModelCapabilities) else get_capabilities(model)
    return caps.max_image_bytes if caps.known else MAX_IMAGE_BYTES


def _model_name(model: str | ModelCapabilities) -> str:
    return model.name if isinstance(model, ModelCapabilities) else model


def resolve_image(
    value: Any,
    *,
    model: str | ModelCapabilities = DEFAULT_MODEL,
    high_resolution: bool = False,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    options: MediaOptions = _DEFAULT_OPTIONS,
    label: str | None = None,
) -> ResolvedMedia:
    """Validate one image in any accepted form and make its wire URL (or a pending upload).
    ``label`` names bytes in messages (e.g. the file they were read from)."""
    geometry = _Geometry(model, high_resolution, min_pixels, max_pixels)
    return _resolve_image(value, "image", geometry, options, label)


def resolve_frames(
    frames: Sequence[Any],
    *,
    model: str | ModelCapabilities = DEFAULT_MODEL,
    high_resolution: bool = False,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    options: MediaOptions = _DEFAULT_OPTIONS,
) -> list[ResolvedMedia]:
    """Resolve a video given as a list of 4 to 512 images (each in any image form)."""
    if isinstance(frames, (str, bytes, bytearray)) or not isinstance(frames, Sequence):
        raise InputValidationError(
            f"a video frame list must be a list of {MIN_FRAMES} to {MAX_FRAMES} images, got {type(frames).__name__}"
        )
    n = len(frames)
    if not MIN_FRAMES <= n <= MAX_FRAMES:
        raise InputValidationError(
            f"video frame list has {n} frame{'s' if n != 1 else ''}; it must hold {MIN_FRAMES} to {MAX_FRAMES} images"
        )
    geometry = _Geometry(model, high_resolution, min_pixels, max_pixels, frames=n)
    return [_resolve_image(frame, f"frame {i} of {n}", geometry, options) for i, frame in enumerate(frames, 1)]


def resolve_video(value: Any, *, options: MediaOptions = _DEFAULT_OPTIONS) -> ResolvedMedia:
    """Validate one video file in any accepted form and make its wire URL (or a pending upload)."""
    too_big = (
        f"a local video may be at most {megabytes(MAX_VIDEO_UPLOAD_BYTES)} (DashScope temporary storage); "
        "give a public http(s) URL for larger videos"
    )
    loaded = load_source(
        value,
        what="video",
        policy=options.policy,
        allow_pil=False,
        max_file_bytes=MAX_VIDEO_UPLOAD_BYTES,
        too_big_hint=too_big,
    )
    if loaded.url is not None:
        return _passthrough("video", loaded)
    named = f"video {loaded.source!r}"
    data = loaded.data
    assert data is not None
    info = detect_format(data)
    if info is None or info[0] != "video" or info[1] not in VIDEO_FORMATS:
        raise _format_error(named, info, "video")
    _, fmt, mime = info
    if len(data) > MAX_VIDEO_UPLOAD_BYTES:
        raise InputValidationError(f"{named} is {megabytes(len(data))}; {too_big}")
    url, pending = _wire(named, loaded, data, mime, "video", options)
    probed = probe_mp4(data) if fmt in ("MP4", "MOV") else None
    return ResolvedMedia(
        kind="video",
        url=url,
        pending=pending,
        source=loaded.source,
        mime=mime,
        width=probed.width if probed else None,
        height=probed.height if probed else None,
        sent_width=None,
        sent_height=None,
        sent_bytes=len(data),
        resized=False,
        format=fmt,
        duration_s=probed.duration_s if probed else None,
    )


# ------------------------------------------------------------------------------------------ images


@dataclass
class _Payload:
    data: bytes
    mime: str
    width: int | None
    height: int | None
    resized: bool = False


def _resolve_image(
    value: Any, what: str, geometry: _Geometry, options: MediaOptions, label: str | None = None
) -> ResolvedMedia:
    loaded = load_source(value, what=what, policy=options.policy)
    if label is not None and loaded.url is None:
        loaded.source = label
    if loaded.url is not None:
        return _passthrough("image", loaded)
    named = f"{what} {loaded.source!r}"
    notes: list[str] = []
    if loaded.image is not None:
        fmt = getattr(loaded.image, "format", None)
        width, height = oriented_size(loaded.image)
        _check_dimensions(named, width, height)
        payload = _from_pil(named, loaded.image, width, height, geometry, options)
    else:
        data = loaded.data
        assert data is not None
        info = detect_format(data)
        if info is None or info[0] != "image" or info[1] not in IMAGE_FORMATS:
            raise _format_error(named, info, "image")
        fmt = info[1]
        if fmt == "HEIC":
            payload, width, height = _from_heic(named, data, geometry, options, notes)
        else:
            payload, width, height = _from_file(named, data, fmt, geometry, options, notes)
    limit = image_byte_limit(geometry.model)
    if len(payload.data) > limit:
        hint = "pass resize=True or lower max_pixels" if not options.resize else "lower max_pixels or compress the file"
        raise InputValidationError(
            f"{named} is {megabytes(len(payload.data))} as sent ({payload.mime}); each image may be at most "
            f"{megabytes(limit)} ({limit} bytes) for {_model_name(geometry.model)!r}; {hint}"
        )
    url, pending = _wire(named, loaded, payload.data, payload.mime, "image", options)
    return ResolvedMedia(
        kind="image",
        url=url,
        pending=pending,
        source=loaded.source,
        mime=payload.mime,
        width=width,
        height=height,
        sent_width=payload.width,
        sent_height=payload.height,
        sent_bytes=len(payload.data),
        resized=payload.resized,
        format=fmt,
        notes=notes,
    )


def _from_file(
    named: str, data: bytes, fmt: str, geometry: _Geometry, options: MediaOptions, notes: list[str]
) -> tuple[_Payload, int, int]:
    header = _probe(named, data, fmt)
    assert header is not None  # HEIC goes through _from_heic
    width, height = header.display_size
    _check_pixels(named, width, height)
    _check_dimensions(named, width, height)
    original = _Payload(data, IMAGE_FORMATS[fmt], width, height)
    target = geometry.target(width, height) if options.resize else None
    if target is None and fmt not in _TRANSCODED:
        return original, width, height  # sent as it is: read from its header, no pixel decoded

    from PIL import Image

    # Pillow reports a TIFF's display size and turns it upright as it decodes; other formats are
    # turned upright here, by the orientation read from the header (as Pillow's getexif reads it).
    upright_already = fmt == "TIFF"
    expected = header.display_size if upright_already else (header.width, header.height)
    try:
        img = Image.open(BytesIO(data), formats=[fmt])
        if img.size != expected:
            raise ValueError(f"the decoder reads {img.width}x{img.height}, the header {expected[0]}x{expected[1]}")
        frames = getattr(img, "n_frames", 1)
    except Image.DecompressionBombError as exc:
        raise InputValidationError(f"{named} is too large to decode safely ({exc})") from exc
    except Exception as exc:
        raise InputValidationError(f"{named}: cannot be read as {fmt} ({exc})") from exc
    multipage = fmt == "TIFF" and frames > 1
    lossless = wants_lossless(fmt, img, data)
    try:
        pixels, icc = prepare(img, target, orientation=1 if upright_already else header.orientation)
        if target is not None:
            pixels = downscale(pixels, target)
        out, mime = encode(pixels, lossless=lossless, icc_profile=icc)
    except Exception as exc:
        raise InputValidationError(f"{named}: cannot be decoded as {fmt} ({exc})") from exc
    if multipage:
        notes.append(f"{fmt} has {frames} pages; only the first is sent")
    elif len(out) >= len(data):
        if target is not None:
            notes.append("the downscaled image was not smaller than the file; sent the original")
        return original, width, height
    elif frames > 1:
        notes.append(f"{fmt} has {frames} frames; only the first is sent")
    return _Payload(out, mime, pixels.width, pixels.height, resized=target is not None), width, height


def _probe(named: str, data: bytes, fmt: str) -> ImageHeader | None:
    """Header facts and the structural checks (a whole file, not one cut off), without decoding."""
    try:
        return probe_image(data, fmt)
    except TruncatedImageError as exc:
        raise InputValidationError(
            f"{named}: the {fmt} file is truncated ({exc}); it was probably cut off while copying or "
            "downloading: use a complete copy"
        ) from None
    except ImageProbeError as exc:
        raise InputValidationError(f"{named}: cannot be read as {fmt} ({exc})") from None


def _from_pil(named: str, img: Any, width: int, height: int, geometry: _Geometry, options: MediaOptions) -> _Payload:
    target = geometry.target(width, height) if options.resize else None
    lossless = target is None or wants_lossless(getattr(img, "format", None), img)
    try:
        pixels, icc = prepare(img, owned=False)
        if target is not None:
            pixels = downscale(pixels, target)
        out, mime = encode(pixels, lossless=lossless, icc_profile=icc)
    except Exception as exc:
        raise InputValidationError(f"{named}: cannot be encoded ({exc})") from exc
    return _Payload(out, mime, pixels.width, pixels.height, resized=target is not None)


def _from_heic(
    named: str, data: bytes, geometry: _Geometry, options: MediaOptions, notes: list[str]
) -> tuple[_Payload, int | None, int | None]:
    _probe(named, data, "HEIC")  # the boxes only: the size needs pillow-heif
    heif = _pillow_heif()
    original = _Payload(data, IMAGE_FORMATS["HEIC"], None, None)
    if heif is None:
        notes.append("HEIC size not checked and not resized (install pillow-heif to enable)")
        return original, None, None
    try:
        heif_file = heif.open_heif(BytesIO(data), convert_hdr_to_8bit=True)
        width, height = heif_file.size
    except Exception as exc:
        raise InputValidationError(f"{named}: cannot be read as HEIC ({exc})") from exc
    _check_dimensions(named, width, height)
    original.width, original.height = width, height
    target = geometry.target(width, height) if options.resize else None
    if target is None:
        return original, width, height
    try:
        # libheif has already applied the HEIF rotation: no EXIF transpose here.
        pixels = downscale(heif_file.to_pillow().convert("RGB"), target)
        out, mime = encode(pixels, lossless=False)
    except Exception as exc:
        raise InputValidationError(f"{named}: cannot be decoded as HEIC ({exc})") from exc
    if len(out) >= len(data):
        notes.append("the downscaled image was not smaller than the file; sent the original")
        return original, width, height
    return _Payload(out, mime, target[0], target[1], resized=True), width, height


def _pillow_heif() -> Any:
    try:
        import pillow_heif  # type: ignore[import-not-found]
    except ImportError:
        return None
    return pillow_heif


# ------------------------------------------------------------------------------------------ shared


def _check_pixels(named: str, width: int, height: int) -> None:
    """Pillow's decompression-bomb limit, also for an image sent without decoding (the server decodes it)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > 2 * limit:
        raise InputValidationError(
            f"{named} is too large to decode safely ({width}x{height} = {width * height} pixels; "
            f"Pillow's limit is {2 * limit} pixels)"
        )


def _check_dimensions(named: str, width: int, height: int) -> None:
    if width <= MIN_SIDE_PX or height <= MIN_SIDE_PX:
        raise InputValidationError(f"{named} is {width}x{height} px; each side must be more than {MIN_SIDE_PX} px")
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        raise InputValidationError(
            f"{named} is {width}x{height} px, an aspect ratio of {ratio:.1f}:1; "
            f"the long side may be at most {MAX_ASPECT_RATIO} times the short side"
        )


def _format_error(named: str, info: tuple[str, str, str] | None, expected: str) -> InputValidationError:
    accepted = ", ".join(IMAGE_FORMATS if expected == "image" else VIDEO_FORMATS)
    detected = describe_format(info)
    if info is not None and info[0] in ("image", "video") and info[0] != expected:
        detected += f", not {'an image' if expected == 'image' else 'a video'}"
    return InputValidationError(f"{named}: detected {detected}; accepted {expected} formats: {accepted}")


def _passthrough(kind: str, loaded: Loaded) -> ResolvedMedia:
    return ResolvedMedia(
        kind=kind,  # type: ignore[arg-type]
        url=loaded.url,
        pending=None,
        source=loaded.source,
        mime=None,
        width=None,
        height=None,
        sent_width=None,
        sent_height=None,
        sent_bytes=0,
        resized=False,
    )


def _wire(
    named: str, loaded: Loaded, data: bytes, mime: str, kind: str, options: MediaOptions
) -> tuple[str | None, PendingUpload | None]:
    """A data URL, or a pending upload when the data URL would exceed the limit."""
    prefix = f"data:{mime};base64,"
    length = len(prefix) + 4 * ((len(data) + 2) // 3)
    limit = options.max_data_url_bytes
    if length <= limit:
        return prefix + base64.b64encode(data).decode("ascii"), None
    if options.upload:
        stem = Path(loaded.filename).stem if loaded.filename else kind
        filename = stem + EXTENSIONS.get(mime, "")
        return None, PendingUpload(data=data, filename=filename, mime=mime, source=loaded.source)
    fix = "resize the file" if kind == "image" else "compress the video"
    raise InputValidationError(
        f"{named}: the data URL would be {megabytes(length)}, {megabytes(length - limit)} over the "
        f"{megabytes(limit)} limit ({limit} bytes); pass upload=True to upload it to DashScope temporary "
        f"storage, give a public URL, or {fix}"
    )


def resolve_encoded(
    data: bytes,
    *,
    mime: str,
    width: int,
    height: int,
    source: str,
    path: str | None = None,
    options: MediaOptions = _DEFAULT_OPTIONS,
) -> ResolvedMedia:
    """An image this package encoded itself (a rendered page, a PDF's embedded JPEG) made ready
    for the wire without decoding or sniffing it again: size checks, the byte limit, and a data
    URL (or a pending upload). ``path`` is the local file it came from, if any (upload name)."""
    named = f"image {source!r}"
    _check_dimensions(named, width, height)
    if len(data) > MAX_IMAGE_BYTES:
        raise InputValidationError(
            f"{named} is {megabytes(len(data))} as sent ({mime}); each image may be at most "
            f"{megabytes(MAX_IMAGE_BYTES)} ({MAX_IMAGE_BYTES} bytes)"
        )
    loaded = Loaded(source=source, data=data, filename=path)
    url, pending = _wire(named, loaded, data, mime, "image", options)
    return ResolvedMedia(
        kind="image",
        url=url,
        pending=pending,
        source=source,
        mime=mime,
        width=width,
        height=height,
        sent_width=width,
        sent_height=height,
        sent_bytes=len(data),
        resized=False,
        format=mime.split("/")[-1].upper(),
    )
