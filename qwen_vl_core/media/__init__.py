"""Media input resolution: any image or video form -> a validated wire URL.

``resolve_image`` / ``resolve_video`` / ``resolve_frames`` accept URLs (passed through), ``data:``
URLs, ``oss://`` URLs, local paths, ``file://`` URIs, bytes and (images) PIL images; they check
format, size and aspect ratio before any request, downscale images token-neutrally, and leave
files too large for a data URL as ``pending`` for an :class:`UploadSession`.
"""

from .formats import IMAGE_FORMATS, VIDEO_FORMATS, detect_format
from .policy import LocalFilePolicy
from .resolve import resolve_encoded, resolve_frames, resolve_image, resolve_video
from .sources import is_remote_url
from .types import (
    MAX_DATA_URL_BYTES,
    MAX_IMAGE_BYTES,
    MAX_VIDEO_UPLOAD_BYTES,
    MediaOptions,
    PendingUpload,
    ResolvedMedia,
)
from .upload import AsyncUploadSession, UploadSession

__all__ = [
    "MediaOptions",
    "ResolvedMedia",
    "PendingUpload",
    "LocalFilePolicy",
    "resolve_image",
    "resolve_video",
    "resolve_frames",
    "resolve_encoded",
    "is_remote_url",
    "UploadSession",
    "AsyncUploadSession",
    "detect_format",
    "IMAGE_FORMATS",
    "VIDEO_FORMATS",
    "MAX_DATA_URL_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_VIDEO_UPLOAD_BYTES",
]
