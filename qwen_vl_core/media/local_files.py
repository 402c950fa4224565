"""Local files, opened once and checked for what was actually opened: the one way the core reads a path.

A path that an agent or a document chooses is hostile. If a path is checked and then opened again,
the file can be swapped for a symbolic link (or a folder on the way for a link to another folder)
in between, and a file outside the allowed directories is read. So :func:`open_local` opens the
path exactly once and checks the open descriptor, not the name:

- with ``allowed_dirs`` set, the last component is opened with ``O_NOFOLLOW`` (a symbolic link there
  is refused, never followed); without a confinement, links are followed as the user expects;
- ``fstat`` says it is a regular file (a directory, FIFO or device is refused; a FIFO cannot block
  the open, which is non-blocking);
- with ``allowed_dirs`` set, the descriptor's real path, as the kernel reports it
  (``/proc/self/fd/N`` on Linux, ``F_GETPATH`` on macOS; elsewhere the inode is compared with the
  path resolved before opening), lies inside an allowed directory, and the file has a single link
  (a hard link can make an outside file appear inside; ``allow_hard_links=True`` allows them);
- its size, from the descriptor, is within the limit before anything is read; reads come from
  that descriptor and stop past the limit (a file that grows while read is refused too).

Refusals are :class:`~qwen_vl_core.errors.InputValidationError` naming the input as given (never the
target of a link), its size and the limit.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO, Literal

from ..errors import InputValidationError
from .policy import LocalFilePolicy
from .types import MAX_DOCUMENT_FILE_BYTES, MAX_IMAGE_FILE_BYTES, megabytes

__all__ = ["LocalFile", "open_local", "read_local", "file_limit"]

_CHUNK = 1 << 20


def file_limit(policy: LocalFilePolicy | None, kind: Literal["image", "document"]) -> int:
    """The largest local file of this kind ``policy`` lets be read: its ``max_file_bytes``, else the
    documented default (:data:`~.types.MAX_IMAGE_FILE_BYTES`, :data:`~.types.MAX_DOCUMENT_FILE_BYTES`)."""
    if policy is not None and policy.max_file_bytes is not None:
        return policy.max_file_bytes
    return MAX_IMAGE_FILE_BYTES if kind == "image" else MAX_DOCUMENT_FILE_BYTES


class LocalFile:
    """An open, checked local file. ``file`` is a binary file object on the checked descriptor
    (for header reads by Pillow or pypdfium2); :meth:`read` returns the whole content, bounded."""

    def __init__(self, file: BinaryIO, *, label: str, size: int, name: str, limit: int | None) -> None:
        self.file = file
        self.label = label  # names the input as given, for messages
        self.size = size  # from fstat at open
        self.name = name  # the file's own name (basename)
        self._limit = limit

    def __enter__(self) -> "LocalFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalFile({self.label}, {self.size} bytes)"

    def close(self) -> None:
        self.file.close()

    def limit(self, max_bytes: int | None, hint: str = "") -> "LocalFile":
        """Refuse the file if it is larger than ``max_bytes`` (from its size, nothing read); later
        reads stop there too. ``hint`` replaces the default "the limit is ..." text."""
        if max_bytes is not None:
            self._limit = max_bytes if self._limit is None else min(self._limit, max_bytes)
            if self.size > max_bytes:
                raise _too_big(self.label, self.size, max_bytes, hint)
        return self

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes (the position is left at the start)."""
        self.file.seek(0)
        data = self.file.read(n)
        self.file.seek(0)
        return data

    def read(self) -> bytes:
        """The whole file from the start, never more than the limit (a file that grew past it since
        it was opened is refused rather than read on)."""
        self.file.seek(0)
        limit = self._limit
        first = self.file.read(self.size if limit is None else min(self.size, limit)) if self.size else b""
        parts = [first]
        total = len(first)
        while True:  # to the end: the file may have grown since fstat (or be a /proc-like file of size 0)
            want = _CHUNK if limit is None else min(_CHUNK, limit + 1 - total)
            chunk = self.file.read(want)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
            if limit is not None and total > limit:
                raise InputValidationError(
                    f"{self.label} grew past the limit of {megabytes(limit)} while it was read"
                )
        return first if len(parts) == 1 else b"".join(parts)


def _too_big(label: str, size: int, limit: int, hint: str) -> InputValidationError:
    if hint:
        return InputValidationError(f"{label} is {megabytes(size)}; {hint}")
    return InputValidationError(
        f"{label} is {megabytes(size)} ({size} bytes); the limit is {megabytes(limit)} ({limit} bytes); "
        "raise max_file_bytes to read larger files"
    )


def open_local(
    path: str | os.PathLike[str],
    policy: LocalFilePolicy | None,
    *,
    label: str | None = None,
    max_bytes: int | None = None,
    too_big_hint: str = "",
) -> LocalFile:
    """Open ``path`` once under ``policy`` and check what was opened (see the module docstring).

    ``label`` names the input in messages (default ``"local file '<path>'"``); ``max_bytes``
    refuses a larger file from its size, before reading (``too_big_hint`` replaces the default
    text about the limit). Close the result (it is a context manager).
    """
    policy = policy or LocalFilePolicy()
    shown = os.fspath(path)
    label = label or f"local file {shown!r}"
    resolved = policy.check(Path(shown), label=label)  # by name first: refuse early, clearly
    given = os.path.expanduser(shown)
    confined = policy.confined
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open; no effect on regular files
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    if confined:
        flags |= nofollow
    try:
        fd = os.open(given, flags)
    except OSError as exc:
        raise _open_error(exc, label, given, policy) from None
    except ValueError as exc:  # NUL byte
        raise InputValidationError(f"{label}: not a valid path ({exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputValidationError(f"{label} is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise InputValidationError(f"{label} is not a regular file")
        real = _opened_path(fd)
        if confined:
            _check_opened(info, real, resolved, given, nofollow, label, policy)
        if max_bytes is not None and info.st_size > max_bytes:
            raise _too_big(label, info.st_size, max_bytes, too_big_hint)
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    name = Path(real).name if real and not real.endswith(" (deleted)") else resolved.name
    return LocalFile(file, label=label, size=info.st_size, name=name, limit=max_bytes)


def read_local(
    path: str | os.PathLike[str],
    policy: LocalFilePolicy | None,
    *,
    label: str | None = None,
    max_bytes: int | None,
    too_big_hint: str = "",
) -> bytes:
    """The content of ``path``, opened once and checked (:func:`open_local`), at most ``max_bytes``."""
    with open_local(path, policy, label=label, max_bytes=max_bytes, too_big_hint=too_big_hint) as local:
        return local.read()


# ---------------------------------------------------------------- what was opened


def _opened_path(fd: int) -> str | None:
    """The real path of an open descriptor as the kernel knows it, or None where it cannot say."""
    if sys.platform.startswith("linux"):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None  # no /proc
    if sys.platform == "darwin":
        try:
            import fcntl

            raw = fcntl.fcntl(fd, getattr(fcntl, "F_GETPATH", 50), bytes(1024))
            return os.fsdecode(raw.split(b"\0", 1)[0]) or None
        except OSError:
            return None
    return None


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _check_opened(
    info: os.stat_result,
    real: str | None,
    resolved: Path,
    given: str,
    nofollow: int,
    label: str,
    policy: LocalFilePolicy,
) -> None:
    if real is not None and real.endswith(" (deleted)"):
        try:
            if not _same_file(os.stat(real), info):
                raise InputValidationError(f"{label} was removed while it was being opened")
        except OSError:
            raise InputValidationError(f"{label} was removed while it was being opened") from None
    if real is not None:
        if not policy.contains(real):
            raise policy.outside_error(label)
    else:
        # No kernel path: the file opened must be the one the checked name resolved to.
        try:
            now = os.stat(resolved)
        except OSError:
            now = None
        if now is None or not _same_file(now, info):
            raise InputValidationError(f"{label} changed while it was being opened; not read")
        if not nofollow:  # no O_NOFOLLOW on this system: the name must still not be a link
            try:
                if stat.S_ISLNK(os.lstat(given).st_mode):
                    raise policy.symlink_error(label)
            except OSError:
                raise InputValidationError(f"{label} changed while it was being opened; not read") from None
    if info.st_nlink > 1 and not policy.allow_hard_links:
        raise policy.hard_link_error(label, info.st_nlink)


def _open_error(exc: OSError, label: str, given: str, policy: LocalFilePolicy) -> InputValidationError:
    code = exc.errno
    if code in (errno.ELOOP, getattr(errno, "EMLINK", None), getattr(errno, "EFTYPE", None)) and policy.confined:
        try:
            is_link = stat.S_ISLNK(os.lstat(given).st_mode)
        except OSError:
            is_link = False
        if is_link:
            return policy.symlink_error(label)
    if code == errno.ENOENT:
        where = f" (looked for {os.path.abspath(given)!r})" if not os.path.isabs(given) else ""
        return InputValidationError(f"{label}: no such file{where}")
    if code in (errno.EACCES, errno.EPERM):
        return InputValidationError(f"{label} is not readable (permission denied)")
    if code == errno.EISDIR:
        return InputValidationError(f"{label} is a directory, not a file")
    return InputValidationError(f"{label}: cannot be read ({exc.strerror or exc})")
