"""Which local files may be read, and how much of them.

The rule lives here; the reading lives in :mod:`.local_files`, which opens a file once and checks
what it opened against this rule. :meth:`LocalFilePolicy.check` checks a path by name only (a
pre-check that refuses early with a clear message); it does not make a later read of that path safe.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputValidationError

__all__ = ["LocalFilePolicy"]


@dataclass(frozen=True)
class LocalFilePolicy:
    """Local-file access rule for media and document inputs (paths and ``file://`` URIs).

    ``allowed_dirs=None`` allows files anywhere (symlinks are followed). Otherwise a file is read
    only if what is actually opened is a regular file inside one of the directories (symlinks and
    ``..`` resolved), the path's last component is not a symbolic link (a link is never followed,
    so it cannot be swapped to point elsewhere between the check and the read), and it has a single
    link: a hard link can make a file outside the directories appear inside them, so files with
    more than one link are refused unless ``allow_hard_links=True``.

    ``max_file_bytes`` is the largest local file read; None keeps each reader's documented default
    (``qwen_vl_core.media.types.MAX_IMAGE_FILE_BYTES`` / ``MAX_DOCUMENT_FILE_BYTES``).
    """

    allow_local_files: bool = True
    allowed_dirs: tuple[Path, ...] | None = None
    allow_hard_links: bool = False
    max_file_bytes: int | None = None

    def __post_init__(self) -> None:
        limit = self.max_file_bytes
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"max_file_bytes must be a positive number of bytes or None, got {limit!r}")
        dirs = self.allowed_dirs
        if dirs is None:
            return
        if isinstance(dirs, (str, os.PathLike)):
            dirs = (dirs,)
        object.__setattr__(self, "allowed_dirs", tuple(Path(d) for d in dirs))

    @property
    def confined(self) -> bool:
        """True when files must lie inside ``allowed_dirs``."""
        return self.allowed_dirs is not None

    def roots(self) -> list[Path]:
        """The allowed directories, fully resolved."""
        return [Path(d).expanduser().resolve() for d in self.allowed_dirs or ()]

    def contains(self, real_path: str | Path) -> bool:
        """True if ``real_path`` (already resolved) lies inside an allowed directory (always true
        without a confinement)."""
        if self.allowed_dirs is None:
            return True
        real = Path(real_path)
        return any(real == root or real.is_relative_to(root) for root in self.roots())

    def outside_error(self, label: str) -> InputValidationError:
        allowed = ", ".join(repr(str(r)) for r in self.roots()) or "(none)"
        return InputValidationError(f"{label} is outside the allowed directories: {allowed}")

    def symlink_error(self, label: str) -> InputValidationError:
        return InputValidationError(
            f"{label} is a symbolic link; with allowed_dirs set, links are not followed "
            "(a link can be switched to point outside the allowed directories between the check and "
            "the read): give the path of the file itself"
        )

    def hard_link_error(self, label: str, links: int) -> InputValidationError:
        return InputValidationError(
            f"{label} has {links} hard links; with allowed_dirs set, a file with more than one link is "
            "refused, because a hard link can make a file outside the allowed directories appear inside "
            "them. If every file in the allowed directories is trusted, allow it with "
            "allow_hard_links=True (LocalFilePolicy)"
        )

    def check(self, path: Path, *, label: str | None = None) -> Path:
        """The resolved ``path`` if reading it is allowed by name; otherwise :class:`InputValidationError`.

        A pre-check only: read files with :func:`qwen_vl_core.media.local_files.open_local`, which
        checks what it actually opened. ``label`` names the input in messages (default:
        ``"local file '<path>'"``); messages name the input as given, never the target of a link.
        """
        label = label or f"local file {str(path)!r}"
        if not self.allow_local_files:
            raise InputValidationError(
                f"{label}: local files are disabled (allow_local_files=False); "
                "pass a URL, a data URL or the content itself instead"
            )
        try:
            given = Path(path).expanduser()
            resolved = given.resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, unreadable parent, NUL byte
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise InputValidationError(f"{label}: the path cannot be resolved ({reason})") from exc
        if self.allowed_dirs is None:
            return resolved
        if not self.contains(resolved):
            error = self.outside_error(label)
            # "..": show where the name itself leads (no link involved, so nothing is revealed)
            lexical = Path(os.path.abspath(given))
            if lexical == resolved and str(lexical) != str(path):
                error = self.outside_error(f"{label} (resolves to {str(resolved)!r})")
            raise error
        try:
            info = os.lstat(given)
        except OSError:
            return resolved  # missing or unreadable: the open says so
        if stat.S_ISLNK(info.st_mode):
            raise self.symlink_error(label)
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1 and not self.allow_hard_links:
            raise self.hard_link_error(label, info.st_nlink)
        return resolved
