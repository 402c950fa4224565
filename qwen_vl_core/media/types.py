"""Options in, results out: the data types of media resolution, and the documented input limits."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from ..tokens import VIDEO_MAX_FRAMES, VIDEO_MIN_FRAMES
from .policy import LocalFilePolicy

__all__ = [
    "MediaOptions",
    "PendingUpload",
    "ResolvedMedia",
    "MAX_DATA_URL_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_VIDEO_UPLOAD_BYTES",
    "MAX_IMAGE_FILE_BYTES",
    "MAX_DOCUMENT_FILE_BYTES",
    "MIN_SIDE_PX",
    "MAX_ASPECT_RATIO",
    "MIN_FRAMES",
    "MAX_FRAMES",
    "megabytes",
]

MAX_DATA_URL_BYTES = 10 * 1024 * 1024  # server: "max bytes per data-uri item : 10485760"
#: One image (or frame) as sent, for models the registry gives no other figure for. Per model, by URL
#: or temporary upload: ``ModelCapabilities.max_image_bytes`` (004: 20 MB for Qwen3.5, 10 MB for the
#: others; 003 said 10 MB for all); a data URL stays under :data:`MAX_DATA_URL_BYTES` for every model.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_VIDEO_UPLOAD_BYTES = 100 * 1024 * 1024  # a local video through temporary storage
#: A local image (or video frame) file read to be checked and downscaled: a larger file is refused
#: from its size, before a byte of it is read (``max_file_bytes`` changes it).
MAX_IMAGE_FILE_BYTES = 100 * 1024 * 1024
#: A PDF or TIFF file read by the document pipeline: a larger file is refused from its size, before
#: it is read or parsed (``max_file_bytes`` changes it).
MAX_DOCUMENT_FILE_BYTES = 512 * 1024 * 1024
MIN_SIDE_PX = 10  # each side must be MORE than this
MAX_ASPECT_RATIO = 200  # long side / short side, at most
MIN_FRAMES = VIDEO_MIN_FRAMES
MAX_FRAMES = VIDEO_MAX_FRAMES


def megabytes(n: int) -> str:
    """``n`` bytes as ``"12.3 MB"`` / ``"10 MB"`` (MB = 1024 * 1024 bytes, as DashScope counts)."""
    if n >= 1024**3:
        value, unit = n / 1024**3, "GB"
    elif n >= 104858:
        value, unit = n / 1048576, "MB"
    else:
        value, unit = n / 1024, "KB"
    text = f"{value:.1f}"
    return f"{text[:-2] if text.endswith('.0') else text} {unit}"


@dataclass(frozen=True)
class MediaOptions:
    """How local media are prepared: downscale, upload of large files, local-file policy.

    ``max_file_bytes`` is the largest local file read, in bytes; None keeps the defaults
    (:data:`MAX_IMAGE_FILE_BYTES` for an image or frame, :data:`MAX_DOCUMENT_FILE_BYTES` for a PDF or
    TIFF in the document pipeline; a local video stays within :data:`MAX_VIDEO_UPLOAD_BYTES`). It is
    carried by the policy, which every local read goes through (``policy.max_file_bytes``).
    """

    resize: bool = True
    upload: bool = True
    policy: LocalFilePolicy = LocalFilePolicy()
    max_data_url_bytes: int = MAX_DATA_URL_BYTES
    max_file_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_file_bytes is None:
            object.__setattr__(self, "max_file_bytes", self.policy.max_file_bytes)
        elif self.policy.max_file_bytes != self.max_file_bytes:
            object.__setattr__(self, "policy", replace(self.policy, max_file_bytes=self.max_file_bytes))


@dataclass
class PendingUpload:
    """A payload too large for a data URL, waiting for :class:`~qwen_vl_core.media.UploadSession`."""

    data: bytes
    filename: str
    mime: str
    source: str

    def __repr__(self) -> str:  # never dump megabytes into logs
        size = len(self.data)
        return f"PendingUpload(filename={self.filename!r}, mime={self.mime!r}, size={size}, source={self.source!r})"


@dataclass
class ResolvedMedia:
    """One media input, ready for the wire (``url``) or for upload (``pending``, then set ``url``).

    ``width``/``height`` are the original size as displayed (EXIF orientation applied);
    ``sent_width``/``sent_height`` the size actually sent. ``notes`` records silent decisions
    (first frame of a multi-page TIFF, HEIC size unchecked, ...).
    """

    kind: Literal["image", "video"]
    url: str | None
    pending: PendingUpload | None
    source: str
    mime: str | None
    width: int | None
    height: int | None
    sent_width: int | None
    sent_height: int | None
    sent_bytes: int
    resized: bool
    format: str | None = None
    notes: list[str] = field(default_factory=list)
    duration_s: float | None = None  # videos: read from an MP4/MOV header when local

    def __repr__(self) -> str:
        url = self.url if self.url is None or not self.url.startswith("data:") else f"<data URL, {len(self.url)} chars>"
        size = f", {self.sent_width}x{self.sent_height}" if self.sent_width else ""
        return (
            f"ResolvedMedia(kind={self.kind!r}, source={self.source!r}, url={url!r}, "
            f"mime={self.mime!r}{size}, sent_bytes={self.sent_bytes}, resized={self.resized}, "
            f"pending={self.pending!r})"
        )
