"""Cut README.md into its ``## `` sections and pull out the ```python snippets of one of them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section(heading_prefix: str) -> str:
    """The text of the ``## `` section whose heading starts with ``heading_prefix``."""
    text = README.read_text(encoding="utf-8")
    parts = re.split(r"(?m)^(?=## )", text)
    for part in parts:
        if part.startswith("## " + heading_prefix):
            return part
    raise AssertionError(f"README.md has no section starting with '## {heading_prefix}'")


def python_snippets(heading_prefix: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section(heading_prefix), re.S)
