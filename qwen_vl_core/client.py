"""``QwenVLClient``: the one entry point both plugins are built on."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._http import httpx
from pydantic import SecretStr

from ._version import __version__
from .config import Endpoint, KeyToFind, SecretHeaders, find_api_key, resolve_endpoint
from .errors import ConfigurationError, IncompleteStreamError, InputValidationError
from .media import AsyncUploadSession, LocalFilePolicy, MediaOptions, UploadSession
from .estimate import check_prepared
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
from .rate_limit import COST_HEADER, RateLimit, request_cost, with_rate_limit
from .transport import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_MAX_STREAM_BYTES,
    DEFAULT_STREAM_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT,
    Response,
    RetryPolicy,
    Transport,
)
from .types import ChatDelta, ChatResult, StreamAccumulator

__all__ = ["QwenVLClient", "PreparedRequest", "PARTIAL_ADVICE"]

_log = logging.getLogger(__name__)

Messages = Sequence[Mapping[str, Any]] | str


def _check_limits(max_retry_wait: float, **limits: float | None) -> None:
    """``max_retry_wait`` is 0 or more seconds; the other limits are positive numbers, or None (no limit)."""
    if isinstance(max_retry_wait, bool) or not isinstance(max_retry_wait, (int, float)) or not max_retry_wait >= 0:
        raise ConfigurationError(f"max_retry_wait must be 0 or more seconds, got {max_retry_wait!r}")
    for name, value in limits.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
            raise ConfigurationError(f"{name} must be a positive number, or None for no limit, got {value!r}")


@dataclass(slots=True)
class PreparedRequest:
    """A request ready to send. Its ``repr`` (and its headers' ``repr``) never shows the key:
    ``Authorization`` reads ``Bearer ***``."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    plan: RequestPlan
    wire: WireMessages
    model: str

    def __post_init__(self) -> None:
        self.headers = SecretHeaders(self.headers)

    def __repr__(self) -> str:
        return (
            f"PreparedRequest(url={self.url!r}, model={self.model!r}, headers={self.headers!r}, "
            f"body={self.body!r}, plan={self.plan!r})"
        )


class QwenVLClient:
    """Talks to DashScope (or any OpenAI-compatible server) for Qwen-VL models.

    ``chat``/``achat`` return a :class:`~qwen_vl_core.types.ChatResult`; ``stream``/``astream``
    yield :class:`~qwen_vl_core.types.ChatDelta`. Messages are OpenAI-style dicts whose media
    may be given in any form :mod:`qwen_vl_core.messages` accepts.

    Time and size (None turns a limit off):

    - ``timeout`` (240 s): httpx's, for each network operation (connect at most 10 s, each read): above
      DashScope's own 180 s limit for non-streamed answers, so a slow answer arrives, marked
      ``partial``, instead of timing out.
    - ``deadline`` (600 s): the whole of a non-streamed call (each HTTP call of it: the chat request,
      each upload step), retries and waits included; past it, :class:`~qwen_vl_core.errors.APITimeoutError`.
    - ``stream_idle_timeout`` (120 s): the longest a stream may go without a complete event.
    - ``max_retry_wait`` (60 s): a ``Retry-After`` up to this is waited; a longer one raises the typed
      error (``RateLimitError`` for 429) at once, with ``retry_after`` in seconds.
    - ``retry_read_timeouts`` (False): a chat request that went out whole and then timed out waiting
      is not resent (the server may still be generating and billing it); True resends it.
    - ``max_response_bytes`` (32 MiB): a JSON answer, and each stream event; ``max_stream_bytes``
      (256 MiB): a whole stream. Larger is :class:`~qwen_vl_core.errors.ResponseTooLargeError`.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        region: str | None = None,
        base_url: str | None = None,
        workspace: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        *,
        resize: bool = True,
        upload: bool = True,
        allow_local_files: bool = True,
        allowed_dirs: Sequence[str | Path] | None = None,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        retry_read_timeouts: bool = False,
        deadline: float | None = DEFAULT_DEADLINE,
        stream_idle_timeout: float | None = DEFAULT_STREAM_IDLE_TIMEOUT,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        max_stream_bytes: int | None = DEFAULT_MAX_STREAM_BYTES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        _check_limits(max_retry_wait=max_retry_wait, deadline=deadline, stream_idle_timeout=stream_idle_timeout,
                      max_response_bytes=max_response_bytes, max_stream_bytes=max_stream_bytes)
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
        # with a rate limit, every attempt of a chat request waits for it and 429s are reported to it
        self.rate_limit = rate_limit
        self._transport = with_rate_limit(Transport, rate_limit)(
            timeout=timeout,
            retry=RetryPolicy(max_retries, retry_initial_delay, retry_max_delay, max_retry_wait, retry_read_timeouts),
            http_client=http_client,
            async_http_client=async_http_client,
            deadline=deadline,
            stream_idle_timeout=stream_idle_timeout,
            max_response_bytes=max_response_bytes,
            max_stream_bytes=max_stream_bytes,
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
        "deadline", "stream_idle_timeout", "max_retry_wait", "retry_read_timeouts",
        "max_response_bytes", "max_stream_bytes",
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

    # ---------------------------------------------------------------- pickling (never the key)

    def __getstate__(self) -> dict[str, Any]:
        """The client's settings without the key and without connection pools: an unpickled
        client finds its key again the documented way (see :class:`~qwen_vl_core.config.KeyToFind`)
        and builds its pools on first use. Injected ``http_client`` / ``async_http_client`` are
        not pickled either; the unpickled client uses its own."""
        state = self.__dict__.copy()
        state.pop("_api_key", None)
        transport = copy.copy(self._transport)  # a new object over the same settings
        transport._client = transport._aclient = transport._aclient_loop = None
        transport._own_client = transport._own_aclient = True
        state["_transport"] = transport
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._api_key = KeyToFind()

    def __copy__(self) -> QwenVLClient:  # in-process copies keep the key and share the pools
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo: dict[int, Any]) -> QwenVLClient:  # keeps the key, new pools
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        limiter = self.__dict__.get("rate_limit")
        if limiter is not None:  # one limiter per process, shared by design: never copied
            memo[id(limiter)] = limiter
        new.__dict__.update(copy.deepcopy(self.__getstate__(), memo))
        new._api_key = self._api_key
        return new

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
        messages = _with_prefix(messages, options.pop("continue_from", None))
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
        req = PreparedRequest(url, headers, body, plan, wire, model)
        if self.rate_limit is not None:  # read (and removed) by the rate-limited transport
            req.headers[COST_HEADER] = str(request_cost(req, options, self.rate_limit.expected_output_tokens))
        return req

    def _upload_session(self, model: str) -> UploadSession:
        return UploadSession(
            self._transport,
            policy_url=self.endpoint.upload_policy_url,
            headers=self._auth_headers(),
            model=model,
        )

    def _upload(self, req: PreparedRequest) -> None:
        check_prepared(req)  # the last check before anything leaves: does the prompt fit the model?
        pending = req.wire.pending
        if pending:
            session = self._upload_session(req.model)
            for media in pending:
                media.url = session.upload(media.pending)
            req.wire.fill_uploaded()

    async def _aupload(self, req: PreparedRequest) -> None:
        check_prepared(req)
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
            delta = parse_native(resp.data, request_id=resp.request_id, whole=not resp.partial)
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
    def _incomplete(
        req: PreparedRequest, saw_done: bool, saw_finish: bool, request_id: str | None, answered: bool = True
    ) -> None:
        complete = saw_finish if req.plan.native else saw_done
        if not complete:
            raise IncompleteStreamError(
                "the stream ended before the server said it was done; the answer is incomplete",
                request_id=request_id,
            )
        if not answered:  # e.g. a stream that is only ``data: [DONE]``
            raise IncompleteStreamError(
                "the stream ended without an answer: no event carried text, reasoning, a tool call or a "
                "finish reason",
                request_id=request_id,
            )

    # ---------------------------------------------------------------- sync API

    def chat(self, messages: Messages, *, model: str, **options: Any) -> ChatResult:
        """One complete answer. Stream-only models and thinking calls (which DashScope only serves
        streamed) are streamed and aggregated transparently.

        ``continue_from`` (every method takes it): the beginning of an assistant answer, as text or
        a :class:`ChatResult`; it is sent as the last message, ``{"role": "assistant", "content":
        prefix, "partial": true}`` (DashScope's partial mode, seed 003), and the model writes on from
        it. The result holds the continuation only: the whole answer is ``prefix + result.text``.
        A non-streamed answer that the server cut off after about 180 s comes back with
        ``partial=True`` (and a warning saying so): pass it as ``continue_from`` (with the same
        messages) to have the rest, or stream, which has no such limit."""
        req = self.prepare(messages, model=model, stream=False, **options)
        if req.plan.stream:
            acc = StreamAccumulator()
            for delta in self._stream_prepared(req):
                acc.add(delta)
            return acc.build()
        self._upload(req)
        resp = self._transport.request("POST", req.url, headers=req.headers, json_body=req.body)
        return _warn_partial(self._result(req, resp))

    def stream(self, messages: Messages, *, model: str, **options: Any) -> Iterator[ChatDelta]:
        """Yield normalized deltas; raises a typed error instead of ending a truncated answer."""
        req = self.prepare(messages, model=model, stream=True, **options)
        return self._stream_prepared(req)

    def _stream_prepared(self, req: PreparedRequest) -> Iterator[ChatDelta]:
        self._upload(req)
        saw_done = saw_finish = answered = False
        request_id = None
        for payload, resp in self._transport.stream(req.url, headers=req.headers, json_body=req.body):
            request_id = request_id or resp.request_id
            if payload is None:
                saw_done = True
                break
            delta = self._delta(req, payload, resp)
            request_id = delta.request_id or request_id
            saw_finish = saw_finish or delta.finish_reason is not None
            answered = answered or delta.answers
            yield delta
        self._incomplete(req, saw_done, saw_finish, request_id, answered)

    # ---------------------------------------------------------------- async API

    async def achat(self, messages: Messages, *, model: str, **options: Any) -> ChatResult:
        req = await self._aprepare(messages, model=model, stream=False, **options)
        if req.plan.stream:
            acc = StreamAccumulator()
            async for delta in self._astream_prepared(req):
                acc.add(delta)
            return acc.build()
        await self._aupload(req)
        resp = await self._transport.arequest("POST", req.url, headers=req.headers, json_body=req.body)
        return _warn_partial(self._result(req, resp))

    def astream(self, messages: Messages, *, model: str, **options: Any) -> AsyncIterator[ChatDelta]:
        """Like :meth:`stream`. Text-only messages are checked at once; messages with media to
        read or encode are prepared off the event loop when iteration starts (errors surface there)."""
        if not _needs_media_work(messages):
            return self._astream_prepared(self.prepare(messages, model=model, stream=True, **options))
        return self._astream_media(messages, model, options)

    async def _astream_media(self, messages: Messages, model: str, options: dict[str, Any]) -> AsyncIterator[ChatDelta]:
        req = await self._aprepare(messages, model=model, stream=True, **options)
        async for delta in self._astream_prepared(req):
            yield delta

    async def _aprepare(self, messages: Messages, *, model: str, stream: bool, **options: Any) -> PreparedRequest:
        """:meth:`prepare` for the async paths. Reading, decoding, resizing and encoding media is CPU
        work (Pillow releases the GIL for most of it): it runs in a thread of a pool shared by all
        clients and sized to the CPU cores, so the event loop keeps serving other requests and a
        large ``abatch`` prepares at most that many images at once. Text-only messages (and remote
        URLs, media resolved already) are prepared on the loop: there is nothing to wait for."""
        if not _needs_media_work(messages):
            return self.prepare(messages, model=model, stream=stream, **options)
        import asyncio
        import contextvars
        import functools

        call = functools.partial(self.prepare, messages, model=model, stream=stream, **options)
        context = contextvars.copy_context()  # callbacks and tracing see the caller's context
        return await asyncio.get_running_loop().run_in_executor(_media_pool(), context.run, call)

    async def _astream_prepared(self, req: PreparedRequest) -> AsyncIterator[ChatDelta]:
        await self._aupload(req)
        saw_done = saw_finish = answered = False
        request_id = None
        async for payload, resp in self._transport.astream(req.url, headers=req.headers, json_body=req.body):
            request_id = request_id or resp.request_id
            if payload is None:
                saw_done = True
                break
            delta = self._delta(req, payload, resp)
            request_id = delta.request_id or request_id
            saw_finish = saw_finish or delta.finish_reason is not None
            answered = answered or delta.answers
            yield delta
        self._incomplete(req, saw_done, saw_finish, request_id, answered)

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


# -------------------------------------------------------------------- partial mode (continuing an answer)

#: What a partial non-streamed answer's warning says; the CLI words the same advice as flags.
PARTIAL_ADVICE = (
    "the server stopped this non-streamed answer after about 180 s and returned only its beginning "
    "(partial=True); to continue it, call again with the same messages and continue_from=<this result "
    "or its text> (DashScope's partial mode), or stream the request, which has no such limit"
)


def _with_prefix(messages: Messages, prefix: Any) -> Messages:
    """``messages`` with the assistant prefix of partial mode appended (unchanged without one)."""
    if prefix is None:
        return messages
    if isinstance(prefix, ChatResult):
        prefix = prefix.text
    if not isinstance(prefix, str) or not prefix:
        raise InputValidationError(
            f"continue_from must be the non-empty beginning of an answer (text or a ChatResult), got {prefix!r}"
        )
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    messages = list(messages)
    if messages and isinstance(messages[-1], Mapping) and messages[-1].get("role") == "assistant":
        raise InputValidationError(
            "continue_from adds the assistant message to continue, but the messages already end with an "
            "assistant message; give the messages the answer was for"
        )
    return [*messages, {"role": "assistant", "content": prefix, "partial": True}]


def _warn_partial(result: ChatResult) -> ChatResult:
    if result.partial:
        _log.warning("%s (request id %s)", PARTIAL_ADVICE, result.request_id or "unknown")
    return result


# -------------------------------------------------------------------- media preparation off the loop

_MEDIA_POOL: Any = None  # (ThreadPoolExecutor, pid of the process that made it)


def _media_pool() -> Any:
    """The thread pool that prepares media for the async paths: one per process (a forked child
    makes its own), as many threads as CPU cores this process may use."""
    global _MEDIA_POOL
    import os
    from concurrent.futures import ThreadPoolExecutor

    pool = _MEDIA_POOL
    if pool is None or pool[1] != os.getpid():
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        pool = (ThreadPoolExecutor(max_workers=max(1, cores or 1), thread_name_prefix="qwen-vl-media"), os.getpid())
        _MEDIA_POOL = pool
    return pool[0]


def _needs_media_work(messages: Any) -> bool:
    from .chat_media import needs_media_work  # chat_media reaches the document pipeline, which imports this module

    return needs_media_work(messages)
