"""What the reader and the captioner ask for in each mode, and how answers are tidied up."""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["Mode", "MODES", "PROMPTS", "prompt_for", "clean_output"]

Mode = Literal["caption", "ocr", "markdown", "caption+ocr"]
MODES: tuple[str, ...] = ("caption", "ocr", "markdown", "caption+ocr")

CAPTION = (
    "Describe this image so that it can be found by search. Say what it shows and what kind of "
    "image it is (photo, scanned page, chart, table, diagram, screenshot, form, ...); name the "
    "people, objects, places and logos you can identify; for charts and tables give the title, "
    "axes or columns and the key values; quote the headline or most prominent text. Write plain "
    "prose in the language of the text in the image (English if there is none), without a preamble."
)

OCR = (
    "Transcribe all text in this image exactly as it appears, in natural reading order. Keep the "
    "original language, spelling, numbers, punctuation and line breaks; do not translate, correct, "
    "summarize, describe or add anything. Output only the transcribed text. If the image contains "
    "no text, output nothing."
)

MARKDOWN = (
    "Convert this document page to Markdown. Reproduce all text verbatim in reading order, without "
    "translating or correcting it. Use # headings for titles and section headings, Markdown lists, "
    "**bold** and *italic* where the page uses them, Markdown tables for tables, and LaTeX ($...$, "
    "$$...$$) for formulas. For a figure, photo or chart write one line: "
    "![short description of what it shows](). Leave out page headers, footers and page numbers. "
    "Output only the Markdown, not wrapped in a code block."
)

CAPTION_OCR = (
    "Describe this image, then transcribe its text. Answer in exactly this format:\n\n"
    "## Description\n"
    "<what the image shows and what kind of image it is (photo, scanned page, chart, table, form, "
    "...); for charts and tables the title, axes or columns and key values>\n\n"
    "## Text\n"
    "<all text in the image, verbatim and in reading order, keeping line breaks; no translation or "
    "correction. Write (none) if there is no text.>"
)

PROMPTS: dict[str, str] = {"caption": CAPTION, "ocr": OCR, "markdown": MARKDOWN, "caption+ocr": CAPTION_OCR}


def prompt_for(mode: str, prompt: str | None = None) -> str:
    if mode not in PROMPTS:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return prompt if prompt else PROMPTS[mode]


_WHOLE_FENCE = re.compile(r"^\s*```[a-zA-Z]*[ \t]*\n(.*?)\n?```\s*$", re.S)
_DESCRIPTION = re.compile(r"^\s*(?:#+\s*|\*\*)?description(?:\*\*)?\s*:?\s*(?:\*\*)?\s*$", re.I | re.M)
_TEXT = re.compile(
    r"^\s*(?:#+\s*|\*\*)?(?:text|transcription|transcribed text)(?:\*\*)?\s*:?\s*(?:\*\*)?\s*$", re.I | re.M
)


def clean_output(text: str, mode: str) -> str:
    """Strip a code fence around the whole answer; give ``caption+ocr`` answers one stable layout
    (``## Description`` then ``## Text``). Text that does not fit the layout is kept as it is."""
    text = text.strip()
    fenced = _WHOLE_FENCE.match(text)
    if fenced and mode in ("markdown", "ocr", "caption+ocr"):
        text = fenced.group(1).strip()
    if mode != "caption+ocr":
        return text
    d = _DESCRIPTION.search(text)
    t = _TEXT.search(text)
    if not d or not t or t.start() < d.end() or text[: d.start()].strip():
        return text
    description = text[d.end() : t.start()].strip()
    transcript = text[t.end() :].strip() or "(none)"
    return f"## Description\n{description}\n\n## Text\n{transcript}"
