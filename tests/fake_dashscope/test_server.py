"""The local DashScope server itself, exercised with plain httpx over real sockets."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.fake_dashscope import (
    DATA_URI_LIMIT,
    Auto,
    DashScopeServer,
    Json,
    Reset,
    Slow,
    Sse,
    Text,
    chunks,
    completion,
    data_url_image_size,
    error_body,
    native_chunks,
    native_completion,
    native_frames,
)

NATIVE = "/api/v1/services/aigc/multimodal-generation/generation"


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def png_data_url(width: int = 64, height: int = 48) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def user(*parts: dict) -> list[dict]:
    return [{"role": "user", "content": list(parts)}]


def text(t: str) -> dict:
    return {"type": "text", "text": t}


def image(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def sse_data(body: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    out = []
    for frame in body.split("\n\n"):
        for line in frame.splitlines():
            if line.startswith("data:"):
                out.append(line[5:].lstrip(" "))
    return out


@pytest.fixture
def client(dashscope: DashScopeServer, api_key: str):
    with httpx.Client(base_url=dashscope.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10) as c:
        yield c


def chat(client: httpx.Client, **body) -> httpx.Response:
    body.setdefault("model", "qwen3-vl-plus")
    body.setdefault("messages", user(text("hi")))
    return client.post("/compatible-mode/v1/chat/completions", json=body)


# --------------------------------------------------------------------------------------------------
# default compatible-mode behaviour
# --------------------------------------------------------------------------------------------------


def test_default_non_stream_reply_counts_media_and_image_tokens(client, dashscope):
    url = png_data_url(640, 480)
    r = chat(client, messages=user(image(url), {"type": "image", "image": url}, text("What is in these pictures?")))
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert r.headers["x-request-id"] == body["id"]
    msg = body["choices"][0]["message"]
    assert msg["content"] == "I see 2 image(s) and 0 video(s). You said: What is in these pictures?"
    assert "reasoning_content" not in msg
    assert body["choices"][0]["finish_reason"] == "stop"
    from qwen_vl_core.tokens import image_tokens

    per_image = image_tokens(640, 480, "qwen3-vl-plus")
    usage = body["usage"]
    assert usage["prompt_tokens_details"]["image_tokens"] == 2 * per_image
    assert usage["prompt_tokens"] == 10 + 2 * per_image
    assert usage["completion_tokens"] == len(msg["content"].split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert dashscope.last_body["messages"][0]["content"][2]["text"] == "What is in these pictures?"
    assert dashscope.requests[-1].headers["authorization"].startswith("Bearer ")


def test_data_url_image_size_reads_base64_images_only():
    assert data_url_image_size(png_data_url(640, 480)) == (640, 480)
    assert data_url_image_size("https://example.com/a.png") is None
    assert data_url_image_size("data:image/png,not-base64") is None
    assert data_url_image_size("data:image/png;base64," + base64.b64encode(b"not an image").decode()) is None


def test_default_reply_videos_undecodable_images_thinking_and_v1_path(client):
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "qwen3-vl-plus",
            "enable_thinking": True,
            "messages": user(
                image("https://example.com/a.jpg"),
                {"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"}},
                {"type": "video", "video": ["https://example.com/f1.jpg"] * 4},
                text("x" * 100),
            ),
        },
    )
    msg = r.json()["choices"][0]["message"]
    assert msg["content"] == "I see 1 image(s) and 2 video(s). You said: " + "x" * 80
    assert msg["reasoning_content"] == "Thinking about the request."
    usage = r.json()["usage"]
    assert usage["prompt_tokens_details"]["image_tokens"] == 100
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 4


def test_default_forced_tool_call(client):
    tools = [
        {"type": "function", "function": {"name": "first", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "second", "parameters": {"type": "object"}}},
    ]
    r = chat(client, tools=tools, tool_choice="required")
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "first", "arguments": "{}"}
    assert call["type"] == "function" and call["id"]

    r = chat(client, tools=tools, tool_choice={"type": "function", "function": {"name": "second"}})
    assert r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "second"

    r = chat(client, tools=tools, tool_choice="auto")
    assert "tool_calls" not in r.json()["choices"][0]["message"]


def test_default_sse_frames_parse_and_end_with_done(client):
    with client.stream(
        "POST",
        "/compatible-mode/v1/chat/completions",
        json={
            "model": "qwen3-vl-plus",
            "stream": True,
            "stream_options": {"include_usage": True},
            "enable_thinking": True,
            "messages": user(text("stream please")),
        },
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    data = sse_data(body)
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == r.headers["x-request-id"] for e in events)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert reasoning == "Thinking about the request."
    assert content == "I see 0 image(s) and 0 video(s). You said: stream please"
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all(i < first_content for i, d in enumerate(deltas) if d.get("reasoning_content"))
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0


def test_stream_without_include_usage_has_no_usage_chunk(client):
    r = chat(client, stream=True)
    events = [json.loads(d) for d in sse_data(r.text)[:-1]]
    assert all(e["choices"] for e in events)
    assert "usage" not in events[-1]


def test_tool_call_chunks_fragment_like_openai():
    events = chunks(tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "Hangzhou"}}], piece=5)
    frags = [e["choices"][0]["delta"]["tool_calls"][0] for e in events if e["choices"] and "tool_calls" in e["choices"][0]["delta"]]
    assert frags[0] == {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    assert len(frags) > 2
    for frag in frags[1:]:
        assert set(frag) == {"index", "function"} and set(frag["function"]) == {"arguments"}
        assert len(frag["function"]["arguments"]) <= 5
    assert json.loads("".join(f["function"]["arguments"] for f in frags)) == {"city": "Hangzhou"}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1]["choices"] == []
    assert {e["id"] for e in events} == {events[0]["id"]}


def test_streamed_forced_tool_call_over_http(client):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    r = chat(client, stream=True, tools=tools, tool_choice="required")
    events = [json.loads(d) for d in sse_data(r.text)[:-1]]
    frags = [e["choices"][0]["delta"]["tool_calls"][0] for e in events if "tool_calls" in e["choices"][0]["delta"]]
    assert frags[0]["function"]["name"] == "lookup" and frags[0]["id"]
    assert "".join(f["function"]["arguments"] for f in frags) == "{}"


# --------------------------------------------------------------------------------------------------
# scripted replies and faults
# --------------------------------------------------------------------------------------------------


def test_scripted_queue_order_then_responder_then_default(client, dashscope, api_key):
    dashscope.script(
        Json(completion("one", request_id="rid-1")),
        Text("<html>502 Bad Gateway</html>", 502),
        Json(error_body("slow down", "limit_requests", request_id="rid-3"), 429, headers={"retry-after": "1"}),
        Auto(),
    )
    assert dashscope.pending == 4
    # Upload endpoints and 404s do not consume the queue.
    assert client.get("/api/v1/uploads", params={"action": "getPolicy", "model": "qwen3-vl-plus"}).status_code == 200
    assert client.get("/nope").status_code == 404
    assert dashscope.pending == 4

    r1 = chat(client)
    assert r1.json()["choices"][0]["message"]["content"] == "one" and r1.headers["x-request-id"] == "rid-1"
    r2 = chat(client)
    assert r2.status_code == 502 and r2.headers["content-type"] == "text/html" and "Bad Gateway" in r2.text
    r3 = chat(client)
    assert r3.status_code == 429 and r3.headers["retry-after"] == "1" and r3.headers["x-request-id"] == "rid-3"
    assert r3.json()["error"]["code"] == "limit_requests"
    r4 = chat(client)
    assert r4.json()["choices"][0]["message"]["content"].startswith("I see 0 image(s)")
    assert dashscope.pending == 0

    seen = []
    dashscope.responder = lambda req: seen.append(req.json["model"]) or Json(completion("from responder"))
    assert chat(client, model="m-1").json()["choices"][0]["message"]["content"] == "from responder"
    dashscope.responder = lambda req: None  # None -> default behaviour
    assert chat(client).json()["choices"][0]["message"]["content"].startswith("I see")
    assert seen == ["m-1"]
    assert [r.path for r in dashscope.chat_requests] == ["/compatible-mode/v1/chat/completions"] * 6
    assert len(dashscope.requests) == 8


def test_scripted_sse_str_events_error_frame_and_non_200(client, dashscope):
    dashscope.script(
        Sse([chunks("abc")[1], 'data: {"error": {"code": "data_inspection_failed", "message": "no"}}'], done=False),
        Sse(['data: {"error": {"code": "Throttling", "message": "busy"}}'], status=429, done=False),
        Sse([b"data: {\"x\": 1}\n\n", ": keep-alive comment\n"], done=True),
    )
    data = sse_data(chat(client, stream=True).text)
    assert json.loads(data[-1])["error"]["code"] == "data_inspection_failed" and "[DONE]" not in data
    r = chat(client, stream=True)
    assert r.status_code == 429 and json.loads(sse_data(r.text)[0])["error"]["code"] == "Throttling"
    assert chat(client, stream=True).text == 'data: {"x": 1}\n\n: keep-alive comment\ndata: [DONE]\n\n'


def test_cut_stream_ends_without_done(client, dashscope):
    dashscope.script(Sse(chunks("hello there world"), cut_after=3))
    lines = []
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("POST", "/compatible-mode/v1/chat/completions", json={"model": "m", "messages": user(text("x")), "stream": True}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                lines.append(line)
    data = [line[6:] for line in lines if line.startswith("data: ")]
    assert len(data) == 3 and "[DONE]" not in data
    # The server is fine afterwards.
    assert chat(client).status_code == 200


def test_reset_gives_connection_error_and_server_survives(client, dashscope):
    dashscope.script(Reset(), Slow(Reset(), 0.05))
    for _ in range(2):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            chat(client)
    assert len(dashscope.chat_requests) == 2
    assert dashscope.last_body["model"] == "qwen3-vl-plus"  # the request was read before the reset
    assert chat(client).status_code == 200


def test_latency_and_slow(client, dashscope):
    dashscope.latency = 0.2
    start = time.perf_counter()
    chat(client)
    assert time.perf_counter() - start >= 0.2
    dashscope.latency = 0.0
    dashscope.script(Slow(Json(completion("late")), 0.2))
    start = time.perf_counter()
    assert chat(client).json()["choices"][0]["message"]["content"] == "late"
    assert time.perf_counter() - start >= 0.2


def test_sse_delay_between_events(client, dashscope):
    dashscope.script(Sse([{"n": 1}, {"n": 2}, {"n": 3}], delay=0.1))
    start = time.perf_counter()
    assert sse_data(chat(client, stream=True).text) == ['{"n":1}', '{"n":2}', '{"n":3}', "[DONE]"]
    assert time.perf_counter() - start >= 0.2


def test_64_concurrent_keep_alive_clients(dashscope, api_key):
    dashscope.latency = 0.25
    n, per_client = 64, 2
    statuses: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        try:
            with httpx.Client(base_url=dashscope.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=20) as c:
                barrier.wait()
                for _ in range(per_client):
                    r = chat(c, messages=user(text(f"client {i}")))
                    with lock:
                        statuses.append(r.status_code)
        except BaseException as exc:  # noqa: BLE001
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    elapsed = time.perf_counter() - start
    assert not failures, failures[:3]
    assert statuses == [200] * (n * per_client)
    assert len(dashscope.requests) == n * per_client
    serial = n * per_client * dashscope.latency
    assert elapsed < serial / 8  # served concurrently, not one by one


def test_chunked_request_body_is_read(client, dashscope):
    payload = json.dumps({"model": "qwen3-vl-plus", "messages": user(text("chunked body"))}).encode()
    r = client.post(
        "/compatible-mode/v1/chat/completions",
        content=iter([payload[:10], payload[10:]]),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200
    assert dashscope.requests[-1].headers.get("transfer-encoding") == "chunked"
    assert r.json()["choices"][0]["message"]["content"].endswith("You said: chunked body")


def test_responder_exception_answers_500_and_is_recorded(client, dashscope):
    def boom(req):
        raise RuntimeError("responder bug")

    dashscope.responder = boom
    r = chat(client)
    assert r.status_code == 500
    assert len(dashscope.errors) == 1 and "responder bug" in dashscope.errors[0]
    dashscope.errors.clear()  # the ``dashscope`` fixture fails a test that leaves errors behind


def test_stop_is_prompt_with_open_keep_alive_connection():
    server = DashScopeServer().start()
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer k"}) as c:
        assert chat(c).status_code == 200  # the connection stays open in the pool
        start = time.perf_counter()
        server.stop()
        assert time.perf_counter() - start < 3  # the idle keep-alive handler would otherwise linger for 10 s
        with pytest.raises(httpx.TransportError):
            chat(c)
    with pytest.raises(RuntimeError):
        server.url


# --------------------------------------------------------------------------------------------------
# the real server's rules
# --------------------------------------------------------------------------------------------------


def assert_error(r: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert err["type"] and "param" in err
    assert r.json()["request_id"] == r.headers["x-request-id"]
    if message is not None:
        assert err["message"] == message


def test_auth_required(dashscope):
    with httpx.Client(base_url=dashscope.url) as c:
        assert_error(chat(c), 401, "invalid_api_key")
        c.headers["Authorization"] = "Bearer"
        assert_error(chat(c), 401, "invalid_api_key")
        c.headers["Authorization"] = "Basic abc"
        assert_error(chat(c), 401, "invalid_api_key")
        r = c.post(NATIVE, json={"model": "qwen-vl-ocr", "input": {"messages": user({"text": "x"})}})
        assert r.status_code == 401 and r.json()["code"] == "InvalidApiKey"
        assert c.get("/api/v1/uploads", params={"action": "getPolicy", "model": "m"}).status_code == 401


def test_qvq_requires_stream(client):
    assert_error(
        chat(client, model="qvq-max"),
        400,
        "invalid_parameter_error",
        "This model only support stream mode, please enable the stream parameter to access the model.",
    )
    r = chat(client, model="qvq-max", stream=True)
    assert r.status_code == 200
    deltas = [json.loads(d)["choices"][0]["delta"] for d in sse_data(r.text)[:-1]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas)  # QVQ always thinks


def test_json_object_needs_the_word_json(client):
    fmt = {"type": "json_object"}
    assert_error(
        chat(client, response_format=fmt, messages=user(text("Describe the image."))),
        400,
        "invalid_parameter_error",
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
    )
    system = [{"role": "system", "content": "Answer in JSON."}]
    assert chat(client, response_format=fmt, messages=system + user(text("Describe."))).status_code == 200


def test_response_format_with_thinking_is_rejected(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert_error(chat(client, response_format=fmt, enable_thinking=True), 400, "invalid_parameter_error")
    assert chat(client, response_format=fmt, enable_thinking=False).status_code == 200


def test_data_url_size_limit(client):
    prefix = "data:image/png;base64,"
    too_big = prefix + "A" * (DATA_URI_LIMIT - len(prefix) + 1)
    assert_error(
        chat(client, messages=user(image(too_big))),
        400,
        "invalid_parameter_error",
        "Exceeded limit on max bytes per data-uri item : 10485760",
    )
    at_limit = too_big[:-1]
    assert chat(client, messages=user(image(at_limit))).status_code == 200


def test_unknown_path_is_404(client):
    r = client.post("/compatible-mode/v1/rerank", json={})
    assert r.status_code == 404 and r.json()["error"]["code"]


def test_embeddings_are_normalized_and_word_based(client):
    r = client.post("/compatible-mode/v1/embeddings", json={"model": "text-embedding-v4", "dimensions": 64,
                                                           "input": ["pets allowed", "pets allowed here", "rent due"]})
    assert r.status_code == 200
    a, b, c = (d["embedding"] for d in sorted(r.json()["data"], key=lambda d: d["index"]))
    dot = lambda x, y: sum(i * j for i, j in zip(x, y))  # noqa: E731
    assert len(a) == 64 and abs(dot(a, a) - 1) < 1e-9
    assert dot(a, b) > dot(a, c)
    assert client.post("/compatible-mode/v1/embeddings", json={"input": []}).status_code == 400


# --------------------------------------------------------------------------------------------------
# temporary upload flow
# --------------------------------------------------------------------------------------------------


def get_policy(client: httpx.Client, model: str = "qwen3-vl-plus") -> dict:
    r = client.get("/api/v1/uploads", params={"action": "getPolicy", "model": model})
    assert r.status_code == 200
    return r.json()["data"]


def oss_form(policy: dict, key: str) -> dict:
    return {
        "OSSAccessKeyId": policy["oss_access_key_id"],
        "Signature": policy["signature"],
        "policy": policy["policy"],
        "key": key,
        "x-oss-object-acl": policy["x_oss_object_acl"],
        "x-oss-forbid-overwrite": policy["x_oss_forbid_overwrite"],
        "success_action_status": "200",
        "x-oss-content-type": "image/png",
    }


def test_upload_flow_stores_bytes_and_resolves_oss_urls(client, dashscope):
    policy = get_policy(client)
    assert policy["upload_host"] == dashscope.url + "/oss"
    assert policy["upload_dir"].startswith("dashscope-instant/")
    assert len(dashscope.policy_requests) == 1 and dashscope.policy_requests[0].query["model"] == "qwen3-vl-plus"
    key = policy["upload_dir"] + "/photo.png"
    data = bytes(range(256)) * 40 + b"\r\n--tail\r\n"
    with httpx.Client() as oss:  # no DashScope auth on the OSS upload
        r = oss.post(policy["upload_host"], data=oss_form(policy, key), files={"file": ("photo.png", data, "image/png")})
        assert r.status_code == 200 and r.content == b""
        assert dashscope.uploads == {key: data}
        # forbid-overwrite is honoured
        r = oss.post(policy["upload_host"], data=oss_form(policy, key), files={"file": ("photo.png", b"x")})
        assert r.status_code == 409 and "FileAlreadyExists" in r.text
    assert dashscope.pending == 0

    url = f"oss://{key}"
    r = client.post(
        "/compatible-mode/v1/chat/completions",
        json={"model": "qwen3-vl-plus", "messages": user(image(url), text("hi"))},
        headers={"X-DashScope-OssResourceResolve": "enable"},
    )
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"].startswith("I see 1 image(s)")
    assert_error(chat(client, messages=user(image(url))), 400, "invalid_parameter_error")  # header missing
    r = client.post(
        "/compatible-mode/v1/chat/completions",
        json={"model": "qwen3-vl-plus", "messages": user(image(f"oss://{policy['upload_dir']}/other.png"))},
        headers={"X-DashScope-OssResourceResolve": "enable"},
    )
    assert_error(r, 400, "invalid_parameter_error")  # never uploaded


def test_upload_rejects_bad_forms(client, dashscope):
    policy = get_policy(client)
    key = policy["upload_dir"] + "/a.png"
    with httpx.Client() as oss:
        form = oss_form(policy, key)
        del form["Signature"]
        r = oss.post(policy["upload_host"], data=form, files={"file": ("a.png", b"abc")})
        assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text and "Signature" in r.text

        # file not the last part
        boundary = "b0undary"
        parts = [("file", "abc"), *oss_form(policy, key).items()]
        body = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
            + ('; filename="a.png"' if name == "file" else "")
            + f"\r\n\r\n{value}\r\n"
            for name, value in parts
        ) + f"--{boundary}--\r\n"
        r = oss.post(policy["upload_host"], content=body.encode(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 400 and "last" in r.text

        r = oss.post(policy["upload_host"], data=oss_form(policy, "elsewhere/a.png"), files={"file": ("a.png", b"abc")})
        assert r.status_code == 403
        form = oss_form(policy, key)
        form["Signature"] = "forged"
        assert oss.post(policy["upload_host"], data=form, files={"file": ("a.png", b"abc")}).status_code == 403
    assert dashscope.uploads == {}


# --------------------------------------------------------------------------------------------------
# native multimodal-generation
# --------------------------------------------------------------------------------------------------


def test_native_default_reply(client, dashscope):
    url = png_data_url(100, 100)
    r = client.post(
        NATIVE,
        json={
            "model": "qwen-vl-ocr",
            "input": {"messages": user({"image": url}, {"image": "https://example.com/b.png"}, {"text": "read"})},
            "parameters": {"ocr_options": {"task": "text_recognition"}},
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["request_id"] == r.headers["x-request-id"]
    choice = body["output"]["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == [{"text": "OCR(text_recognition): I see 2 image(s)."}]
    from qwen_vl_core.tokens import image_tokens

    assert body["usage"]["image_tokens"] == image_tokens(100, 100, "qwen-vl-ocr") + 100
    assert body["usage"]["input_tokens"] == 10 + body["usage"]["image_tokens"]
    assert not dashscope.requests[-1].wants_stream

    r = client.post(NATIVE, json={"model": "qwen-vl-ocr", "input": {"messages": user({"image": url})}})
    assert r.json()["output"]["choices"][0]["message"]["content"][0]["text"] == "OCR(none): I see 1 image(s)."


@pytest.mark.parametrize("incremental", [True, False])
def test_native_stream(client, dashscope, incremental):
    r = client.post(
        NATIVE,
        json={
            "model": "qwen3-vl-plus",
            "input": {"messages": user({"image": "https://example.com/a.png"}, {"text": "x"})},
            "parameters": {"incremental_output": incremental, "enable_thinking": True},
        },
        headers={"X-DashScope-SSE": "enable"},
    )
    assert dashscope.requests[-1].wants_stream
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "event:result" in r.text and ":HTTP_STATUS/200" in r.text
    data = sse_data(r.text)
    assert "[DONE]" not in data
    events = [json.loads(d) for d in data]
    assert {e["request_id"] for e in events} == {r.headers["x-request-id"]}
    finishes = [e["output"]["choices"][0]["finish_reason"] for e in events]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {"null"}
    messages = [e["output"]["choices"][0]["message"] for e in events]
    texts = [m["content"][0]["text"] for m in messages if m["content"]]
    reasoning = [m.get("reasoning_content") or "" for m in messages]
    if incremental:
        assert "".join(texts) == "OCR(none): I see 1 image(s)."
        assert "".join(reasoning) == "Thinking about the request."
    else:
        assert texts[-1] == "OCR(none): I see 1 image(s)."
        assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))
    assert events[-1]["usage"]["output_tokens"] == len("OCR(none): I see 1 image(s).".split()) + 4


def test_native_accept_header_streams_and_qvq_rule(client):
    body = {"model": "qwen3-vl-plus", "input": {"messages": user({"text": "x"})}}
    r = client.post(NATIVE, json=body, headers={"Accept": "text/event-stream"})
    assert r.headers["content-type"].startswith("text/event-stream")
    r = client.post(NATIVE, json={**body, "model": "qvq-max"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameter"


def test_native_payload_helpers():
    done = native_completion("hi there", reasoning="hmm", request_id="r1")
    assert done["request_id"] == "r1"
    assert done["output"]["choices"][0]["message"] == {"role": "assistant", "content": [{"text": "hi there"}], "reasoning_content": "hmm"}
    assert done["usage"]["output_tokens"] == 3
    frames = native_frames(native_chunks("abcdefgh", piece=4, request_id="r2"))
    assert frames[0].startswith("id:1\nevent:result\n:HTTP_STATUS/200\ndata:{") and frames[0].endswith("\n\n")
    assert len(frames) == 2


def test_completion_helper_shape():
    c = completion("four words right here", reasoning="one two", tool_calls=[{"name": "f", "arguments": "{}"}])
    assert c["choices"][0]["finish_reason"] == "tool_calls"
    assert c["choices"][0]["message"]["tool_calls"][0]["id"].startswith("call_")
    usage = c["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 2
    assert set(usage["prompt_tokens_details"]) == {"image_tokens", "video_tokens", "text_tokens"}
    assert completion(usage={"prompt_tokens": 1})["usage"] == {"prompt_tokens": 1}
    assert completion(finish_reason="length")["choices"][0]["finish_reason"] == "length"


# --------------------------------------------------------------------------------------------------
# conftest: isolation and the network guard
# --------------------------------------------------------------------------------------------------


def test_environment_is_isolated(tmp_path, api_key):
    assert "DASHSCOPE_API_KEY" not in os.environ
    assert "DASHSCOPE_BASE_URL" not in os.environ and "DASHSCOPE_REGION" not in os.environ
    assert Path(os.environ["HOME"]).is_relative_to(tmp_path)
    assert Path.cwd().is_relative_to(tmp_path)
    assert api_key == "sk-test-0123456789abcdef"


def test_network_guard_blocks_non_loopback_connects():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        start = time.perf_counter()
        with pytest.raises(ConnectionError, match="blocked by the test network guard"):
            s.connect(("10.255.255.1", 80))
        assert time.perf_counter() - start < 1
        assert s.connect_ex(("10.255.255.1", 80)) != 0
    finally:
        s.close()
    with pytest.raises(ConnectionError, match="network guard"):
        socket.create_connection(("10.255.255.1", 80), timeout=5)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("dashscope.aliyuncs.com", 443)
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://10.255.255.1/", timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get("https://dashscope.aliyuncs.com/compatible-mode/v1/models", timeout=5)


async def test_network_guard_blocks_asyncio_and_allows_loopback(dashscope, api_key):
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        with pytest.raises(ConnectionError, match="network guard"):
            await asyncio.wait_for(loop.sock_connect(s, ("10.255.255.1", 80)), 5)
    finally:
        s.close()
    async with httpx.AsyncClient(timeout=5) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("http://10.255.255.1/")
        r = await c.post(
            dashscope.compatible_url + "/chat/completions",
            json={"model": "m", "messages": user(text("async"))},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        assert r.status_code == 200
        r = await c.get(dashscope.url.replace("127.0.0.1", "localhost") + "/missing")
        assert r.status_code == 404
