"""Which local files may be read: checked on the fully resolved path, before anything is opened."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputValidationError

__all__ = ["LocalFilePolicy"]


@dataclass(frozen=True)
class LocalFilePolicy:
    """Local-file access rule for media inputs (paths and ``file://`` URIs).

    ``allowed_dirs=None`` allows files anywhere; otherwise a file must lie inside one of the
    directories after symlinks and ``..`` are resolved, so neither can be used to escape.
    """

    allow_local_files: bool = True
    allowed_dirs: tuple[Path, ...] | None = None

    def __post_init__(self) -> None:
        dirs = self.allowed_dirs
        if dirs is None:
            return
        if isinstance(dirs, (str, os.PathLike)):
            dirs = (dirs,)
        object.__setattr__(self, "allowed_dirs", tuple(Path(d) for d in dirs))

    def check(self, path: Path, *, label: str | None = None) -> Path:
        """The resolved ``path`` if reading it is allowed; otherwise :class:`InputValidationError`.

        ``label`` names the input in the message (default: ``"local file '<path>'"``).
        """
        label = label or f"local file {str(path)!r}"
        if not self.allow_local_files:
            raise InputValidationError(
                f"{label}: local files are disabled (allow_local_files=False); "
                "pass a URL, a data URL or the content itself instead"
            )
        try:
            resolved = Path(path).expanduser().resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, unreadable parent, NUL byte
            raise InputValidationError(f"{label}: the path cannot be resolved ({exc})") from exc
        if self.allowed_dirs is None:
            return resolved
        roots = [Path(d).expanduser().resolve() for d in self.allowed_dirs]
        if any(resolved == root or resolved.is_relative_to(root) for root in roots):
            return resolved
        allowed = ", ".join(repr(str(r)) for r in roots) or "(none)"
        where = f" (resolves to {str(resolved)!r})" if str(resolved) != str(path) else ""
        raise InputValidationError(f"{label}{where} is outside the allowed directories: {allowed}")
