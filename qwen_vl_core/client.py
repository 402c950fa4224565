"""``QwenVLClient``: the one entry point both plugins are built on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._http import httpx
from pydantic import SecretStr

from ._version import __version__
from .config import Endpoint, find_api_key, resolve_endpoint
from .errors import IncompleteStreamError
from .media import AsyncUploadSession, LocalFilePolicy, MediaOptions, UploadSession
from .messages import MediaSettings, WireMessages, normalize_messages
from .models import ModelCapabilities, get_capabilities
from .protocol import (
    RequestPlan,
    compatible_body,
    native_body,
    parse_chunk,
    parse_completion,
    parse_native,
    plan_request,
)
from .transport import Response, RetryPolicy, Transport
from .types import ChatDelta, ChatResult, StreamAccumulator

__all__ = ["QwenVLClient", "PreparedRequest"]

Messages = Sequence[Mapping[str, Any]] | str


@dataclass(slots=True)
class PreparedRequest:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    plan: RequestPlan
    wire: WireMessages
    model: str


class QwenVLClient:
    """Talks to DashScope (or any OpenAI-compatible server) for Qwen-VL models.

    ``chat``/``achat`` return a :class:`~qwen_vl_core.types.ChatResult`; ``stream``/``astream``
    yield :class:`~qwen_vl_core.types.ChatDelta`. Messages are OpenAI-style dicts whose media
    may be given in any form :mod:`qwen_vl_core.messages` accepts.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        region: str | None = None,
        base_url: str | None = None,
        workspace: str | None = None,
        timeout: float | httpx.Timeout | None = 120.0,
        max_retries: int = 2,
        *,
        resize: bool = True,
        upload: bool = True,
        allow_local_files: bool = True,
        allowed_dirs: Sequence[str | Path] | None = None,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        self._api_key = find_api_key(api_key)
        self.endpoint: Endpoint = resolve_endpoint(region, base_url)
        self.workspace = workspace
        self.media_options = MediaOptions(
            resize=resize,
            upload=upload,
            policy=LocalFilePolicy(
                allow_local_files=allow_local_files,
                allowed_dirs=tuple(Path(d) for d in allowed_dirs) if allowed_dirs is not None else None,
            ),
        )
        self._transport = Transport(
            timeout=timeout,
            retry=RetryPolicy(max_retries, retry_initial_delay, retry_max_delay),
            http_client=http_client,
            async_http_client=async_http_client,
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"qwen-vl-integrations/{__version__}",
        }
        if workspace:
            headers["X-DashScope-WorkSpace"] = workspace
        headers.update(default_headers or {})
        self._base_headers = headers

    # The constructor arguments an adapter exposes as its own settings (same names everywhere).
    SETTINGS = (
        "api_key", "region", "base_url", "workspace", "timeout", "max_retries",
        "resize", "upload", "allow_local_files", "allowed_dirs", "default_headers",
    )

    @classmethod
    def settings_of(cls, obj: Any) -> dict[str, Any]:
        """The client settings an adapter object carries: its attributes named as in :attr:`SETTINGS`."""
        return {name: getattr(obj, name) for name in cls.SETTINGS if hasattr(obj, name)}

    @classmethod
    def from_settings(cls, obj: Any) -> QwenVLClient:
        """A client built from an adapter object's settings (see :meth:`settings_of`)."""
        return cls(**cls.settings_of(obj))

    def __repr__(self) -> str:
        return f"QwenVLClient(base_url={self.endpoint.compatible_base!r}, workspace={self.workspace!r})"

    @property
    def api_key(self) -> SecretStr:
        return self._api_key

    @property
    def max_retries(self) -> int:
        return self._transport.retry.max_retries

    def _auth_headers(self) -> dict[str, str]:
        key = self._api_key.get_secret_value()
        headers = dict(self._base_headers)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    # ---------------------------------------------------------------- preparation

    @staticmethod
    def capabilities(model: str) -> ModelCapabilities:
        return get_capabilities(model)

    def prepare(self, messages: Messages, *, model: str, stream: bool, **options: Any) -> PreparedRequest:
        """Validate, resolve media and build the request without sending it (no network)."""
        if not model or not isinstance(model, str):
            raise ValueError("model must be a non-empty string")
        caps = get_capabilities(model)
        plan = plan_request(caps, options, stream=stream)
        settings = MediaSettings(
            model=model,
            high_resolution=options.get("high_resolution"),
            min_pixels=options.get("min_pixels"),
            max_pixels=options.get("max_pixels"),
            fps=options.get("fps"),
            options=self.media_options,
        )
        wire = normalize_messages(messages, settings, "native" if plan.native else "compatible")
        headers = self._auth_headers()
        if plan.native:
            body = native_body(model, wire.messages, options, plan)
            url = self.endpoint.native_url
            if plan.stream:
                headers["X-DashScope-SSE"] = "enable"
        else:
            body = compatible_body(model, wire.messages, options, plan)
            url = self.endpoint.chat_url
        if plan.stream:
            headers["Accept"] = "text/event-stream"
        if wire.uses_oss:
            headers["X-DashScope-OssResourceResolve"] = "enable"
        return PreparedRequest(url, headers, body, plan, wire, model)

    def _upload_session(self, model: str) -> UploadSession:
        return UploadSession(
            self._transport,
            policy_url=self.endpoint.upload_policy_url,
            headers=self._auth_headers(),
            model=model,
        )

    def _upload(self, req: PreparedRequest) -> None:
        pending = req.wire.pending
        if pending:
            session = self._upload_session(req.model)
            for media in pending:
                media.url = session.upload(media.pending)
            req.wire.fill_uploaded()

    async def _aupload(self, req: PreparedRequest) -> None:
        pending = req.wire.pending
        if pending:
            session = AsyncUploadSession(
                self._transport,
                policy_url=self.endpoint.upload_policy_url,
                headers=self._auth_headers(),
                model=req.model,
            )
            for media in pending:
                media.url = await session.upload(media.pending)
            req.wire.fill_uploaded()

    # ---------------------------------------------------------------- parsing helpers

    @staticmethod
    def _result(req: PreparedRequest, resp: Response) -> ChatResult:
        if req.plan.native:
            delta = parse_native(resp.data, request_id=resp.request_id)
            acc = StreamAccumulator()
            acc.add(delta)
            result = acc.build()
            result.partial = resp.partial
            return result
        return parse_completion(resp.data, request_id=resp.request_id, partial=resp.partial)

    @staticmethod
    def _delta(req: PreparedRequest, payload: Any, resp: Response) -> ChatDelta:
        if req.plan.native:
            delta = parse_native(payload, request_id=resp.request_id)
        else:
            delta = parse_chunk(payload, request_id=resp.request_id)
        if resp.partial:
            delta.partial = True
        return delta

    @staticmethod
    def _incomplete(req: PreparedRequest, saw_done: bool, saw_finish: bool, request_id: str | None) -> None:
        complete = saw_finish if req.plan.native else saw_done
        if not complete:
            raise IncompleteStreamError(
                "the stream ended before the server said it was done; the answer is incomplete",
                request_id=request_id,
            )

    # ---------------------------------------------------------------- sync API

    def chat(self, messages: Messages, *, model: str, **options: Any) -> ChatResult:
        """One complete answer. Stream-only models and thinking calls (which DashScope only serves
        streamed) are streamed and aggregated transparently."""
        req = self.prepare(messages, model=model, stream=False, **options)
        if req.plan.stream:
            acc = StreamAccumulator()
            for delta in self._stream_prepared(req):
                acc.add(delta)
            return acc.build()
        self._upload(req)
        resp = self._transport.request("POST", req.url, headers=req.headers, json_body=req.body)
        return self._result(req, resp)

    def stream(self, messages: Messages, *, model: str, **options: Any) -> Iterator[ChatDelta]:
        """Yield normalized deltas; raises a typed error instead of ending a truncated answer."""
        req = self.prepare(messages, model=model, stream=True, **options)
        return self._stream_prepared(req)

    def _stream_prepared(self, req: PreparedRequest) -> Iterator[ChatDelta]:
        self._upload(req)
        saw_done = saw_finish = False
        request_id = None
        for payload, resp in self._transport.stream(req.url, headers=req.headers, json_body=req.body):
            request_id = request_id or resp.request_id
            if payload is None:
                saw_done = True
                break
            delta = self._delta(req, payload, resp)
            request_id = delta.request_id or request_id
            saw_finish = saw_finish or delta.finish_reason is not None
            yield delta
        self._incomplete(req, saw_done, saw_finish, request_id)

    # ---------------------------------------------------------------- async API

    async def achat(self, messages: Messages, *, model: str, **options: Any) -> ChatResult:
        req = self.prepare(messages, model=model, stream=False, **options)
        if req.plan.stream:
            acc = StreamAccumulator()
            async for delta in self._astream_prepared(req):
                acc.add(delta)
            return acc.build()
        await self._aupload(req)
        resp = await self._transport.arequest("POST", req.url, headers=req.headers, json_body=req.body)
        return self._result(req, resp)

    def astream(self, messages: Messages, *, model: str, **options: Any) -> AsyncIterator[ChatDelta]:
        req = self.prepare(messages, model=model, stream=True, **options)
        return self._astream_prepared(req)

    async def _astream_prepared(self, req: PreparedRequest) -> AsyncIterator[ChatDelta]:
        await self._aupload(req)
        saw_done = saw_finish = False
        request_id = None
        async for payload, resp in self._transport.astream(req.url, headers=req.headers, json_body=req.body):
            request_id = request_id or resp.request_id
            if payload is None:
                saw_done = True
                break
            delta = self._delta(req, payload, resp)
            request_id = delta.request_id or request_id
            saw_finish = saw_finish or delta.finish_reason is not None
            yield delta
        self._incomplete(req, saw_done, saw_finish, request_id)

    # ---------------------------------------------------------------- OCR convenience

    def ocr(self, image: Any, *, task: str = "text_recognition", model: str = "qwen-vl-ocr",
            prompt: str | None = None, task_config: Mapping[str, Any] | None = None, **options: Any) -> ChatResult:
        """Run one of qwen-vl-ocr's built-in tasks on an image (native mode)."""
        return self.chat(self._ocr_messages(image, prompt), model=model, ocr_task=task,
                         ocr_task_config=task_config, **options)

    async def aocr(self, image: Any, *, task: str = "text_recognition", model: str = "qwen-vl-ocr",
                   prompt: str | None = None, task_config: Mapping[str, Any] | None = None,
                   **options: Any) -> ChatResult:
        return await self.achat(self._ocr_messages(image, prompt), model=model, ocr_task=task,
                                ocr_task_config=task_config, **options)

    @staticmethod
    def _ocr_messages(image: Any, prompt: str | None) -> list[dict[str, Any]]:
        content: list[Any] = [{"image": image}]
        if prompt:
            content.append({"text": prompt})
        return [{"role": "user", "content": content}]

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self._transport.close()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def __enter__(self) -> QwenVLClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> QwenVLClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
