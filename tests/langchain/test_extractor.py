"""QwenVLExtractor against the local DashScope server: input forms, fenced answers, the repair loop,
batch / abatch (failures, concurrency), thinking, async, and LangChain Runnable behaviour."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import threading
import time
from typing import Any

import pytest
from tests.support.chat import Json, Sse, chunks, completion, data_url, make_model, png_bytes, user_parts
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from PIL import Image
from pydantic import BaseModel

from langchain_qwen_vl import (
    DEFAULT_EXTRACTION_PROMPT,
    ChatQwenVL,
    ExtractionError,
    InputValidationError,
    QwenVLError,
    QwenVLExtractor,
)

from tests.fake_dashscope import error_body


class Receipt(BaseModel):
    merchant: str
    total: float


GOOD = {"merchant": "Cafe Lumen", "total": 12.5}
RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def good(**extra: Any) -> Json:
    return Json(completion(json.dumps({**GOOD, **extra})))


def image_urls(body: dict) -> list[str]:
    return [p["image_url"]["url"] for p in user_parts(body, 0) if p.get("type") == "image_url"]


def prompt_of(body: dict, index: int = 0) -> str:
    return "".join(p.get("text", "") for p in user_parts(body, index) if p.get("type") == "text")


def decoded(url: str) -> bytes:
    assert url.startswith("data:image/")
    return base64.b64decode(url.split(",", 1)[1])


@pytest.fixture
def extractor(dashscope) -> QwenVLExtractor:
    return QwenVLExtractor(Receipt, llm=make_model(dashscope))


# ------------------------------------------------------------------ input forms


def _forms(tmp_path) -> dict[str, tuple[Any, bytes | str]]:
    """form name -> (input value, what the wire carries: the PNG bytes or the URL itself)."""
    data = png_bytes(64, 48, RED)
    path = tmp_path / "receipt.png"
    path.write_bytes(data)
    return {
        "path-str": (str(path), data),
        "path": (path, data),
        "file-uri": (path.as_uri(), data),
        "bytes": (data, data),
        "data-url": (data_url(data), data),
        "pil": (Image.open(io.BytesIO(data)), None),  # re-encoded: compared by pixels below
        "url": ("https://example.com/receipt.png", "https://example.com/receipt.png"),
    }


@pytest.mark.parametrize("form", ["path-str", "path", "file-uri", "bytes", "data-url", "pil", "url"])
def test_each_single_image_form(form, extractor, dashscope, tmp_path) -> None:
    value, expected = _forms(tmp_path)[form]
    dashscope.script(good())

    assert extractor.invoke(value) == Receipt(**GOOD)

    (request,) = dashscope.chat_requests
    (url,) = image_urls(request.json)
    if isinstance(expected, str):
        assert url == expected
    elif expected is None:
        assert Image.open(io.BytesIO(decoded(url))).convert("RGB").getpixel((5, 5)) == RED
    else:
        assert decoded(url) == expected
    assert prompt_of(request.json) == DEFAULT_EXTRACTION_PROMPT
    assert user_parts(request.json, 0)[-1]["type"] == "text"  # images first, then the instruction


def test_a_list_is_one_document_in_one_request(extractor, dashscope, tmp_path) -> None:
    pages = [png_bytes(64, 48, c) for c in (RED, GREEN, BLUE)]
    (tmp_path / "p2.png").write_bytes(pages[1])
    dashscope.script(good())

    extractor.invoke([pages[0], tmp_path / "p2.png", data_url(pages[2])])

    (request,) = dashscope.chat_requests
    assert [decoded(u) for u in image_urls(request.json)] == pages  # all pages, in order
    assert "The 3 images are the pages of one document" in prompt_of(request.json)


def test_a_dict_input_with_its_own_prompt(extractor, dashscope) -> None:
    dashscope.script(good(), good())
    extractor.invoke({"image": png_bytes(), "prompt": "Read the receipt; the total is handwritten."})
    extractor.invoke({"images": [png_bytes(), png_bytes()], "prompt": "Both pages, please."})

    first, second = (r.json for r in dashscope.chat_requests)
    assert prompt_of(first) == "Read the receipt; the total is handwritten."
    assert len(image_urls(second)) == 2 and prompt_of(second) == "Both pages, please."


def test_the_constructor_prompt_is_the_default(dashscope) -> None:
    dashscope.script(good(), good())
    extractor = QwenVLExtractor(Receipt, prompt="Extract the receipt header.", llm=make_model(dashscope))
    extractor.invoke(png_bytes())
    extractor.invoke({"image": png_bytes(), "prompt": "Per-call prompt."})
    assert [prompt_of(r.json) for r in dashscope.chat_requests] == ["Extract the receipt header.", "Per-call prompt."]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "the list of images is empty"),
        (None, "no image given"),
        ({"image": b"x", "images": [b"x"]}, "exactly one of 'image' or 'images'"),
        ({"prompt": "hi"}, "exactly one of 'image' or 'images'"),
        ({"picture": "a.png"}, "unknown key(s) 'picture'"),
        ({"image": "a.png", "prompt": "  "}, "'prompt' must be a non-empty string"),
        ("missing.png", "no such file"),
        (b"not an image at all", "accepted image formats"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(value, message, extractor, dashscope) -> None:
    with pytest.raises(InputValidationError) as info:
        extractor.invoke(value)
    assert message in str(info.value)
    assert dashscope.requests == []


# ------------------------------------------------------------------ answers and repairs


def test_a_fenced_json_answer_is_accepted(extractor, dashscope) -> None:
    dashscope.script(Json(completion("Here is the data:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nDone.")))
    assert extractor.invoke(png_bytes()) == Receipt(**GOOD)
    assert len(dashscope.chat_requests) == 1


def test_a_schema_violation_is_repaired(extractor, dashscope) -> None:
    bad = json.dumps({"merchant": "Cafe Lumen", "total": "twelve fifty"})
    dashscope.script(Json(completion(bad)), good())

    assert extractor.invoke(png_bytes()) == Receipt(**GOOD)

    first, second = (r.json for r in dashscope.chat_requests)
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][0] == first["messages"][0]  # the image and prompt are sent again
    assert second["messages"][1]["content"] == bad  # the wrong answer, as the model gave it
    repair = second["messages"][2]["content"]
    assert "$.total: Input should be a valid number" in repair
    assert "corrected JSON object only" in repair
    assert second["response_format"] == first["response_format"]


def test_invalid_json_is_repaired_in_json_mode(dashscope) -> None:
    extractor = QwenVLExtractor(Receipt, llm=make_model(dashscope, model="qwen-vl-max"))
    dashscope.script(Json(completion("The merchant is Cafe Lumen and the total 12.50.")), good())

    assert extractor.invoke(png_bytes()).total == 12.5

    second = dashscope.chat_requests[1].json
    assert second["response_format"] == {"type": "json_object"}
    assert "the answer is not valid JSON" in second["messages"][2]["content"]


def test_exhausted_repairs_raise_with_the_raw_text_and_the_errors(dashscope) -> None:
    extractor = QwenVLExtractor(Receipt, llm=make_model(dashscope), max_repairs=1)
    last = json.dumps({"merchant": "Cafe Lumen"})
    dashscope.script(Json(completion("{}")), Json(completion(last, request_id="req-last")))

    with pytest.raises(ExtractionError) as info:
        extractor.invoke(png_bytes())

    err = info.value
    assert isinstance(err, QwenVLError) and isinstance(err, ValueError)
    assert err.raw_text == last
    assert err.errors == ["$.total: Field required"]
    assert err.attempts == 2 and err.request_id == "req-last"
    assert "no valid Receipt after 2 attempts: $.total: Field required" in str(err)
    assert len(dashscope.chat_requests) == 2
    second = dashscope.chat_requests[1].json
    assert "$.merchant: Field required" in second["messages"][2]["content"]  # what "{}" lacked


def test_max_repairs_zero_makes_one_request(dashscope) -> None:
    dashscope.script(Json(completion("no json here")))
    with pytest.raises(ExtractionError) as info:
        QwenVLExtractor(Receipt, llm=make_model(dashscope), max_repairs=0).invoke(png_bytes())
    assert info.value.attempts == 1 and info.value.raw_text == "no json here"
    assert len(dashscope.chat_requests) == 1


def test_a_truncated_answer_says_so(dashscope) -> None:
    dashscope.script(Json(completion('{"merchant": "Caf', finish_reason="length")))
    with pytest.raises(ExtractionError) as info:
        QwenVLExtractor(Receipt, llm=make_model(dashscope), max_repairs=0).invoke(png_bytes())
    assert any("cut off" in e for e in info.value.errors)


def test_server_errors_are_not_repaired(extractor, dashscope) -> None:
    from langchain_qwen_vl import BadRequestError

    dashscope.script(Json(error_body("Input data may contain inappropriate content.", "invalid_parameter"), 400))
    with pytest.raises(BadRequestError):
        extractor.invoke(png_bytes())
    assert len(dashscope.chat_requests) == 1


def test_include_raw(dashscope) -> None:
    dashscope.script(Json(completion("{}")), Json(completion(json.dumps(GOOD), request_id="req-2")))
    out = QwenVLExtractor(Receipt, llm=make_model(dashscope), include_raw=True).invoke(png_bytes())
    assert out["parsed"] == Receipt(**GOOD) and out["attempts"] == 2
    assert isinstance(out["raw"], AIMessage) and out["raw"].response_metadata["request_id"] == "req-2"
    assert out["raw"].usage_metadata["input_tokens"] > 0


# ------------------------------------------------------------------ batch and concurrency


def _by_prompt(rec) -> Json:
    """A valid answer, except for prompts containing 'smudged' (an answer that never validates)."""
    text = prompt_of(rec.json)
    return Json(completion("{}" if "smudged" in text else json.dumps(GOOD)))


BATCH = [
    {"image": png_bytes(), "prompt": "receipt 1"},
    {"image": png_bytes(), "prompt": "receipt 2, smudged"},
    {"image": png_bytes(), "prompt": "receipt 3"},
]


def test_batch_return_exceptions_keeps_the_other_results(dashscope) -> None:
    dashscope.responder = _by_prompt
    extractor = QwenVLExtractor(Receipt, llm=make_model(dashscope), max_repairs=1)

    results = extractor.batch(BATCH, return_exceptions=True)

    assert results[0] == results[2] == Receipt(**GOOD)
    assert isinstance(results[1], ExtractionError) and results[1].attempts == 2
    assert len(dashscope.chat_requests) == 4  # 1 + 2 attempts + 1


def test_batch_without_return_exceptions_raises(dashscope) -> None:
    dashscope.responder = _by_prompt
    extractor = QwenVLExtractor(Receipt, llm=make_model(dashscope), max_repairs=0)
    with pytest.raises(ExtractionError, match=r"\$\.merchant: Field required"):
        extractor.batch(BATCH)


async def test_abatch_return_exceptions(dashscope) -> None:
    dashscope.responder = _by_prompt
    extractor = QwenVLExtractor(Receipt, llm=make_model(dashscope), max_repairs=0)
    results = await extractor.abatch(BATCH, return_exceptions=True)
    assert [type(r) for r in results] == [Receipt, ExtractionError, Receipt]
    with pytest.raises(ExtractionError):
        await extractor.abatch(BATCH)


class Overlap:
    """A responder that holds each request for ``hold`` seconds and records how many overlap."""

    def __init__(self, hold: float = 0.15) -> None:
        self.hold = hold
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, rec) -> Json:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.hold)
        with self.lock:
            self.active -= 1
        return good()


async def test_abatch_honours_max_concurrency(dashscope) -> None:
    overlap = Overlap()
    dashscope.responder = overlap
    extractor = QwenVLExtractor(Receipt, llm=make_model(dashscope))

    started = time.perf_counter()
    results = await extractor.abatch([png_bytes()] * 6, config={"max_concurrency": 2})
    elapsed = time.perf_counter() - started

    assert results == [Receipt(**GOOD)] * 6
    assert overlap.peak == 2  # concurrent, and never more than allowed
    assert elapsed >= 3 * overlap.hold  # 6 requests, 2 at a time

    overlap.peak = 0
    await extractor.abatch([png_bytes()] * 4)  # no limit: all at once
    assert overlap.peak == 4


def test_batch_honours_max_concurrency(dashscope) -> None:
    overlap = Overlap(0.1)
    dashscope.responder = overlap
    extractor = QwenVLExtractor(Receipt, llm=make_model(dashscope))
    assert extractor.batch([png_bytes()] * 5, config={"max_concurrency": 3}) == [Receipt(**GOOD)] * 5
    assert overlap.peak == 3


async def test_ainvoke_is_natively_async(dashscope, monkeypatch) -> None:
    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sync path was used")

    monkeypatch.setattr(ChatQwenVL, "_generate", no_sync)
    dashscope.script(Json(completion("{}")), good())
    extractor = QwenVLExtractor(Receipt, llm=make_model(dashscope))
    assert await extractor.ainvoke(png_bytes()) == Receipt(**GOOD)
    assert len(dashscope.chat_requests) == 2
    # and many at once on one event loop
    dashscope.responder = lambda rec: good()
    assert await asyncio.gather(*(extractor.ainvoke(png_bytes()) for _ in range(3))) == [Receipt(**GOOD)] * 3


# ------------------------------------------------------------------ thinking


def test_thinking_is_turned_off_on_a_thinking_by_default_model(dashscope) -> None:
    dashscope.script(good())
    QwenVLExtractor(Receipt, llm=make_model(dashscope, model="qwen3.5-plus")).invoke(png_bytes())
    body = dashscope.last_body
    assert body["enable_thinking"] is False
    assert body.get("stream") is not True  # a plain, non-thinking call


def test_thinking_is_turned_off_when_streaming_too(dashscope) -> None:
    dashscope.script(Sse(chunks(json.dumps(GOOD), model="qwen3.5-plus")))
    llm = make_model(dashscope, model="qwen3.5-plus", streaming=True)
    assert QwenVLExtractor(Receipt, llm=llm).invoke(png_bytes()) == Receipt(**GOOD)
    assert dashscope.last_body["enable_thinking"] is False and dashscope.last_body["stream"] is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "qvq-max"}, "always thinks"),
        ({"model": "qwen3-vl-235b-a22b-thinking"}, "always thinks"),
        ({"model": "acme-vl-thinking"}, "always thinks"),  # unknown, but named as a thinking-only model
        ({"model": "qwen-vl-ocr"}, "has no structured (JSON) output"),
    ],
)
def test_models_that_cannot_extract_are_refused_at_construction(kwargs, message, dashscope) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        QwenVLExtractor(Receipt, llm=make_model(dashscope, **kwargs))
    assert dashscope.requests == []


# ------------------------------------------------------------------ construction and Runnable behaviour


def test_chat_kwargs_build_the_model(dashscope, api_key) -> None:
    extractor = QwenVLExtractor(Receipt, model="qwen3-vl-flash", api_key=api_key, base_url=dashscope.url, max_retries=0)
    assert isinstance(extractor.llm, ChatQwenVL) and extractor.llm.model == "qwen3-vl-flash"
    dashscope.script(good())
    extractor.invoke(png_bytes())
    assert dashscope.last_body["model"] == "qwen3-vl-flash"
    assert api_key not in repr(extractor)


def test_default_model_is_qwen3_vl_plus(dashscope, api_key) -> None:
    assert QwenVLExtractor(Receipt, api_key=api_key, base_url=dashscope.url).llm.model == "qwen3-vl-plus"


def test_constructor_errors(dashscope) -> None:
    with pytest.raises(TypeError, match="either llm or ChatQwenVL settings"):
        QwenVLExtractor(Receipt, llm=make_model(dashscope), model="qwen3-vl-flash")
    with pytest.raises(ValueError, match="max_repairs"):
        QwenVLExtractor(Receipt, llm=make_model(dashscope), max_repairs=-1)
    with pytest.raises(ValueError, match="prompt"):
        QwenVLExtractor(Receipt, llm=make_model(dashscope), prompt="")


def test_output_type_and_stream(extractor, dashscope) -> None:
    assert extractor.OutputType is Receipt
    assert QwenVLExtractor({"type": "object"}, llm=extractor.llm).OutputType is dict
    dashscope.script(good())
    assert list(extractor.stream(png_bytes())) == [Receipt(**GOOD)]


def test_composes_and_reports_every_attempt_to_callbacks(extractor, dashscope) -> None:
    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.chains: list[str] = []
            self.chat_parents: list[Any] = []
            self.run_ids: dict[Any, str] = {}

        def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs) -> None:
            self.chains.append(kwargs.get("name"))
            self.run_ids[run_id] = kwargs.get("name")

        def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs) -> None:
            self.chat_parents.append(self.run_ids.get(parent_run_id))

    recorder = Recorder()
    chain = extractor.with_config(run_name="receipt-extractor") | RunnableLambda(lambda r: r.total)
    dashscope.script(Json(completion("{}")), good())

    with get_usage_metadata_callback() as usage:
        assert chain.invoke(png_bytes(), {"callbacks": [recorder]}) == 12.5

    assert "receipt-extractor" in recorder.chains
    assert recorder.chat_parents == ["receipt-extractor", "receipt-extractor"]  # both attempts, as children
    (totals,) = usage.usage_metadata.values()  # the tokens of both attempts
    expected = sum(completion(text)["usage"]["total_tokens"] for text in ("{}", json.dumps(GOOD)))
    assert totals["total_tokens"] == expected


def test_invoke_takes_no_stray_kwargs(extractor) -> None:
    with pytest.raises(TypeError, match="no keyword arguments"):
        extractor.invoke(png_bytes(), temperature=0)


def test_extraction_error_pickles() -> None:
    import pickle

    errors = ["$.total: Field required"]
    err = ExtractionError("no valid Receipt", raw_text="{}", errors=errors, attempts=3, request_id="r")
    back = pickle.loads(pickle.dumps(err))
    assert (back.raw_text, back.errors, back.attempts, back.request_id) == ("{}", ["$.total: Field required"], 3, "r")
