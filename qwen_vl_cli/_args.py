"""Argument groups shared by the subcommands that call the API (analyze, reason, ocr)."""

from __future__ import annotations

import argparse

from ._common import add_connection_args
from ._output import DEFAULT_OUTPUT_DIR

__all__ = ["add_request_args", "add_media_args", "add_output_args", "add_api_args"]


def add_request_args(
    parser: argparse.ArgumentParser, *, video: bool = True, multi_image: bool = True, continuation: bool = True
) -> None:
    group = parser.add_argument_group("request")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--request", metavar="JSON", help="the request as a JSON object (fields: see above)")
    source.add_argument("--request-file", metavar="FILE", help="read the request JSON from FILE ('-' for stdin)")
    group.add_argument("--prompt", help="shortcut: set the request's prompt")
    group.add_argument(
        "--image",
        action="append",
        metavar="SRC",
        help="shortcut: an image (URL, local path, data: or oss:// URL)"
        + ("; repeat for several images" if multi_image else ""),
    )
    if video:
        group.add_argument("--video", metavar="SRC", help="shortcut: a video file (URL, local path, data: or oss:// URL)")
    group.add_argument("--model", help="shortcut: set the request's model")
    if continuation:
        group.add_argument(
            "--continue-from",
            metavar="FILE",
            help="continue an answer that was cut off (DashScope's partial mode): FILE is the result "
            "JSON this command saved (its text is continued, and its request reused unless you give "
            "another) or a text file holding the beginning of the answer",
        )


def add_media_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("local files")
    group.add_argument(
        "--upload-files",
        action="store_true",
        help="upload local files too large for a data URL (about 7 MB and up) to DashScope temporary "
        "storage (oss://, 48 h) instead of failing",
    )
    group.add_argument(
        "--no-resize",
        action="store_true",
        help="send local images as they are (by default an image larger than the model ever looks at is "
        "downscaled first, which does not change the answer or the tokens billed)",
    )


def add_output_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--output",
        metavar="PATH",
        help=f"save the JSON result here (a file, or a directory for a timestamped file; default: {DEFAULT_OUTPUT_DIR}/)",
    )
    where.add_argument("--no-save", action="store_true", help="do not save the JSON result")
    group.add_argument(
        "--save-raw",
        action="store_true",
        help="keep the model's raw response (the JSON answer, or the stream's events) beside the "
        "normalized result, as its \"raw_response\" field",
    )
    group.add_argument(
        "--print-response",
        action="store_true",
        help="print the JSON result on stdout (then stdout holds only the JSON; live text goes to stderr)",
    )


def add_api_args(parser: argparse.ArgumentParser) -> None:
    add_media_args(parser)
    add_output_args(parser)
    add_connection_args(parser)
