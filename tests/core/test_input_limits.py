"""Inputs refused before anything is sent, over real sockets: text that is not valid Unicode (a lone
surrogate) names the message and the part; a prompt that cannot fit the model's context window names
the estimate and the window (known models only), decided cheaply."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from qwen_vl_core import InputValidationError, QwenVLClient, get_capabilities
from qwen_vl_core import estimate as estimate_module
from qwen_vl_core.estimate import check_context_window, wire_tokens
from qwen_vl_core.messages import MediaSettings, normalize_messages


@pytest.fixture
def client(dashscope, api_key):
    c = QwenVLClient(api_key=api_key, base_url=dashscope.url, max_retries=0, timeout=30, resize=False)
    yield c
    c.close()


# ------------------------------------------------------------------ lone surrogates


def test_a_lone_surrogate_in_message_text_is_refused_naming_the_message(client, dashscope):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi \ud83d there"}]
    where = r"message 1 \(user\) content contains a lone surrogate '\\ud83d' at character 3"
    with pytest.raises(InputValidationError, match=where):
        client.chat(messages, model="qwen3-vl-plus")
    assert dashscope.chat_requests == []


def test_a_lone_surrogate_in_a_text_part_names_the_part(client, dashscope):
    parts = [{"type": "text", "text": "ok"}, {"type": "text", "text": "ok ✓"}, {"type": "text", "text": "\udcff"}]
    with pytest.raises(InputValidationError, match=r"message 0 \(user\) part 2 \(text\)"):
        list(client.stream([{"role": "user", "content": parts}], model="qwen3-vl-plus"))
    native = [{"role": "user", "content": [{"text": "x\udc80"}]}]
    with pytest.raises(InputValidationError, match=r"message 0 \(user\) part 0 \(text\)"):
        client.prepare(native, model="qwen3-vl-plus", stream=False)
    assert dashscope.chat_requests == []


def test_a_lone_surrogate_in_tool_call_arguments_is_refused(client, dashscope):
    messages = [
        {"role": "user", "content": "add"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": "\ud800"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
    ]  # fmt: skip
    with pytest.raises(InputValidationError, match=r"message 1 \(assistant\) tool_calls"):
        client.chat(messages, model="qwen3-vl-plus")
    assert dashscope.chat_requests == []


def test_valid_non_ascii_text_is_sent(client, dashscope):
    client.chat([{"role": "user", "content": "emoji 😀, 中文, café"}], model="qwen3-vl-plus")
    assert dashscope.last_body["messages"][0]["content"] == "emoji 😀, 中文, café"


# ------------------------------------------------------------------ the context window


def test_a_30_mb_prompt_is_refused_cheaply_naming_the_estimate_and_the_window(client, dashscope, monkeypatch):
    def must_not_count(text):  # the bounds alone decide: no per-character pass
        raise AssertionError("the exact low count ran for a prompt far over the window")

    monkeypatch.setattr(estimate_module, "_low_text_tokens", must_not_count)
    prompt = "x" * 30_000_000
    with pytest.raises(InputValidationError) as info:
        client.chat([{"role": "user", "content": prompt}], model="qwen3-vl-plus")
    message = str(info.value)
    assert "about 7,500,007 tokens" in message and "262,144-token context window of 'qwen3-vl-plus'" in message
    assert "nothing was sent" in message
    assert dashscope.chat_requests == []


async def test_async_and_streamed_calls_are_checked_too(client, dashscope):
    prompt = [{"role": "user", "content": "y" * 2_000_000}]
    with pytest.raises(InputValidationError, match="context window"):
        await client.achat(prompt, model="qwen-vl-max")
    with pytest.raises(InputValidationError, match="context window"):
        async for _ in client.astream(prompt, model="qwen-vl-max"):
            pass
    with pytest.raises(InputValidationError, match="context window"):
        list(client.stream(prompt, model="qwen-vl-max"))
    assert dashscope.chat_requests == []


def test_near_the_limit_the_text_is_counted_and_a_prompt_that_may_fit_is_sent(client, dashscope, monkeypatch):
    counted = []
    real = estimate_module._low_text_tokens
    monkeypatch.setattr(estimate_module, "_low_text_tokens", lambda t: counted.append(len(t)) or real(t))
    window = get_capabilities("qwen-vl-max").context_window  # 131,072
    ascii_prompt = "word " * 120_000  # 600,000 ASCII characters: about 150,000 tokens by the estimate
    client.chat([{"role": "user", "content": ascii_prompt}], model="qwen-vl-max")
    assert counted and len(dashscope.chat_requests) == 1  # English at 4+ characters a token may fit: sent
    cjk_prompt = "字" * 300_000  # at 2 characters a token still 150,000 > 131,072: cannot fit
    with pytest.raises(InputValidationError, match=f"about 300,00[0-9] tokens.*{window:,}-token context window"):
        client.chat([{"role": "user", "content": cjk_prompt}], model="qwen-vl-max")
    assert len(dashscope.chat_requests) == 1


def test_images_count_towards_the_window(client, dashscope):
    buf = io.BytesIO()
    Image.new("RGB", (2000, 2000), (10, 120, 200)).save(buf, "PNG")
    image = buf.getvalue()
    parts = [{"type": "image", "image": image} for _ in range(60)] + [{"type": "text", "text": "compare"}]
    with pytest.raises(InputValidationError, match=r"60 media items\), more than the 131,072-token context window"):
        client.chat([{"role": "user", "content": parts}], model="qwen-vl-max")  # 60 x 2,509 tokens
    client.chat([{"role": "user", "content": parts[-10:]}], model="qwen-vl-max")
    assert len(dashscope.chat_requests) == 1


def test_unknown_models_are_not_checked(client, dashscope):
    client.chat([{"role": "user", "content": "字" * 300_000}], model="acme-vision-1")
    assert len(dashscope.chat_requests) == 1


def test_token_estimates_still_count_a_prompt_over_the_window():
    settings = MediaSettings(model="qwen-vl-max")
    wire = normalize_messages([{"role": "user", "content": "字" * 300_000}], settings)
    caps = get_capabilities("qwen-vl-max")
    assert wire_tokens(wire, caps) == 300_000 + 4 + 3  # prepare() and estimates never refuse; sending does
    with pytest.raises(InputValidationError):
        check_context_window(wire, caps)


def test_native_wire_messages_are_estimated_too():
    settings = MediaSettings(model="qwen3-vl-plus")
    compatible = normalize_messages([{"role": "user", "content": "hello there"}], settings, "compatible")
    native = normalize_messages([{"role": "user", "content": "hello there"}], settings, "native")
    caps = get_capabilities("qwen3-vl-plus")
    assert wire_tokens(native, caps) == wire_tokens(compatible, caps) > 7
