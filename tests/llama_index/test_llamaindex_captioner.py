"""QwenVLImageCaptioner in an IngestionPipeline: captions into image nodes, concurrency, error
policy, and a pipeline cache key that includes the image bytes."""

from __future__ import annotations

import base64
import io

import pytest
from llama_index.core.ingestion import IngestionCache, IngestionPipeline
from llama_index.core.ingestion.pipeline import get_transformation_hash
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document, ImageDocument, ImageNode, MetadataMode, TextNode
from tests.support.llama_index import KEY, Json, completion, image_bytes, sent_images, server_error
from PIL import Image

from llama_index_qwen_vl import QwenVLImageCaptioner, QwenVLReaderError
from llama_index_qwen_vl.captioner import CAPTION_METADATA_KEYS, node_image_sha256

COLORS = {(255, 0, 0): "red", (0, 0, 255): "blue", (0, 128, 0): "green", (255, 255, 0): "yellow"}


def color_png(color: str, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def describe_color(rec):
    """Answers like a model would: names the color of the image it was sent."""
    images = sent_images(rec)
    name = COLORS.get(images[0].convert("RGB").getpixel((5, 5)), "unknown") if images else "remote"
    return Json(completion(f"A plain {name} square."))


def make_captioner(dashscope, **kwargs) -> QwenVLImageCaptioner:
    return QwenVLImageCaptioner(api_key=KEY, base_url=dashscope.url, max_retries=0, **kwargs)


def test_captions_image_nodes_and_leaves_others(dashscope, tmp_path):
    dashscope.responder = describe_color
    path = tmp_path / "blue.png"
    path.write_bytes(color_png("blue"))
    nodes = [
        ImageNode(image=b64(color_png("red"))),
        ImageNode(image_path=str(path), text="Figure 2."),
        TextNode(text="just text"),
        ImageDocument(image=b64(color_png("green"))),
    ]
    out = make_captioner(dashscope)(nodes)
    assert out is nodes
    assert out[0].text == "A plain red square."
    assert out[1].text == "Figure 2.\n\nA plain blue square."  # existing text kept
    assert out[2].text == "just text" and out[2].metadata == {}
    assert out[3].text == "A plain green square."
    assert len(dashscope.chat_requests) == 3
    meta = out[0].metadata
    assert meta["image_sha256"] == node_image_sha256(out[0]) and meta["qwen_vl_mode"] == "caption"
    assert meta["qwen_vl_request_id"] and meta["qwen_vl_input_tokens"] > 0
    for key in CAPTION_METADATA_KEYS:
        assert key in out[0].excluded_embed_metadata_keys and key in out[0].excluded_llm_metadata_keys
    assert "qwen_vl" not in out[0].get_content(MetadataMode.EMBED)


def test_remote_images_are_sent_by_url_not_downloaded(dashscope):
    node = ImageNode(image_url="https://example.com/cat.jpg")
    make_captioner(dashscope, mode="ocr")([node])
    part = dashscope.last_body["messages"][0]["content"][0]
    assert part == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    assert node.text.startswith("I see 1 image(s)")


def test_running_twice_does_not_caption_twice(dashscope):
    node = ImageNode(image=b64(color_png("red")))
    captioner = make_captioner(dashscope)
    captioner([node])
    text = node.text
    captioner([node])
    assert node.text == text and len(dashscope.chat_requests) == 1
    make_captioner(dashscope, mode="ocr")([node])  # other settings: a new answer is appended
    assert node.text.startswith(text + "\n\n") and len(dashscope.chat_requests) == 2


def test_pipeline_cache_key_includes_the_image(dashscope):
    """Same text, same metadata, different pixels: never one cache entry."""
    dashscope.responder = describe_color
    cache = IngestionCache()
    captioner = make_captioner(dashscope)

    def run(color: str):
        pipeline = IngestionPipeline(transformations=[captioner], cache=cache)
        return pipeline.run(nodes=[ImageNode(id_="img", image=b64(color_png(color)), text="")])

    assert run("red")[0].text == "A plain red square."
    assert run("blue")[0].text == "A plain blue square."  # not the cached red caption
    assert len(dashscope.chat_requests) == 2
    assert run("red")[0].text == "A plain red square."  # an unchanged image is not paid for again
    assert len(dashscope.chat_requests) == 2


def test_why_the_pipeline_cache_never_answers_for_the_captioner():
    red = [ImageNode(image=b64(color_png("red")))]
    blue = [ImageNode(image=b64(color_png("blue")))]
    splitter = SentenceSplitter()
    assert get_transformation_hash(red, splitter) == get_transformation_hash(blue, splitter)  # LlamaIndex's key
    captioner = QwenVLImageCaptioner(api_key=KEY)
    # the captioner's key is new on every run: no stale caption can be served for another image
    assert get_transformation_hash(red, captioner) != get_transformation_hash(red, captioner)
    assert "image" not in str(captioner.to_dict())  # no node data in the configuration


def test_cache_dir_serves_unchanged_images_across_captioners(dashscope, tmp_path):
    dashscope.responder = describe_color
    for _ in range(2):
        nodes = [ImageNode(image=b64(color_png("red"))), ImageNode(image=b64(color_png("blue")))]
        out = make_captioner(dashscope, cache_dir=str(tmp_path / "answers"))(nodes)
        assert [n.text for n in out] == ["A plain red square.", "A plain blue square."]
    assert len(dashscope.chat_requests) == 2  # the second captioner paid for nothing


def test_downstream_transformations_are_keyed_on_the_image_too(dashscope):
    dashscope.responder = lambda rec: Json(completion("Same caption for every image."))
    cache = IngestionCache()
    splitter = SentenceSplitter()
    splits: list[int] = []

    class Counting(SentenceSplitter):
        def __call__(self, nodes, **kwargs):
            splits.append(len(nodes))
            return super().__call__(nodes, **kwargs)

    for color in ("red", "blue"):
        IngestionPipeline(transformations=[make_captioner(dashscope), Counting()], cache=cache).run(
            nodes=[ImageNode(image=b64(color_png(color)))]
        )
    assert splits == [1, 1]  # identical captions, but the metadata carries each image's hash
    assert splitter  # (the plain splitter would have been a cache hit the second time)


async def test_async_pipeline_runs_images_concurrently(dashscope):
    import threading
    import time

    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def respond(rec):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        return describe_color(rec)

    dashscope.responder = respond
    nodes = [ImageNode(image=b64(color_png(c, (64 + i, 48)))) for i, c in enumerate(["red", "blue", "green", "yellow"] * 2)]
    pipeline = IngestionPipeline(transformations=[make_captioner(dashscope, num_workers=8)])
    out = await pipeline.arun(nodes=nodes)
    assert state["peak"] == 8  # all eight images in flight at once
    assert [n.text for n in out[:4]] == [f"A plain {c} square." for c in ("red", "blue", "green", "yellow")]


def test_raise_policy_keeps_the_successful_nodes(dashscope):
    def respond(rec):
        images = sent_images(rec)
        if images[0].convert("RGB").getpixel((5, 5)) == (0, 0, 255):
            return server_error()
        return describe_color(rec)

    dashscope.responder = respond
    nodes = [ImageNode(image=b64(color_png(c))) for c in ("red", "blue", "green")]
    with pytest.raises(QwenVLReaderError) as info:
        make_captioner(dashscope)(nodes)
    assert [n.text for n in info.value.nodes] == ["A plain red square.", "A plain green square."]
    assert [(f.file, f.page) for f in info.value.failures] == [(nodes[1].node_id, None)]
    assert len(dashscope.chat_requests) == 3
    captioner = make_captioner(dashscope, on_error="skip")
    fresh = [ImageNode(image=b64(color_png(c))) for c in ("red", "blue")]
    out = captioner(fresh)
    assert out[0].text == "A plain red square." and out[1].text == "" and "image_sha256" not in out[1].metadata
    assert len(captioner.failures) == 1


def test_documents_from_the_reader_as_image_documents(dashscope, tmp_path):
    from llama_index_qwen_vl import QwenVLReader

    (tmp_path / "a.png").write_bytes(image_bytes("receipt"))
    reader = QwenVLReader(api_key=KEY, base_url=dashscope.url, mode="ocr", image_documents=True)
    docs = reader.load_data(tmp_path / "a.png")
    image_doc = docs[1]
    assert isinstance(image_doc, ImageDocument) and image_doc.metadata["image_sha256"]
    out = make_captioner(dashscope, mode="caption")([image_doc, Document(text="x")])
    assert out[0].text.startswith(docs[0].text + "\n\n")


def test_local_file_policy_applies_to_image_paths(dashscope, tmp_path):
    inside, outside = tmp_path / "ok", tmp_path / "private"
    inside.mkdir()
    outside.mkdir()
    (inside / "a.png").write_bytes(color_png("red"))
    (outside / "b.png").write_bytes(color_png("blue"))
    captioner = make_captioner(dashscope, on_error="skip", allowed_dirs=[str(inside)])
    nodes = [ImageNode(image_path=str(inside / "a.png")), ImageNode(image_path=str(outside / "b.png"))]
    captioner(nodes)
    assert nodes[0].text and nodes[1].text == ""
    assert "outside the allowed directories" in captioner.failures[0].message
    assert len(dashscope.chat_requests) == 1
    with pytest.raises(QwenVLReaderError):
        make_captioner(dashscope, allow_local_files=False)([ImageNode(image_path=str(inside / "a.png"))])
