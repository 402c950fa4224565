"""Size and duration of MP4 / MOV files from their ISO-BMFF boxes (``moov/mvhd``, ``trak/tkhd``),
without a video library. Other containers are not probed: ``None``."""

from __future__ import annotations

import io

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["VideoInfo", "probe_mp4"]

_MAX_MOOV = 64 * 1024 * 1024
_CONTAINERS = {b"trak", b"mdia", b"minf", b"stbl", b"edts"}


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration_s: float


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """Yield (type, payload start, payload end) for the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _find_moov(fh: BinaryIO, file_size: int) -> bytes | None:
    pos = 0
    while pos + 8 <= file_size:
        fh.seek(pos)
        head = fh.read(16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1:
            if len(head) < 16:
                return None
            size = struct.unpack_from(">Q", head, 8)[0]
            header = 16
        elif size == 0:
            size = file_size - pos
        if size < header:
            return None
        if kind == b"moov":
            if size > _MAX_MOOV:
                return None
            fh.seek(pos + header)
            return fh.read(size - header)
        pos += size
    return None


def _mvhd_duration(data: bytes, start: int, end: int) -> float | None:
    if end - start < 20:
        return None
    version = data[start]
    if version == 1:
        if end - start < 32:
            return None
        timescale, duration = struct.unpack_from(">IQ", data, start + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, start + 12)
    if not timescale or duration in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        return None
    return duration / timescale


def _tkhd_size(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    version = data[start] if end > start else 0
    # version 0: 4 flags/version + 20 (times, id, reserved, duration); version 1: 4 + 32
    body = start + (36 if version == 1 else 24)
    matrix = body + 8 + 8  # reserved(8) layer(2) alternate_group(2) volume(2) reserved(2)
    dims = matrix + 36
    if dims + 8 > end:
        return None
    a, b = struct.unpack_from(">ii", data, matrix)
    width, height = struct.unpack_from(">II", data, dims)
    width, height = width >> 16, height >> 16
    if not width or not height:
        return None
    if a == 0 and abs(b) == 0x10000:  # rotated by 90 or 270 degrees: displayed the other way round
        width, height = height, width
    return width, height


def probe_mp4(source: str | Path | bytes) -> VideoInfo | None:
    """Display size and duration of an MP4/MOV file (a path or its bytes), or ``None`` when they
    cannot be read. Only the ``moov`` box is parsed; nothing is decoded."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            moov = _find_moov(io.BytesIO(source), len(source))
        else:
            path = Path(source)
            with path.open("rb") as fh:
                moov = _find_moov(fh, path.stat().st_size)
    except OSError:
        return None
    if moov is None:
        return None
    duration = None
    size = None
    for kind, start, end in _boxes(moov):
        if kind == b"mvhd":
            duration = _mvhd_duration(moov, start, end)
        elif kind == b"trak" and size is None:
            for sub, s, e in _boxes(moov, start, end):
                if sub == b"tkhd":
                    size = _tkhd_size(moov, s, e)
    if duration is None or size is None:
        return None
    return VideoInfo(size[0], size[1], duration)
