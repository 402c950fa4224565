"""The content-addressed cache: an interrupted job resumes paying only for the missing pages."""

from __future__ import annotations

import json

import pytest
from tests.support.llama_index import KEY, PageResponder, image_bytes, make_pdf, page_number, server_error

from llama_index_qwen_vl import QwenVLReader, QwenVLReaderError
from qwen_vl_core.documents.cache import CachedResult, ResultCache, cache_key


def make_reader(dashscope, cache_dir, **kwargs) -> QwenVLReader:
    kwargs.setdefault("dpi", 72)
    return QwenVLReader(
        api_key=KEY, base_url=dashscope.url, max_retries=0, num_workers=4, cache_dir=str(cache_dir), **kwargs
    )


def test_a_resumed_run_sends_only_the_missing_pages(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", 12)
    cache = tmp_path / "cache"
    dashscope.responder = PageResponder(fail={3: server_error, 9: server_error})
    with pytest.raises(QwenVLReaderError) as info:
        make_reader(dashscope, cache).load_data(pdf)  # "interrupted": two pages failed
    assert len(info.value.documents) == 10
    assert len(ResultCache(cache)) == 10
    dashscope.reset()
    dashscope.responder = PageResponder(text=lambda n: f"second run, page {n}")
    docs = make_reader(dashscope, cache).load_data(pdf)
    assert sorted(page_number(r) for r in dashscope.chat_requests) == [3, 9]  # only what was missing
    texts = [d.text for d in docs]
    assert texts[2] == "second run, page 3" and texts[8] == "second run, page 9"
    assert texts[0] == "text of page 1" and texts[11] == "text of page 12"  # from the cache
    first = info.value.documents[0]
    assert docs[0].metadata == first.metadata and docs[0].id_ == first.id_  # identical: docstores see no change
    dashscope.reset()
    again = make_reader(dashscope, cache).load_data(pdf)
    assert dashscope.chat_requests == [] and [d.text for d in again] == texts


async def test_resume_async(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", 8)
    cache = tmp_path / "cache"
    dashscope.responder = PageResponder(fail={5: server_error})
    reader = make_reader(dashscope, cache, on_error="skip")
    assert len(await reader.aload_data(pdf)) == 7
    dashscope.reset()
    dashscope.responder = PageResponder()
    assert len(await reader.aload_data(pdf)) == 8
    assert [page_number(r) for r in dashscope.chat_requests] == [5]


@pytest.mark.parametrize(
    "change",
    [{"mode": "ocr"}, {"model": "qwen3-vl-flash"}, {"prompt": "Only the title."}, {"max_tokens": 99}, {"dpi": 36},
     {"high_resolution": True}],  # fmt: skip
)
def test_anything_that_changes_the_answer_changes_the_key(dashscope, tmp_path, change):
    pdf = make_pdf(tmp_path / "doc.pdf", 2)
    cache = tmp_path / "cache"
    make_reader(dashscope, cache).load_data(pdf)
    dashscope.reset()
    make_reader(dashscope, cache, **change).load_data(pdf)
    assert len(dashscope.chat_requests) == 2


def test_same_image_under_another_name_is_a_hit(dashscope, tmp_path):
    cache = tmp_path / "cache"
    (tmp_path / "a.png").write_bytes(image_bytes("same"))
    (tmp_path / "b.png").write_bytes(image_bytes("same"))
    (tmp_path / "c.png").write_bytes(image_bytes("different"))
    make_reader(dashscope, cache).load_data(tmp_path / "a.png")
    docs = make_reader(dashscope, cache).load_data([tmp_path / "b.png", tmp_path / "c.png"])
    assert len(dashscope.chat_requests) == 2  # a.png, then only c.png
    assert docs[0].metadata["file_name"] == "b.png"


def test_corrupt_entries_are_ignored_and_rewritten(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 1)
    cache = tmp_path / "cache"
    make_reader(dashscope, cache).load_data(pdf)
    (entry,) = list(cache.glob("??/*.json"))
    entry.write_text("{not json")
    dashscope.reset()
    (doc,) = make_reader(dashscope, cache).load_data(pdf)
    assert len(dashscope.chat_requests) == 1 and doc.text
    assert json.loads(entry.read_text())["text"] == doc.text


def test_cache_key_and_entries():
    key = cache_key("ab" * 32, model="m", mode="ocr", prompt="p", options={"max_tokens": 5})
    assert key == cache_key("ab" * 32, model="m", mode="ocr", prompt="p", options={"max_tokens": 5})
    assert key != cache_key("ab" * 32, model="m", mode="ocr", prompt="p", options={"max_tokens": 6})
    assert key != cache_key("cd" * 32, model="m", mode="ocr", prompt="p", options={"max_tokens": 5})


def test_cache_round_trip_and_no_temp_files_left(tmp_path):
    cache = ResultCache(tmp_path)
    key = "f" * 64
    assert cache.get(key) is None and key not in cache
    cache.put(key, CachedResult(text="héllo", model="m", request_id="r", usage={"input_tokens": 3}))
    assert cache.get(key) == CachedResult(text="héllo", model="m", request_id="r", usage={"input_tokens": 3})
    assert [p.name for p in (tmp_path / "ff").iterdir()] == [f"{key}.json"]
    other = "e" * 64
    (tmp_path / "ee").mkdir()
    (tmp_path / "ee" / f"{other}.json").write_text(json.dumps({"key": key, "text": "wrong entry"}))
    assert cache.get(other) is None  # an entry must name its own key
