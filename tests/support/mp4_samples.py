"""Minimal MP4 files with a real ``moov`` box (size, duration, rotation) for probing tests."""

from __future__ import annotations

import struct
from pathlib import Path


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _mvhd(timescale: int, duration: int, version: int = 0) -> bytes:
    if version == 1:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    return _box(b"mvhd", bytes([version, 0, 0, 0]) + times + b"\0" * 80)


def _tkhd(width: int, height: int, *, rotate: bool = False, version: int = 0) -> bytes:
    """ISO/IEC 14496-12 TrackHeaderBox: times/id/duration, reserved, layer, group, volume, matrix, size."""
    matrix = [0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000] if rotate else [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000]
    if version == 1:
        head = struct.pack(">QQIIQ", 0, 0, 1, 0, 0)
    else:
        head = struct.pack(">IIIII", 0, 0, 1, 0, 0)
    rest = b"\0" * 8 + struct.pack(">hhhH", 0, 0, 0, 0) + struct.pack(">9i", *matrix)
    return _box(b"tkhd", bytes([version, 0, 0, 3]) + head + rest + struct.pack(">II", width << 16, height << 16))


def write_mp4(path: Path, width: int, height: int, seconds: float, *, rotate: bool = False, version: int = 0) -> Path:
    audio = _box(b"trak", _tkhd(0, 0, version=version))  # audio tracks have no size: skipped
    video = _box(b"trak", _tkhd(width, height, rotate=rotate, version=version))
    moov = _box(b"moov", _mvhd(1000, int(seconds * 1000), version) + audio + video)
    path.write_bytes(_box(b"ftyp", b"isom\0\0\2\0isomiso2mp41") + _box(b"mdat", b"\0" * 64) + moov)
    return path


def mp4_bytes(width: int, height: int, seconds: float, *, rotate: bool = False) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return write_mp4(Path(tmp) / "v.mp4", width, height, seconds, rotate=rotate).read_bytes()
