"""``QwenVLImageCaptioner``: a TransformComponent that writes Qwen-VL captions / OCR text into image
nodes, so that images become searchable text in an IngestionPipeline."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode, ImageNode, MetadataMode, TransformComponent

from qwen_vl_core.documents import DocumentPipeline, ImageItem, MemoryCache, Mode, PageFailure, PageResult

from ._pipeline_fields import PipelineFields

__all__ = ["QwenVLImageCaptioner", "node_image_sha256", "CAPTION_METADATA_KEYS"]

#: Metadata the captioner writes; none of it is embedded or shown to an LLM.
CAPTION_METADATA_KEYS = (
    "image_sha256", "qwen_vl_mode", "qwen_vl_model", "qwen_vl_request_id", "qwen_vl_key",
    "qwen_vl_input_tokens", "qwen_vl_output_tokens",
)  # fmt: skip


# ---------------------------------------------------------------- images of nodes


def _decode_b64(value: str | bytes) -> bytes:
    if isinstance(value, str):
        value = value.encode("ascii")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return base64.b64decode(value)


def _image_ref(node: BaseNode) -> tuple[str, Any] | None:
    """``("data", base64) | ("path", str) | ("url", str)`` for a node's image, or None."""
    if isinstance(node, ImageNode):
        if node.image:
            return "data", node.image
        if node.image_path:
            return "path", node.image_path
        if node.image_url:
            return "url", node.image_url
        return None
    resource = getattr(node, "image_resource", None)
    if resource is None:
        return None
    if resource.data is not None:
        return "data", resource.data
    if resource.path is not None:
        return "path", str(resource.path)
    if resource.url is not None:
        return "url", str(resource.url)
    return None


def _image(ref: tuple[str, Any]) -> bytes | str:
    """What the pipeline reads: bytes, a local path (read by a worker under the file policy), or
    a remote URL (passed to the model, never downloaded here)."""
    kind, value = ref
    if kind == "data":
        return _decode_b64(value)
    if kind == "url" and str(value).startswith("data:"):
        return _decode_b64(str(value).partition(",")[2])
    return str(value)


def node_image_sha256(node: BaseNode, policy: Any = None) -> str | None:
    """sha256 of a node's image bytes (of the URL for remote images); None without a readable image."""
    ref = _image_ref(node)
    if ref is None:
        return None
    try:
        image = _image(ref)
        if ref[0] == "path":  # opened once and checked under the policy, size first (the core's one reader)
            from qwen_vl_core.media.local_files import file_limit, read_local

            image = read_local(image, policy, label=f"image {image!r}", max_bytes=file_limit(policy, "image"))  # type: ignore[arg-type]
        data = image.encode("utf-8") if isinstance(image, str) else image
        return hashlib.sha256(data).hexdigest()
    except (OSError, ValueError):
        return None


def _node_label(node: BaseNode) -> str:
    ref = _image_ref(node)
    if ref is not None and ref[0] in ("path", "url") and not str(ref[1]).startswith("data:"):
        return str(ref[1])
    return str(node.metadata.get("file_path") or node.node_id)


# ---------------------------------------------------------------- the transformation


class QwenVLImageCaptioner(PipelineFields, TransformComponent):
    """Caption (or OCR) every image node: ``ImageNode``s and ``ImageDocument``s with ``image``,
    ``image_path`` or ``image_url``. Other nodes pass through untouched.

    The answer becomes the node's text (after any text it already had), so text embeddings and
    retrievers find the image. Metadata gets ``image_sha256`` and ``qwen_vl_*`` keys, excluded
    from embeddings and LLM prompts. Images are processed ``num_workers`` at a time (``acall``
    is natively async), with the reader's error policy and answer cache.

    Caching: an ``IngestionPipeline`` keys its cache on the nodes' text and metadata, never on
    image bytes, so it cannot tell two images with the same text apart. The captioner therefore
    never lets that cache answer for it (its cache key is new on every run) and keeps answers
    itself, keyed by the image bytes and the settings: in memory for the life of the captioner,
    or in ``cache_dir`` across runs and processes. An unchanged image is never paid for twice;
    a changed one is always captioned anew. Downstream transformations see ``image_sha256`` in
    the metadata, so the pipeline's cache keys them correctly.

    Example:
        .. code-block:: python

            from llama_index.core.ingestion import IngestionPipeline
            from llama_index.core.schema import ImageNode
            from llama_index_qwen_vl import QwenVLImageCaptioner

            pipeline = IngestionPipeline(transformations=[QwenVLImageCaptioner(mode="caption+ocr")])
            nodes = pipeline.run(nodes=[ImageNode(image_path="photo.jpg")])
    """

    mode: Mode = Field(default="caption", description="caption, ocr, markdown or caption+ocr.")
    replace_text: bool = Field(default=False, description="Replace the node's text instead of appending to it.")

    _answers: MemoryCache = PrivateAttr(default_factory=MemoryCache)

    @classmethod
    def class_name(cls) -> str:
        return "QwenVLImageCaptioner"

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        data = super().to_dict(**kwargs)
        # IngestionPipeline hashes this to key its cache; the key cannot see images (see above).
        data["run"] = uuid.uuid4().hex
        return data

    # ---------------------------------------------------------------- work

    def _run(self) -> DocumentPipeline:
        return self._pipeline(cache=None if self.cache_dir else self._answers)

    @staticmethod
    def _items(nodes: Sequence[BaseNode]) -> list[ImageItem]:
        """One item per node with an image; ``known_key`` skips images already captioned so."""
        items = []
        for index, node in enumerate(nodes):
            ref = _image_ref(node)
            if ref is not None:
                known = node.metadata.get("qwen_vl_key")
                items.append(ImageItem(_image(ref), _node_label(node), (index, node), known))
        return items

    def _apply(self, node: BaseNode, result: PageResult) -> None:
        existing = "" if self.replace_text else (node.get_content(metadata_mode=MetadataMode.NONE) or "")
        text = result.text or ""
        node.set_content(f"{existing.rstrip()}\n\n{text}" if existing.strip() else text)
        node.metadata.update(
            {
                "image_sha256": result.sha256,
                "qwen_vl_mode": self.mode,
                "qwen_vl_model": result.model,
                "qwen_vl_request_id": result.request_id,
                "qwen_vl_key": result.cache_key,
            }
        )
        for name in ("input_tokens", "output_tokens"):
            if name in result.usage:
                node.metadata[f"qwen_vl_{name}"] = result.usage[name]
        for keys in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
            keys.extend(k for k in CAPTION_METADATA_KEYS if k not in keys)

    def _finish(self, pipeline: DocumentPipeline, nodes: Sequence[BaseNode], results: list[PageResult]) -> Sequence[BaseNode]:
        self._failures = []
        succeeded: list[BaseNode] = []
        fatal: BaseException | None = None
        for result in results:
            node = result.job[1]
            if result.ok:
                if result.text is not None:  # None: it carries this very caption already
                    self._apply(node, result)
                succeeded.append(node)
                continue
            self._failures.append(PageFailure(result.source, None, result.error))  # type: ignore[arg-type]
            fatal = result.error if result.fatal else fatal
        pipeline.check(succeeded, self._failures, fatal=fatal, total=len(results))
        return nodes

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        pipeline = self._run()
        return self._finish(pipeline, nodes, list(pipeline.image_results(self._items(nodes))))

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        pipeline = self._run()
        results = [r async for r in pipeline.aimage_results(self._items(nodes), limit=self._limit())]
        return self._finish(pipeline, nodes, results)
