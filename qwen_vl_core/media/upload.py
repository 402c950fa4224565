"""DashScope temporary storage: upload a large local file, get an ``oss://`` URL (valid 48 h).

Flow (as the official ``dashscope`` SDK does it): ``GET {policy_url}?action=getPolicy&model=...``
once per session, then one multipart ``POST {upload_host}`` per file, signed by the policy rather
than by the API key. The caller sends ``X-DashScope-OssResourceResolve: enable`` with the request.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from .._http import TIMEOUT_ERRORS, TRANSPORT_ERRORS, httpx, module_of

from ..errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    InputValidationError,
    error_from_payload,
    error_from_response,
)
from .sources import megabytes
from .types import PendingUpload

__all__ = ["UploadSession", "AsyncUploadSession", "UploadPolicy", "object_key", "form_fields"]

_EXPIRY_MARGIN_S = 10.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_POLICY_FIELDS = ("policy", "signature", "upload_dir", "upload_host", "oss_access_key_id")


@dataclass(frozen=True)
class UploadPolicy:
    """A parsed getPolicy answer."""

    policy: str
    signature: str
    upload_dir: str
    upload_host: str
    oss_access_key_id: str
    x_oss_object_acl: str | None
    x_oss_forbid_overwrite: str | None
    max_file_size_mb: float | None
    expires_at: float | None  # time.monotonic() deadline, with a safety margin
    request_id: str | None

    def expired(self) -> bool:
        return self.expires_at is not None and time.monotonic() >= self.expires_at


def object_key(upload_dir: str, filename: str) -> str:
    """``upload_dir/<uuid4 hex>_<safe basename>``, keeping the file's extension."""
    stem, ext = os.path.splitext(os.path.basename(filename))
    stem = _SAFE.sub("_", stem).strip("._")[:64] or "file"
    ext = _SAFE.sub("", ext)[:12].lower()
    return f"{upload_dir.rstrip('/')}/{uuid.uuid4().hex}_{stem}{ext}"


def form_fields(policy: UploadPolicy, key: str, mime: str) -> dict[str, str]:
    """The OSS post-form fields, in order; the ``file`` part goes after them."""
    fields = {
        "OSSAccessKeyId": policy.oss_access_key_id,
        "Signature": policy.signature,
        "policy": policy.policy,
        "key": key,
        "x-oss-object-acl": policy.x_oss_object_acl,
        "x-oss-forbid-overwrite": policy.x_oss_forbid_overwrite,
        "success_action_status": "200",
        "x-oss-content-type": mime,
    }
    return {name: value for name, value in fields.items() if value is not None}


class _Core:
    """The I/O-free half shared by the sync and async sessions."""

    def __init__(self, policy_url: str, headers: Mapping[str, str], model: str) -> None:
        if not model:
            raise InputValidationError("an upload session needs the model name (uploads are bound to one model)")
        self.policy_url = policy_url
        self.headers = dict(headers)
        self.model = model

    def policy_params(self) -> dict[str, str]:
        return {"action": "getPolicy", "model": self.model}

    @staticmethod
    def parse_policy(response: httpx.Response) -> UploadPolicy:
        if response.status_code != 200:
            raise error_from_response(response.status_code, response.content, response.headers)
        request_id = response.headers.get("x-request-id")
        try:
            body = response.json()
        except ValueError:
            raise APIError(
                "getPolicy returned a non-JSON answer", status=response.status_code, request_id=request_id
            ) from None
        data = body.get("data") if isinstance(body, Mapping) else None
        request_id = (body.get("request_id") if isinstance(body, Mapping) else None) or request_id
        missing = [name for name in _POLICY_FIELDS if not isinstance(data, Mapping) or not data.get(name)]
        if missing:
            raise APIError(
                f"getPolicy answer lacks {', '.join(missing)}",
                status=response.status_code,
                request_id=request_id,
                body=body,
            )
        assert isinstance(data, Mapping)
        expire = _number(data.get("expire_in_seconds"))
        return UploadPolicy(
            policy=str(data["policy"]),
            signature=str(data["signature"]),
            upload_dir=str(data["upload_dir"]),
            upload_host=str(data["upload_host"]),
            oss_access_key_id=str(data["oss_access_key_id"]),
            x_oss_object_acl=_text(data.get("x_oss_object_acl")),
            x_oss_forbid_overwrite=_text(data.get("x_oss_forbid_overwrite")),
            max_file_size_mb=_number(data.get("max_file_size_mb")),
            expires_at=time.monotonic() + max(0.0, expire - _EXPIRY_MARGIN_S) if expire else None,
            request_id=request_id,
        )

    @staticmethod
    def build_post(
        policy: UploadPolicy, pending: PendingUpload, timeout: httpx.Timeout, http: Any = httpx
    ) -> tuple[httpx.Request, str]:
        """The multipart POST (built without the client's default headers: no API key) and its key."""
        size = len(pending.data)
        limit = policy.max_file_size_mb
        if limit is not None and size > limit * 1048576:
            kind = "video" if pending.mime.startswith("video/") else "image"
            raise InputValidationError(
                f"{kind} {pending.source!r} is {megabytes(size)}; DashScope temporary storage accepts at most "
                f"{limit:g} MB per file"
            )
        key = object_key(policy.upload_dir, pending.filename)
        request = http.Request(
            "POST",
            policy.upload_host,
            data=form_fields(policy, key, pending.mime),
            files={"file": (key.rsplit("/", 1)[-1], pending.data, pending.mime)},
            extensions={"timeout": timeout.as_dict()},
        )
        return request, key

    @staticmethod
    def upload_error(response: httpx.Response, pending: PendingUpload) -> tuple[APIError, bool]:
        """The typed error for a failed POST, and whether it says the policy expired."""
        text = response.content.decode("utf-8", "replace")
        code = _xml_tag(text, "Code")
        message = _xml_tag(text, "Message")
        request_id = _xml_tag(text, "RequestId") or response.headers.get("x-oss-request-id")
        if code or message:
            error = error_from_payload(
                {
                    "code": code,
                    "message": f"uploading {pending.source!r} to DashScope temporary storage failed: {message or code}",
                    "request_id": request_id,
                },
                status=response.status_code,
            )
        else:
            error = error_from_response(response.status_code, response.content, response.headers)
        expired = response.status_code == 403 and "policy expired" in text.lower()
        return error, expired


class UploadSession:
    """Uploads files for one request: fetches the policy once and reuses it for every file."""

    def __init__(self, client: httpx.Client, *, policy_url: str, headers: Mapping[str, str], model: str) -> None:
        self._client = client
        self._core = _Core(policy_url, headers, model)
        self._policy: UploadPolicy | None = None
        self._lock = threading.Lock()

    def upload(self, pending: PendingUpload) -> str:
        """Upload ``pending`` and return its ``oss://`` URL."""
        policy = self._get_policy()
        for attempt in range(2):
            request, key = self._core.build_post(policy, pending, self._client.timeout, module_of(self._client))
            response = _call(partial(self._client.send, auth=None), request, "temporary storage upload")
            if response.is_success:
                return "oss://" + key
            error, expired = self._core.upload_error(response, pending)
            if not (expired and attempt == 0):
                raise error
            policy = self._get_policy(stale=policy)
        raise AssertionError("unreachable")

    def _get_policy(self, stale: UploadPolicy | None = None) -> UploadPolicy:
        with self._lock:
            current = self._policy
            if current is None or current.expired() or current is stale:
                request = self._client.build_request(
                    "GET", self._core.policy_url, params=self._core.policy_params(), headers=self._core.headers
                )
                response = _call(self._client.send, request, "getPolicy")
                current = self._policy = self._core.parse_policy(response)
            return current


class AsyncUploadSession:
    """Async :class:`UploadSession` over an ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient, *, policy_url: str, headers: Mapping[str, str], model: str) -> None:
        self._client = client
        self._core = _Core(policy_url, headers, model)
        self._policy: UploadPolicy | None = None
        self._lock = asyncio.Lock()

    async def upload(self, pending: PendingUpload) -> str:
        """Upload ``pending`` and return its ``oss://`` URL."""
        policy = await self._get_policy()
        for attempt in range(2):
            request, key = self._core.build_post(policy, pending, self._client.timeout, module_of(self._client))
            response = await _acall(self._client.send(request, auth=None), "temporary storage upload")
            if response.is_success:
                return "oss://" + key
            error, expired = self._core.upload_error(response, pending)
            if not (expired and attempt == 0):
                raise error
            policy = await self._get_policy(stale=policy)
        raise AssertionError("unreachable")

    async def _get_policy(self, stale: UploadPolicy | None = None) -> UploadPolicy:
        async with self._lock:
            current = self._policy
            if current is None or current.expired() or current is stale:
                response = await _acall(
                    self._client.get(
                        self._core.policy_url, params=self._core.policy_params(), headers=self._core.headers
                    ),
                    "getPolicy",
                )
                current = self._policy = self._core.parse_policy(response)
            return current


def _call(send: Callable[..., httpx.Response], request: httpx.Request, what: str) -> httpx.Response:
    try:
        return send(request)
    except TIMEOUT_ERRORS as exc:
        raise APITimeoutError(f"{what} timed out ({exc})") from exc
    except TRANSPORT_ERRORS as exc:
        raise APIConnectionError(f"{what} failed: {exc}") from exc


async def _acall(send: Any, what: str) -> httpx.Response:
    try:
        return await send
    except TIMEOUT_ERRORS as exc:
        raise APITimeoutError(f"{what} timed out ({exc})") from exc
    except TRANSPORT_ERRORS as exc:
        raise APIConnectionError(f"{what} failed: {exc}") from exc


def _xml_tag(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return match.group(1).strip() if match else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
