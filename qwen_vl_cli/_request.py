"""The normalized request: load it (``--request`` / ``--request-file`` / shortcut flags), check
every field, and turn it into core messages and options.

Field names follow the seed scripts (``prompt``, ``image``, ``images``, ``video``,
``video_frames``, ``model``, ``max_tokens``, ``temperature``, ``detail``, ...). Unknown fields
are refused, so a typo (``"imgae"``) is an error instead of a request without the image.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.models import get_capabilities

from ._common import CLIError

__all__ = ["Prepared", "Continuation", "load_continuation", "continue_answer", "load_request", "prepare", "ANALYZE_FIELDS", "REASON_FIELDS", "OCR_FIELDS", "LOW_DETAIL_TOKENS"]

#: ``detail: "low"`` caps each image at this many visual tokens (max_pixels = LOW_DETAIL_TOKENS * patch^2,
#: 524,288 px for 32-px models such as Qwen3-VL, 401,408 px for 28-px models such as QVQ).
LOW_DETAIL_TOKENS = 512

_STR = ("prompt", "image", "video", "model", "detail", "task")
_STR_LIST = ("images", "video_frames")
_INT = ("max_tokens", "max_completion_tokens", "thinking_budget", "min_pixels", "max_pixels", "max_retries", "seed")
_NUM = ("temperature", "top_p", "fps", "retry_backoff_s")
_BOOL = ("enable_thinking", "high_resolution", "json_mode")
_OBJ = ("task_config",)

_COMMON = frozenset(
    {
        "prompt", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
        "detail", "high_resolution", "min_pixels", "max_pixels", "max_retries", "retry_backoff_s",
    }
)
_MEDIA = frozenset({"image", "images", "video", "video_frames", "fps"})
ANALYZE_FIELDS = _COMMON | _MEDIA | {"enable_thinking", "thinking_budget", "json_mode", "schema"}
REASON_FIELDS = _COMMON | _MEDIA | {"enable_thinking", "thinking_budget"}
OCR_FIELDS = _COMMON | {"image", "task", "task_config"}

# Request fields passed to the core as options under the same name.
_OPTION_FIELDS = (
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "enable_thinking",
    "thinking_budget", "high_resolution", "min_pixels", "max_pixels", "fps",
)


@dataclass
class Prepared:
    """A checked request, ready for ``QwenVLClient.chat`` / ``stream``."""

    messages: list[dict[str, Any]]
    model: str
    options: dict[str, Any]
    request: dict[str, Any]  # the request as given, with the effective model (for the output record)
    max_retries: int | None = None
    retry_backoff_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # recorded beside the request (prompt_sent, ...)
    prefix: str | None = None  # --continue-from: the beginning of the answer, continued in partial mode

    @property
    def prompt(self) -> str | None:
        return self.request.get("prompt")


def _read_text(path: str, what: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CLIError(f"{what} {path!r}: no such file") from None
    except IsADirectoryError:
        raise CLIError(f"{what} {path!r} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise CLIError(f"{what} {path!r} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise CLIError(f"{what} {path!r} cannot be read ({exc.strerror or exc})") from None


def _parse_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CLIError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CLIError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


@dataclass
class Continuation:
    """``--continue-from FILE``: the answer's beginning, and the request of a saved result."""

    path: str
    text: str
    request: dict[str, Any] | None = None


def load_continuation(args: argparse.Namespace, command: str, known: frozenset[str]) -> Continuation | None:
    """Read ``--continue-from``: a result JSON saved by ``command`` (its ``text`` is the beginning,
    its ``request`` is reused when no other is given) or a plain text file (the beginning)."""
    path = getattr(args, "continue_from", None)
    if path is None:
        return None
    text = _read_text(path, "--continue-from")
    saved: Any = None
    if text.lstrip().startswith("{"):
        try:
            saved = json.loads(text)
        except ValueError:
            saved = None
    request = None
    if isinstance(saved, dict) and isinstance(saved.get("text"), str):
        if saved.get("command") not in (None, command):
            raise CLIError(
                f"--continue-from {path!r} is a result of 'qwen-vl {saved['command']}', not of 'qwen-vl {command}'"
            )
        text = saved["text"]
        if isinstance(saved.get("request"), dict):
            request = {k: v for k, v in saved["request"].items() if k in known}
            if "<data URL" in json.dumps(request):
                request = None  # its inline images were not kept in the file: the request must be given again
    if not text.strip():
        raise CLIError(f"--continue-from {path!r} holds no answer to continue (it is empty)")
    return Continuation(path, text, request)


def load_request(
    args: argparse.Namespace, *, shortcuts: str = "--prompt and --image", base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The request object from ``--request`` / ``--request-file`` (else ``base``, a saved request),
    with shortcut flags applied. ``shortcuts`` names the flags that can stand in for a request in
    the error for none given."""
    if args.request is not None:
        request = _parse_object(args.request, "--request")
    elif args.request_file is not None:
        request = _parse_object(_read_text(args.request_file, "--request-file"), f"--request-file {args.request_file!r}")
    else:
        request = dict(base or {})
    if getattr(args, "prompt", None) is not None:
        request["prompt"] = args.prompt
    if getattr(args, "model", None) is not None:
        request["model"] = args.model
    images = getattr(args, "image", None)
    video = getattr(args, "video", None)
    if images or video:
        for key in ("image", "images", "video", "video_frames"):
            request.pop(key, None)
        if images:
            request["image" if len(images) == 1 else "images"] = images[0] if len(images) == 1 else list(images)
        if video:
            request["video"] = video
    if not request:
        raise CLIError(f"give the request with --request JSON or --request-file FILE (or {shortcuts})")
    return request


# ---------------------------------------------------------------- field checks


def _type_name(value: Any) -> str:
    return "null" if value is None else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _check_types(request: dict[str, Any], known: frozenset[str], command: str) -> None:
    unknown = sorted(set(request) - known)
    if unknown:
        raise InputValidationError(
            f"unknown request field{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)} "
            f"for '{command}'; known fields: {', '.join(sorted(known))}"
        )
    for key, value in request.items():
        if value is None:
            continue  # null means "not set"
        bad = None
        if key in _STR and not isinstance(value, str):
            bad = "a string"
        elif key in _STR_LIST and not (
            isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
        ):
            bad = "a non-empty array of strings"
        elif key in _INT and (isinstance(value, bool) or not isinstance(value, int)):
            bad = "an integer"
        elif key in _NUM and (isinstance(value, bool) or not isinstance(value, (int, float))):
            bad = "a number"
        elif key in _BOOL and not isinstance(value, bool):
            bad = "true or false"
        elif key in _OBJ and not isinstance(value, dict):
            bad = "a JSON object"
        elif key == "schema" and not isinstance(value, (dict, str)):
            bad = "a JSON Schema object or the path of a .json file"
        if bad:
            raise InputValidationError(f"request field {key!r} must be {bad}, got {_type_name(value)} {_brief(value)}")
        if key in _STR and not value.strip() and key != "prompt":
            raise InputValidationError(f"request field {key!r} is empty")


def _brief(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _media_parts(request: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if request.get("image"):
        parts.append({"type": "image_url", "image_url": {"url": request["image"]}})
    for url in request.get("images") or []:
        parts.append({"type": "image_url", "image_url": {"url": url}})
    if request.get("video"):
        parts.append({"type": "video_url", "video_url": {"url": request["video"]}})
    if request.get("video_frames"):
        parts.append({"type": "video", "video": list(request["video_frames"])})
    return parts


def _apply_detail(request: dict[str, Any], options: dict[str, Any], model: str) -> None:
    detail = request.get("detail")
    if detail is None or detail == "auto":
        return
    if detail == "high":
        if request.get("high_resolution") is False:
            raise InputValidationError("detail 'high' asks for high_resolution, but high_resolution is false")
        options["high_resolution"] = True
    elif detail == "low":
        if request.get("high_resolution"):
            raise InputValidationError("detail 'low' and high_resolution true contradict each other; give one")
        if request.get("max_pixels") is not None:
            raise InputValidationError("detail 'low' sets max_pixels; give either detail or max_pixels")
        patch = get_capabilities(model).patch_size
        options["max_pixels"] = LOW_DETAIL_TOKENS * patch * patch
    else:
        raise InputValidationError(f"request field 'detail' must be 'auto', 'low' or 'high', got {detail!r}")


def prepare(
    request: dict[str, Any],
    *,
    command: str,
    known: frozenset[str],
    default_model: str,
    prompt_required: bool = True,
    media_required: bool = True,
) -> Prepared:
    """Check ``request`` and build messages and options (no file is read here; the core does that)."""
    _check_types(request, known, command)
    request = {k: v for k, v in request.items() if v is not None}
    model = request.get("model") or default_model
    request["model"] = model
    prompt = request.get("prompt")
    if prompt_required and not (isinstance(prompt, str) and prompt.strip()):
        raise InputValidationError(f"request field 'prompt' is required for '{command}' (the question or instruction)")
    parts = _media_parts(request)
    if media_required and not parts:
        inputs = [k for k in ("image", "images", "video", "video_frames") if k in known]
        raise InputValidationError(f"the request has no input; give one of: {', '.join(inputs)}")
    if "fps" in request and not (request.get("video") or request.get("video_frames")):
        raise InputValidationError("request field 'fps' applies to a video or video_frames, and the request has neither")
    options = {key: request[key] for key in _OPTION_FIELDS if key in request}
    _apply_detail(request, options, model)
    retries = request.get("max_retries")
    if retries is not None and retries < 0:
        raise InputValidationError(f"max_retries must be 0 or more, got {retries}")
    backoff = request.get("retry_backoff_s")
    if backoff is not None and backoff < 0:
        raise InputValidationError(f"retry_backoff_s must be 0 or more, got {backoff}")
    content: list[dict[str, Any]] = list(parts)
    if prompt:
        content.append({"type": "text", "text": prompt})
    return Prepared(
        messages=[{"role": "user", "content": content}],
        model=model,
        options=options,
        request=request,
        max_retries=retries,
        retry_backoff_s=float(backoff) if backoff is not None else None,
    )


def set_prompt(prepared: Prepared, prompt: str) -> None:
    """Replace the text part sent (the recorded request keeps the user's prompt; the sent one is noted)."""
    content = prepared.messages[0]["content"]
    for part in content:
        if part.get("type") == "text":
            part["text"] = prompt
            break
    else:
        content.append({"type": "text", "text": prompt})
    prepared.notes["prompt_sent"] = prompt


def continue_answer(prepared: Prepared, continuation: Continuation | None) -> None:
    """Set the answer's beginning to continue (``--continue-from``), noted in the recorded request."""
    if continuation is None:
        return
    prepared.prefix = continuation.text
    prepared.notes["continued_from"] = {"file": continuation.path, "characters": len(continuation.text)}
