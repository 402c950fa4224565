"""One exception hierarchy for every fault: bad input, configuration, transport and server.

Every error carries ``status``, ``code``, ``request_id`` and ``message`` so callers can
branch on data rather than on message text. Input and configuration errors are also
``ValueError`` subclasses, raised before any request is sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "QwenVLError",
    "InputValidationError",
    "ConfigurationError",
    "APIError",
    "BadRequestError",
    "ContentModerationError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "APITimeoutError",
    "APIConnectionError",
    "IncompleteStreamError",
    "EmptyResponseError",
    "ResponseTooLargeError",
    "error_from_response",
    "error_from_payload",
    "register_secret",
    "scrub_secrets",
]


# ---------------------------------------------------------------- secrets never kept in errors

_MIN_SECRET = 8  # shorter values are not keys, and scrubbing them would mangle ordinary text
_secrets: tuple[str, ...] = ()  # replaced whole (never mutated), so readers need no lock
_secrets_lock = threading.Lock()
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_REDACTED = "***"


def register_secret(value: Any) -> None:
    """Remember a secret (an API key) so that no error this package builds carries it.

    :func:`qwen_vl_core.config.find_api_key` registers every key it returns; values shorter than
    8 characters are ignored. Registered values live in this process only.
    """
    global _secrets
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if not isinstance(value, str) or len(value) < _MIN_SECRET or value in _secrets:
        return
    with _secrets_lock:
        if value not in _secrets:
            _secrets = tuple(sorted({*_secrets, value}, key=len, reverse=True))


def scrub_secrets(value: Any) -> Any:
    """``value`` with every registered secret, and any ``Bearer <token>``, replaced by ``***``:
    strings, and the strings inside dicts, lists and tuples (a parsed error body). Other values
    are returned as they are."""
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, _REDACTED)
        return _BEARER.sub(lambda m: m.group(1) + _REDACTED, value)
    if isinstance(value, Mapping):
        return {scrub_secrets(k): scrub_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_secrets(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_secrets(v) for v in value)
    return value


class QwenVLError(Exception):
    """Base class of every error this package raises.

    ``message`` and ``body`` are scrubbed of registered secrets (see :func:`register_secret`), so
    a server that echoes the API key back does not put it in an exception, a log or a traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        message = scrub_secrets(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = scrub_secrets(body)

    def __str__(self) -> str:
        extra = [
            f"{name}={value}"
            for name, value in (("status", self.status), ("code", self.code), ("request_id", self.request_id))
            if value is not None
        ]
        return f"{self.message} ({', '.join(extra)})" if extra else self.message

    def __reduce__(self):  # keep errors picklable (multiprocessing, LangChain tracing)
        extra = {name: self.__dict__[name] for name in ("retry_after", "limit") if name in self.__dict__}
        return (_rebuild, (type(self), self.message, self.status, self.code, self.request_id), extra or None)


def _rebuild(cls, message, status, code, request_id):
    return cls(message, status=status, code=code, request_id=request_id)


class InputValidationError(QwenVLError, ValueError):
    """Bad input found before any request was sent (media, options, messages)."""


class ConfigurationError(QwenVLError, ValueError):
    """The client cannot be configured (no API key, unknown region, ...)."""


class APIError(QwenVLError):
    """The server answered with an error."""

    retry_after: float | None = None
    """Seconds the server asked to wait before trying again (``Retry-After`` / ``retry-after-ms``), if it said."""


class BadRequestError(APIError):
    """HTTP 400: the request was rejected as invalid."""


class ContentModerationError(BadRequestError):
    """``data_inspection_failed``: input or output was blocked by content moderation."""


class AuthenticationError(APIError):
    """HTTP 401: the key is missing, wrong, or belongs to another region."""


class PermissionDeniedError(APIError):
    """HTTP 403: not allowed, not purchased, or an expired upload policy."""


class NotFoundError(APIError):
    """HTTP 404: unknown model or endpoint."""


class RateLimitError(APIError):
    """HTTP 429: throttled; retried with backoff before it reaches you.

    ``retry_after`` holds the server's wait in seconds when it sent one. A wait longer than the client's
    ``max_retry_wait`` is not slept through: the error is raised at once, so the caller can schedule.
    """


class ServerError(APIError):
    """HTTP 5xx (and 408/409 after retries)."""


class APIConnectionError(QwenVLError):
    """The server could not be reached or the connection broke."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class IncompleteStreamError(APIConnectionError):
    """A stream ended before ``[DONE]`` or a finish reason: the answer would be truncated."""


class ResponseTooLargeError(APIError):
    """The answer exceeded the client's size limit: a JSON body or one stream event over
    ``max_response_bytes``, or a whole stream over ``max_stream_bytes`` (``limit`` holds the limit).
    Nothing more was read, and the request is not resent."""

    limit: int | None = None


class EmptyResponseError(APIError):
    """A successful (HTTP 200) answer that holds no answer: a message with no content (``null``),
    no tool calls and no reasoning. A protocol fault, not a model that chose to say nothing (an
    empty string is returned as empty text). Carries the ``request_id``; not retried (the server
    may have billed it)."""


_CODE_CLASSES: dict[str, type[APIError]] = {
    "datainspectionfailed": ContentModerationError,
    "data_inspection_failed": ContentModerationError,
    "invalidapikey": AuthenticationError,
    "invalid_api_key": AuthenticationError,
    "accessdenied": PermissionDeniedError,
    "modelnotfound": NotFoundError,
    "model_not_found": NotFoundError,
    "model_not_supported": NotFoundError,
    "throttling": RateLimitError,
    "limit_requests": RateLimitError,
    "insufficient_quota": RateLimitError,
    "internalerror": ServerError,
    "internal_error": ServerError,
    "modelservingerror": ServerError,
    "modelunavailable": ServerError,
    "requesttimeout": ServerError,
}

_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def _class_for(status: int | None, code: str | None) -> type[APIError]:
    if code:
        key = code.lower()
        if key in _CODE_CLASSES:
            return _CODE_CLASSES[key]
        head = key.split(".", 1)[0]
        if head in _CODE_CLASSES:
            return _CODE_CLASSES[head]
    if status is not None:
        if status in _STATUS_CLASSES:
            return _STATUS_CLASSES[status]
        if status >= 500 or status in (408, 409):
            return ServerError
        if 400 <= status < 500:
            return BadRequestError
    return APIError


def error_from_payload(
    payload: Any, *, status: int | None = None, request_id: str | None = None
) -> APIError:
    """Build the typed error for a parsed error body of either mode.

    Compatible mode: ``{"error": {"message", "type", "code"}, "request_id"?}``;
    native mode: ``{"code", "message", "request_id"}``.
    """
    message = None
    code = None
    if isinstance(payload, Mapping):
        err = payload.get("error")
        if isinstance(err, Mapping):
            message = err.get("message")
            code = err.get("code") or err.get("type")
        elif isinstance(err, str):
            message = err
        if message is None:
            message = payload.get("message")
        code = code or payload.get("code")
        request_id = payload.get("request_id") or payload.get("id") or request_id
    elif isinstance(payload, str) and payload.strip():
        message = _shorten(payload)
    code = str(code) if code is not None else None
    if not message:
        message = f"DashScope returned HTTP {status}" if status else "DashScope returned an error"
    cls = _class_for(status, code)
    return cls(str(message), status=status, code=code, request_id=request_id, body=payload)


def error_from_response(status: int, content: bytes, headers: Mapping[str, str]) -> APIError:
    """Build the typed error for an HTTP error response (JSON, SSE-framed JSON, OSS XML, HTML or empty)."""
    request_id = (
        headers.get("x-request-id") or headers.get("x-dashscope-request-id") or headers.get("x-oss-request-id")
    )
    text = content.decode("utf-8", "replace").strip()
    payload: Any = text
    oss = _oss_error(text)
    if oss is not None:
        payload = oss
    elif text:
        candidate = text
        if candidate.startswith("data:") or candidate.startswith("event:") or candidate.startswith("id:"):
            data_lines = [
                line[5:].strip() for line in candidate.splitlines() if line.startswith("data:")
            ]
            candidate = "\n".join(data_lines)
        try:
            payload = json.loads(candidate)
        except ValueError:
            if "<html" in text[:500].lower():
                payload = f"non-JSON error page: {_shorten(_strip_tags(text))}"
    return error_from_payload(payload, status=status, request_id=request_id)


def _oss_error(text: str) -> dict[str, str | None] | None:
    """``<Error><Code>..</Code><Message>..</Message><RequestId>..</RequestId></Error>`` (the upload host's
    answers) as a native-mode error payload; None for any other body."""
    if not text.startswith("<") or "<Error>" not in text[:200]:
        return None
    fields = {tag: _xml_tag(text, tag) for tag in ("Code", "Message", "RequestId")}
    if not (fields["Code"] or fields["Message"]):
        return None
    return {"code": fields["Code"], "message": fields["Message"] or fields["Code"], "request_id": fields["RequestId"]}


def _xml_tag(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return match.group(1).strip() if match and match.group(1).strip() else None


def _strip_tags(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
