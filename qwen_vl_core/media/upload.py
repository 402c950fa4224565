"""DashScope temporary storage: upload a large local file, get an ``oss://`` URL (valid 48 h).

Flow (as the official ``dashscope`` SDK does it): ``GET {policy_url}?action=getPolicy&model=...``
once per session, then one multipart ``POST {upload_host}`` per file, signed by the policy rather
than by the API key. The caller sends ``X-DashScope-OssResourceResolve: enable`` with the request.
Both calls go through the :class:`~qwen_vl_core.transport.Transport` and its retry policy; this
module only builds them and reads the answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._http import httpx
from ..errors import APIError, InputValidationError, error_from_response
from ..transport import Response, Transport
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

    def policy_request(self) -> dict[str, Any]:
        """The getPolicy GET, as :meth:`Transport.request` arguments."""
        return dict(
            headers=self.headers, params={"action": "getPolicy", "model": self.model}, what="getPolicy", raw=True
        )

    @staticmethod
    def parse_policy(response: Response) -> UploadPolicy:
        request_id = response.request_id
        if response.status != 200:  # a 2xx/3xx other than 200: not the answer the flow expects
            raise error_from_response(response.status, response.data, response.headers)
        try:
            body = json.loads(response.data)
        except ValueError:
            raise APIError(
                "getPolicy returned a non-JSON answer", status=response.status, request_id=request_id
            ) from None
        data = body.get("data") if isinstance(body, Mapping) else None
        request_id = (body.get("request_id") if isinstance(body, Mapping) else None) or request_id
        missing = [name for name in _POLICY_FIELDS if not isinstance(data, Mapping) or not data.get(name)]
        if missing:
            raise APIError(
                f"getPolicy answer lacks {', '.join(missing)}",
                status=response.status,
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
    def post(policy: UploadPolicy, pending: PendingUpload) -> _PostForm:
        """The multipart POST of one file (checked against the policy's size limit first)."""
        size = len(pending.data)
        limit = policy.max_file_size_mb
        if limit is not None and size > limit * 1048576:
            kind = "video" if pending.mime.startswith("video/") else "image"
            raise InputValidationError(
                f"{kind} {pending.source!r} is {megabytes(size)}; DashScope temporary storage accepts at most "
                f"{limit:g} MB per file"
            )
        return _PostForm(policy, pending)

    @staticmethod
    def post_request(form: _PostForm) -> dict[str, Any]:
        """The POST, as :meth:`Transport.request` arguments: presigned, so no API key and no client headers."""
        return dict(form=form, presigned=True, what="temporary storage upload", raw=True)

    @staticmethod
    def upload_error(error: APIError, pending: PendingUpload) -> tuple[APIError, bool]:
        """The error naming the file, and whether it says the policy expired."""
        expired = error.status == 403 and any(
            "policy expired" in str(text).lower() for text in (error.message, error.body)
        )
        named = type(error)(
            f"uploading {pending.source!r} to DashScope temporary storage failed: {error.message}",
            status=error.status,
            code=error.code,
            request_id=error.request_id,
            body=error.body,
        )
        return named, expired


class _PostForm:
    """The multipart body of one file's POST, for :attr:`RequestOptions.form`.

    Each attempt names a fresh object: the policy forbids overwriting, so retrying under the key
    of an attempt whose answer was lost (but whose file was stored) would fail with 409.
    """

    def __init__(self, policy: UploadPolicy, pending: PendingUpload) -> None:
        self.policy = policy
        self.pending = pending
        self.key = ""

    def __call__(self) -> tuple[dict[str, str], dict[str, Any]]:
        self.key = object_key(self.policy.upload_dir, self.pending.filename)
        files = {"file": (self.key.rsplit("/", 1)[-1], self.pending.data, self.pending.mime)}
        return form_fields(self.policy, self.key, self.pending.mime), files


class UploadSession:
    """Uploads files for one request: fetches the policy once and reuses it for every file.

    ``transport`` is the client's :class:`~qwen_vl_core.transport.Transport` (or an ``httpx.Client``,
    wrapped in one): both the getPolicy call and the POST go through its retry policy.
    """

    def __init__(
        self, transport: Transport | httpx.Client, *, policy_url: str, headers: Mapping[str, str], model: str
    ) -> None:
        self._transport = transport if isinstance(transport, Transport) else Transport(http_client=transport)
        self._core = _Core(policy_url, headers, model)
        self._policy: UploadPolicy | None = None
        self._lock = threading.Lock()

    def upload(self, pending: PendingUpload) -> str:
        """Upload ``pending`` and return its ``oss://`` URL."""
        policy = self._get_policy()
        for attempt in range(2):
            form = self._core.post(policy, pending)
            try:
                self._transport.request("POST", policy.upload_host, **self._core.post_request(form))
                return "oss://" + form.key
            except APIError as exc:
                error, expired = self._core.upload_error(exc, pending)
                if not (expired and attempt == 0):
                    raise error from None
            policy = self._get_policy(stale=policy)
        raise AssertionError("unreachable")

    def _get_policy(self, stale: UploadPolicy | None = None) -> UploadPolicy:
        with self._lock:
            current = self._policy
            if current is None or current.expired() or current is stale:
                response = self._transport.request("GET", self._core.policy_url, **self._core.policy_request())
                current = self._policy = self._core.parse_policy(response)
            return current


class AsyncUploadSession:
    """Async :class:`UploadSession` (a :class:`~qwen_vl_core.transport.Transport` or an ``httpx.AsyncClient``)."""

    def __init__(
        self, transport: Transport | httpx.AsyncClient, *, policy_url: str, headers: Mapping[str, str], model: str
    ) -> None:
        self._transport = transport if isinstance(transport, Transport) else Transport(async_http_client=transport)
        self._core = _Core(policy_url, headers, model)
        self._policy: UploadPolicy | None = None
        self._lock = asyncio.Lock()

    async def upload(self, pending: PendingUpload) -> str:
        """Upload ``pending`` and return its ``oss://`` URL."""
        policy = await self._get_policy()
        for attempt in range(2):
            form = self._core.post(policy, pending)
            try:
                await self._transport.arequest("POST", policy.upload_host, **self._core.post_request(form))
                return "oss://" + form.key
            except APIError as exc:
                error, expired = self._core.upload_error(exc, pending)
                if not (expired and attempt == 0):
                    raise error from None
            policy = await self._get_policy(stale=policy)
        raise AssertionError("unreachable")

    async def _get_policy(self, stale: UploadPolicy | None = None) -> UploadPolicy:
        async with self._lock:
            current = self._policy
            if current is None or current.expired() or current is stale:
                response = await self._transport.arequest("GET", self._core.policy_url, **self._core.policy_request())
                current = self._policy = self._core.parse_policy(response)
            return current


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
