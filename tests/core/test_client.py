"""QwenVLClient end to end against the local DashScope-protocol server (real sockets, SSE)."""

import asyncio
import io
import logging

import pytest
from PIL import Image

from qwen_vl_core import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentModerationError,
    IncompleteStreamError,
    InputValidationError,
    QwenVLClient,
    RateLimitError,
    ServerError,
    StreamAccumulator,
)
from tests.fake_dashscope import Json, Reset, Slow, Sse, Text, chunks, completion, error_body

USER = [{"role": "user", "content": "hello"}]


@pytest.fixture
def client(dashscope, api_key):
    c = QwenVLClient(api_key=api_key, base_url=dashscope.url, max_retries=2, retry_initial_delay=0.01,
                     retry_max_delay=0.05, timeout=5)
    yield c
    c.close()


def png_bytes(w=64, h=48, color=(200, 30, 30)):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def chat_requests(server):
    return [r for r in server.requests if r.kind in ("compatible", "native")]


# ------------------------------------------------------------------ happy paths


def test_chat_returns_normalized_result_and_sends_headers(client, dashscope, api_key):
    dashscope.script(Json(completion("Hi there", reasoning="r", model="qwen3-vl-plus", request_id="rid-7",
                                     usage={"prompt_tokens": 1270, "completion_tokens": 54, "total_tokens": 1324,
                                            "prompt_tokens_details": {"image_tokens": 1247, "text_tokens": 23},
                                            "completion_tokens_details": {"reasoning_tokens": 9}})))
    r = client.chat(USER, model="qwen3-vl-plus", temperature=0.1)
    assert (r.text, r.reasoning, r.model, r.request_id, r.finish_reason, r.partial) == \
        ("Hi there", "r", "qwen3-vl-plus", "rid-7", "stop", False)
    assert (r.usage.image_tokens, r.usage.reasoning_tokens, r.usage.text_input_tokens) == (1247, 9, 23)
    req = dashscope.requests[-1]
    assert req.path == "/compatible-mode/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {api_key}"
    assert req.headers["user-agent"].startswith("qwen-vl-integrations/")
    assert req.json == {"model": "qwen3-vl-plus", "messages": USER, "temperature": 0.1}


def test_workspace_header(dashscope, api_key):
    with QwenVLClient(api_key=api_key, base_url=dashscope.url, workspace="ws-123") as c:
        c.chat(USER, model="qwen3-vl-plus")
    assert dashscope.requests[-1].headers["x-dashscope-workspace"] == "ws-123"


def test_stream_yields_deltas_in_order(client, dashscope):
    dashscope.script(Sse(chunks("abcdefgh", reasoning="think", piece=3)))
    deltas = list(client.stream(USER, model="qwen3-vl-plus", enable_thinking=True))
    assert "".join(d.reasoning for d in deltas) == "think"
    assert "".join(d.text for d in deltas) == "abcdefgh"
    first_text = next(i for i, d in enumerate(deltas) if d.text)
    last_reasoning = max(i for i, d in enumerate(deltas) if d.reasoning)
    assert last_reasoning < first_text
    assert deltas[-1].usage is not None
    body = dashscope.last_body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["enable_thinking"] is True


def test_streamed_tool_calls_assemble(client, dashscope):
    calls = [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Hangzhou", "unit": "c"}},
             {"id": "call_2", "name": "get_time", "arguments": {}}]
    dashscope.script(Sse(chunks("", tool_calls=calls, piece=5)))
    acc = StreamAccumulator()
    for d in client.stream(USER, model="qwen3-vl-plus",
                           tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]):
        acc.add(d)
    r = acc.build()
    assert [(c.id, c.name, c.parsed_arguments()) for c in r.tool_calls] == [
        ("call_1", "get_weather", {"city": "Hangzhou", "unit": "c"}), ("call_2", "get_time", {})]
    assert r.finish_reason == "tool_calls"


def test_partial_response_header_sets_flag(client, dashscope):
    dashscope.script(Json(completion("half an ans"), headers={"x-dashscope-partialresponse": "true"}))
    assert client.chat(USER, model="qwen3-vl-plus").partial is True


def test_stream_only_model_is_streamed_by_chat(client, dashscope):
    r = client.chat([{"role": "user", "content": [{"type": "text", "text": "solve"},
                                                   {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
                    model="qvq-max")
    assert dashscope.last_body["stream"] is True
    assert "1 image" in r.text and r.usage is not None


async def test_async_chat_and_stream(client, dashscope):
    dashscope.script(Json(completion("async hi")), Sse(chunks("streamed", reasoning="rr")))
    r = await client.achat(USER, model="qwen3-vl-plus")
    assert r.text == "async hi"
    text = reasoning = ""
    async for d in client.astream(USER, model="qwen3-vl-plus"):
        text += d.text
        reasoning += d.reasoning
    assert (text, reasoning) == ("streamed", "rr")
    await client.aclose()


async def test_async_concurrency_uses_one_pool(client, dashscope):
    dashscope.latency = 0.2
    results = await asyncio.wait_for(asyncio.gather(*[client.achat(USER, model="qwen3-vl-plus") for _ in range(16)]), 3)
    assert len(results) == 16 and all(r.text for r in results)
    await client.aclose()


def test_media_reaches_the_wire_as_data_url_with_pixels(client, dashscope, tmp_path):
    path = tmp_path / "red.png"
    path.write_bytes(png_bytes())
    client.chat([{"role": "user", "content": [
        {"type": "text", "text": "what color"},
        {"type": "image_url", "image_url": {"url": str(path)}, "max_pixels": 500_000},
        {"type": "video", "video": [png_bytes(color=(i, i, i)) for i in range(4)], "fps": 2},
        {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}, "fps": 1.5},
    ]}], model="qwen3-vl-plus", min_pixels=4096)
    parts = dashscope.last_body["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "what color"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1]["max_pixels"] == 500_000 and parts[1]["min_pixels"] == 4096
    assert parts[2]["type"] == "video" and len(parts[2]["video"]) == 4 and parts[2]["fps"] == 2
    assert all(u.startswith("data:image/png;base64,") for u in parts[2]["video"])
    assert parts[3] == {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}, "fps": 1.5}


def test_high_resolution_option(client, dashscope):
    client.chat(USER, model="qwen3-vl-plus", high_resolution=True)
    assert dashscope.last_body["vl_high_resolution_images"] is True


# ------------------------------------------------------------------ native mode (OCR tasks)


def test_ocr_uses_native_mode(client, dashscope):
    r = client.ocr(png_bytes(), task="table_parsing")
    req = dashscope.requests[-1]
    assert req.path == "/api/v1/services/aigc/multimodal-generation/generation"
    assert req.json["parameters"]["ocr_options"] == {"task": "table_parsing"}
    assert req.json["input"]["messages"][0]["content"][0]["image"].startswith("data:image/png;base64,")
    assert "table_parsing" in r.text and r.request_id


def test_native_stream(client, dashscope):
    text = "".join(d.text for d in client.stream([{"role": "user", "content": [{"image": png_bytes()}]}],
                                                 model="qwen-vl-ocr", ocr_task="text_recognition"))
    assert "text_recognition" in text
    req = dashscope.requests[-1]
    assert req.headers["x-dashscope-sse"] == "enable"
    assert req.json["parameters"]["incremental_output"] is True


# ------------------------------------------------------------------ retries


def test_429_with_retry_after_is_retried(client, dashscope):
    dashscope.script(Json(error_body("slow down", "Throttling.RateQuota"), status=429, headers={"retry-after": "0"}),
                     Json(completion("ok")))
    assert client.chat(USER, model="qwen3-vl-plus").text == "ok"
    assert len(chat_requests(dashscope)) == 2


def test_retry_after_ms_is_honoured(client, dashscope):
    import time

    dashscope.script(Json(error_body("slow down", "Throttling"), status=429, headers={"retry-after-ms": "300"}),
                     Json(completion("ok")))
    start = time.monotonic()
    client.chat(USER, model="qwen3-vl-plus")
    assert time.monotonic() - start >= 0.3  # the server's hint, not our 0.01 s backoff


def test_5xx_then_success(client, dashscope):
    dashscope.script(Json(error_body("oops", "InternalError"), status=500), Text("<html>bad gateway</html>", status=502),
                     Json(completion("fine")))
    assert client.chat(USER, model="qwen3-vl-plus").text == "fine"
    assert len(chat_requests(dashscope)) == 3


def test_retries_exhausted_raise_typed_error_with_request_id(client, dashscope):
    for _ in range(3):
        dashscope.script(Json(error_body("limit", "Throttling.RateQuota", request_id="rq-429"), status=429))
    with pytest.raises(RateLimitError) as info:
        client.chat(USER, model="qwen3-vl-plus")
    assert (info.value.status, info.value.code, info.value.request_id) == (429, "Throttling.RateQuota", "rq-429")
    assert len(chat_requests(dashscope)) == 3


@pytest.mark.parametrize(("status", "code", "cls"), [
    (400, "invalid_parameter_error", BadRequestError),
    (400, "data_inspection_failed", ContentModerationError),
    (401, "invalid_api_key", AuthenticationError),
])
def test_4xx_is_not_retried(client, dashscope, status, code, cls):
    dashscope.script(Json(error_body("nope", code, request_id="rq-4"), status=status))
    with pytest.raises(cls) as info:
        client.chat(USER, model="qwen3-vl-plus")
    assert info.value.request_id == "rq-4" and info.value.status == status
    assert len(chat_requests(dashscope)) == 1


def test_connection_reset_is_retried(client, dashscope):
    dashscope.script(Reset(), Json(completion("after reset")))
    assert client.chat(USER, model="qwen3-vl-plus").text == "after reset"


def test_connection_reset_every_time_raises_connection_error(client, dashscope):
    dashscope.script(Reset(), Reset(), Reset())
    with pytest.raises(APIConnectionError):
        client.chat(USER, model="qwen3-vl-plus")


def test_slow_response_times_out(dashscope, api_key):
    dashscope.script(Slow(Json(completion("late")), 1.0))
    with QwenVLClient(api_key=api_key, base_url=dashscope.url, timeout=0.2, max_retries=0) as c:
        with pytest.raises(APITimeoutError):
            c.chat(USER, model="qwen3-vl-plus")


def test_html_error_page(client, dashscope):
    dashscope.script(*[Text("<html><body><h1>504 Gateway Time-out</h1></body></html>", status=504)] * 3)
    with pytest.raises(ServerError, match="504 Gateway Time-out"):
        client.chat(USER, model="qwen3-vl-plus")


# ------------------------------------------------------------------ stream faults


def test_stream_cut_before_done_raises(client, dashscope):
    dashscope.script(Sse(chunks("a long answer that is cut", piece=2), cut_after=4))
    got = []
    with pytest.raises(IncompleteStreamError):
        for d in client.stream(USER, model="qwen3-vl-plus"):
            got.append(d.text)
    assert got  # what arrived was delivered, then the error: never a silent truncation


def test_stream_ending_cleanly_without_done_raises(client, dashscope):
    dashscope.script(Sse(chunks("short"), done=False))
    with pytest.raises(IncompleteStreamError):
        list(client.stream(USER, model="qwen3-vl-plus"))


def test_chat_on_stream_only_model_cut_raises(client, dashscope):
    dashscope.script(Sse(chunks("partial", reasoning="thinking..."), cut_after=3))
    with pytest.raises(IncompleteStreamError):
        client.chat(USER, model="qvq-max")


def test_mid_stream_error_frame(client, dashscope):
    events = chunks("ok so far")[:2] + ['data: {"error": {"message": "Output data may contain inappropriate content.", '
                                        '"code": "data_inspection_failed"}, "request_id": "rq-mid"}']
    dashscope.script(Sse(events, done=False))
    with pytest.raises(ContentModerationError) as info:
        list(client.stream(USER, model="qwen3-vl-plus"))
    assert info.value.request_id == "rq-mid"


def test_sse_framed_error_on_error_status(client, dashscope):
    dashscope.script(Sse(['data: {"error": {"message": "bad key", "code": "invalid_api_key"}}'], status=401, done=False))
    with pytest.raises(AuthenticationError, match="bad key"):
        list(client.stream(USER, model="qwen3-vl-plus"))


def test_stream_retries_before_first_event(client, dashscope):
    dashscope.script(Json(error_body("busy", "ModelUnavailable"), status=503), Sse(chunks("second try")))
    assert "".join(d.text for d in client.stream(USER, model="qwen3-vl-plus")) == "second try"


async def test_async_stream_cut_raises(client, dashscope):
    dashscope.script(Sse(chunks("cut cut cut cut", piece=2), cut_after=3))
    with pytest.raises(IncompleteStreamError):
        async for _ in client.astream(USER, model="qwen3-vl-plus"):
            pass
    await client.aclose()


async def test_async_retries_and_typed_errors(client, dashscope):
    dashscope.script(Json(error_body("x", "Throttling"), status=429, headers={"retry-after": "0"}), Json(completion("ok")),
                     Json(error_body("bad", "invalid_parameter_error", request_id="rq-a"), status=400))
    assert (await client.achat(USER, model="qwen3-vl-plus")).text == "ok"
    with pytest.raises(BadRequestError) as info:
        await client.achat(USER, model="qwen3-vl-plus")
    assert info.value.request_id == "rq-a"
    await client.aclose()


# ------------------------------------------------------------------ validation happens before sending


def test_bad_input_sends_nothing(client, dashscope, tmp_path):
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(png_bytes(6, 900))
    with pytest.raises(InputValidationError, match=r"tiny\.png.*10 px"):
        client.chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": str(tiny)}}]}],
                    model="qwen3-vl-plus")
    with pytest.raises(InputValidationError):
        client.chat(USER, model="qwen3-vl-plus", temperature=5)
    with pytest.raises(InputValidationError, match="no thinking mode"):
        client.chat(USER, model="qwen-vl-max", enable_thinking=True)
    assert dashscope.requests == []


def test_local_files_policy(dashscope, api_key, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = allowed / "a.png"
    inside.write_bytes(png_bytes())
    outside = tmp_path / "b.png"
    outside.write_bytes(png_bytes())
    with QwenVLClient(api_key=api_key, base_url=dashscope.url, allowed_dirs=[allowed]) as c:
        c.chat([{"role": "user", "content": [{"image": str(inside)}]}], model="qwen3-vl-plus")
        with pytest.raises(InputValidationError, match="b.png"):
            c.chat([{"role": "user", "content": [{"image": str(outside)}]}], model="qwen3-vl-plus")
    with QwenVLClient(api_key=api_key, base_url=dashscope.url, allow_local_files=False) as c:
        with pytest.raises(InputValidationError):
            c.chat([{"role": "user", "content": [{"image": str(inside)}]}], model="qwen3-vl-plus")
    assert len(chat_requests(dashscope)) == 1


# ------------------------------------------------------------------ temporary upload


def noise_png(w, h):
    import os

    return Image.frombytes("RGB", (w, h), os.urandom(w * h * 3))


def test_large_files_are_uploaded_with_one_policy(dashscope, api_key, tmp_path):
    paths = []
    for i in range(2):
        p = tmp_path / f"big{i}.png"
        noise_png(2200, 1400).save(p)  # ~9 MB of noise: over 10 MB as a data URL
        paths.append(p)
    with QwenVLClient(api_key=api_key, base_url=dashscope.url, resize=False) as c:
        c.chat([{"role": "user", "content": [{"image": str(p)} for p in paths]}], model="qwen3-vl-plus")
    policy = [r for r in dashscope.requests if r.kind == "upload_policy"]
    assert len(policy) == 1 and policy[0].query["model"] == "qwen3-vl-plus"
    chat = chat_requests(dashscope)[-1]
    urls = [p["image_url"]["url"] for p in chat.json["messages"][0]["content"]]
    assert all(u.startswith("oss://") for u in urls)
    assert chat.headers["x-dashscope-ossresourceresolve"] == "enable"
    assert sorted(dashscope.uploads[u[len("oss://"):]] for u in urls) == sorted(p.read_bytes() for p in paths)


async def test_async_upload(dashscope, api_key, tmp_path):
    p = tmp_path / "big.png"
    noise_png(2200, 1400).save(p)
    async with QwenVLClient(api_key=api_key, base_url=dashscope.url, resize=False) as c:
        await c.achat([{"role": "user", "content": [{"image": str(p)}]}], model="qwen3-vl-plus")
    assert chat_requests(dashscope)[-1].json["messages"][0]["content"][0]["image_url"]["url"].startswith("oss://")


def test_upload_off_explains_how_to_proceed(dashscope, api_key, tmp_path):
    p = tmp_path / "big.png"
    noise_png(2200, 1400).save(p)
    with QwenVLClient(api_key=api_key, base_url=dashscope.url, resize=False, upload=False) as c:
        with pytest.raises(InputValidationError, match="upload"):
            c.chat([{"role": "user", "content": [{"image": str(p)}]}], model="qwen3-vl-plus")
    assert dashscope.requests == []


def test_resize_shrinks_big_photo_on_the_wire(dashscope, api_key, tmp_path):
    p = tmp_path / "big.png"
    noise_png(2200, 1400).save(p)
    with QwenVLClient(api_key=api_key, base_url=dashscope.url) as c:  # resize on by default
        c.chat([{"role": "user", "content": [{"image": str(p)}]}], model="qwen3-vl-plus")
    body = chat_requests(dashscope)[-1]
    assert body.json["messages"][0]["content"][0]["image_url"]["url"].startswith("data:")
    # fewer bytes than base64 of the original file (what a peer sends), and small enough to need no upload
    assert len(body.body) < p.stat().st_size * 4 / 3
    assert [r for r in dashscope.requests if r.kind == "upload_policy"] == []


# ------------------------------------------------------------------ secrecy


def test_key_never_in_repr_logs_or_errors(dashscope, api_key, caplog):
    caplog.set_level(logging.DEBUG)
    c = QwenVLClient(api_key=api_key, base_url=dashscope.url, max_retries=1, retry_initial_delay=0.01)
    dashscope.script(Json(error_body("bad key", "invalid_api_key"), status=401),
                     Json(error_body("busy", "Throttling"), status=429), Json(error_body("busy", "Throttling"), status=429))
    errors = []
    for _ in range(2):
        try:
            c.chat(USER, model="qwen3-vl-plus")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    assert len(errors) == 2
    texts = [repr(c), str(c), str(c.api_key), repr(c.api_key), caplog.text] + [str(e) + repr(e) for e in errors]
    assert all(api_key not in t for t in texts)
    c.close()
