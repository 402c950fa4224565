"""The transport prefers httpx2 and still accepts clients of either httpx2 or httpx from a user."""

import os
import time

import httpx
import pytest
from PIL import Image

from qwen_vl_core import APIConnectionError, APITimeoutError, QwenVLClient
from qwen_vl_core._http import BACKEND, TIMEOUT_ERRORS, TRANSPORT_ERRORS, module_of
from tests.fake_dashscope import Json, Reset, Slow, completion

USER = [{"role": "user", "content": "hi"}]


def test_backend_is_httpx2_where_installed():
    pytest.importorskip("httpx2")
    assert BACKEND == "httpx2"
    import httpx2

    assert httpx.TransportError in TRANSPORT_ERRORS and httpx2.TransportError in TRANSPORT_ERRORS
    assert httpx.TimeoutException in TIMEOUT_ERRORS
    assert module_of(httpx.Client()) is httpx and module_of(httpx2.Client()) is httpx2


def test_user_supplied_httpx_client_errors_are_typed(dashscope, api_key):
    dashscope.script(Reset(), Json(completion("ok")), Slow(Json(completion("late")), 1.0))
    with httpx.Client(timeout=0.3) as http:
        client = QwenVLClient(api_key=api_key, base_url=dashscope.url, http_client=http, max_retries=0)
        with pytest.raises(APIConnectionError):
            client.chat(USER, model="qwen3-vl-plus")
        assert client.chat(USER, model="qwen3-vl-plus").text == "ok"
        with pytest.raises(APITimeoutError):
            client.chat(USER, model="qwen3-vl-plus")


async def test_user_supplied_async_httpx_client(dashscope, api_key):
    async with httpx.AsyncClient() as http:
        client = QwenVLClient(api_key=api_key, base_url=dashscope.url, async_http_client=http)
        assert "I see" in (await client.achat(USER, model="qwen3-vl-plus")).text


def test_upload_through_a_user_supplied_httpx_client(dashscope, api_key, tmp_path):
    path = tmp_path / "noise.png"
    Image.frombytes("RGB", (2200, 1400), os.urandom(2200 * 1400 * 3)).save(path)
    with httpx.Client() as http:
        client = QwenVLClient(api_key=api_key, base_url=dashscope.url, http_client=http, resize=False)
        client.chat([{"role": "user", "content": [{"image": str(path)}]}], model="qwen3-vl-plus")
    url = dashscope.chat_requests[-1].json["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("oss://") and dashscope.uploads[url[len("oss://"):]] == path.read_bytes()


def test_limits_hold_with_a_user_supplied_httpx_client(dashscope, api_key):
    from qwen_vl_core.errors import ResponseTooLargeError
    from tests.fake_dashscope import Dribble, Huge, Sse, chunks

    with httpx.Client(timeout=3) as http:
        client = QwenVLClient(api_key=api_key, base_url=dashscope.url, http_client=http, deadline=1.5,
                              stream_idle_timeout=1, max_response_bytes=1024 * 1024)
        dashscope.script(Dribble(Json(completion("a slow answer")), every=0.25, size=8))
        start = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline"):
            client.chat(USER, model="qwen3-vl-plus")
        dashscope.script(Dribble(Sse(chunks("a trickle")), every=0.25, size=16))
        with pytest.raises(APITimeoutError, match="stream_idle_timeout"):
            list(client.stream(USER, model="qwen3-vl-plus"))
        assert time.monotonic() - start < 5
        dashscope.script(Huge(3 * 1024 * 1024, declare_length=False))
        with pytest.raises(ResponseTooLargeError):
            client.chat(USER, model="qwen3-vl-plus")
    assert len(dashscope.chat_requests) == 3
