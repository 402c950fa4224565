"""``QwenVLImageCaptioner``: a TransformComponent that writes Qwen-VL captions / OCR text into image
nodes, so that images become searchable text in an IngestionPipeline."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import aclosing, closing
from pathlib import Path
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.schema import BaseNode, ImageNode, MetadataMode, TransformComponent


from ._pages import PageImage
from ._prompts import Mode
from ._settings import ImageJobSettings
from ._work import Done, ImageWorker, Outcome, run_async, run_ordered
from .errors import PageFailure, QwenVLReaderError

__all__ = ["QwenVLImageCaptioner", "node_image_sha256", "CAPTION_METADATA_KEYS"]

logger = logging.getLogger("llama_index_qwen_vl")

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
    """``("data", bytes-thunk) | ("path", str) | ("url", str)`` for a node's image, or None."""
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


def _load(ref: tuple[str, Any], policy: Any = None) -> PageImage:
    kind, value = ref
    if kind == "path" and policy is not None:
        value = policy.check(Path(value), label=f"image {value!r}")
    if kind == "url":
        if value.startswith("data:"):
            data = _decode_b64(value.partition(",")[2])
            return PageImage(data, hashlib.sha256(data).hexdigest(), None, None)
        # remote images are passed to the model by URL, never downloaded here: the URL is the identity
        return PageImage(value, hashlib.sha256(value.encode("utf-8")).hexdigest(), None, None)
    data = _decode_b64(value) if kind == "data" else Path(value).read_bytes()
    return PageImage(data, hashlib.sha256(data).hexdigest(), None, None)


def node_image_sha256(node: BaseNode, policy: Any = None) -> str | None:
    """sha256 of a node's image bytes (of the URL for remote images); None without a readable image."""
    ref = _image_ref(node)
    if ref is None:
        return None
    try:
        return _load(ref, policy).sha256
    except (OSError, ValueError):
        return None


def _node_label(node: BaseNode) -> str:
    ref = _image_ref(node)
    if ref is not None and ref[0] in ("path", "url") and not str(ref[1]).startswith("data:"):
        return str(ref[1])
    return str(node.metadata.get("file_path") or node.node_id)


def _nodes_being_hashed() -> Sequence[BaseNode] | None:
    """The nodes IngestionPipeline is computing a cache key for, when it is the caller.

    ``llama_index.core.ingestion.pipeline.get_transformation_hash(nodes, transformation)`` keys the
    transformation cache on the nodes' text and metadata and on ``transformation.to_dict()``, never
    on image bytes. Found here, the nodes let ``to_dict`` add their image hashes to that key.
    """
    frame = sys._getframe(1)
    for _ in range(6):
        frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return None
        if frame.f_code.co_name == "get_transformation_hash" and str(frame.f_globals.get("__name__", "")).startswith(
            "llama_index.core.ingestion"
        ):
            nodes = frame.f_locals.get("nodes")
            return nodes if isinstance(nodes, Sequence) else None
    return None


# ---------------------------------------------------------------- the transformation


class QwenVLImageCaptioner(ImageJobSettings, TransformComponent):
    """Caption (or OCR) every image node: ``ImageNode``s and ``ImageDocument``s with ``image``,
    ``image_path`` or ``image_url``. Other nodes pass through untouched.

    The answer becomes the node's text (after any text it already had), so text embeddings and
    retrievers find the image. Metadata gets ``image_sha256`` and ``qwen_vl_*`` keys, excluded
    from embeddings and LLM prompts. Images are processed ``num_workers`` at a time (``acall``
    is natively async), with the reader's error policy and answer cache.

    In an ``IngestionPipeline`` with a cache, the captioner's cache key includes the hashes of the
    images it is given, so two runs over different images with the same text never share an entry;
    downstream transformations see ``image_sha256`` in the metadata and are keyed correctly too.

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


    @classmethod
    def class_name(cls) -> str:
        return "QwenVLImageCaptioner"

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        data = super().to_dict(**kwargs)
        nodes = _nodes_being_hashed()
        if nodes is not None:
            policy = self._get_client().media_options.policy
            data["image_sha256"] = [node_image_sha256(node, policy) for node in nodes]
        return data

    # ---------------------------------------------------------------- work

    @staticmethod
    def _jobs(nodes: Sequence[BaseNode]) -> list[tuple[int, BaseNode, tuple[str, Any]]]:
        """(position, node, image reference) for each node with an image."""
        jobs = []
        for index, node in enumerate(nodes):
            ref = _image_ref(node)
            if ref is not None:
                jobs.append((index, node, ref))
        return jobs

    @staticmethod
    def _loader(
        worker: ImageWorker, index: int, node: BaseNode, ref: tuple[str, Any]
    ) -> Callable[[], PageImage] | None:
        """The image of ``node``, or None when it already carries this exact caption."""
        image = _load(ref, worker.client.media_options.policy)
        if node.metadata.get("qwen_vl_key") == worker.key_for(image.sha256):
            return None
        return lambda: image

    def _apply(self, node: BaseNode, done: Done) -> None:
        existing = "" if self.replace_text else (node.get_content(metadata_mode=MetadataMode.NONE) or "")
        node.set_content(f"{existing.rstrip()}\n\n{done.text}" if existing.strip() else done.text)
        node.metadata.update(
            {
                "image_sha256": done.sha256,
                "qwen_vl_mode": self.mode,
                "qwen_vl_model": done.model,
                "qwen_vl_request_id": done.request_id,
                "qwen_vl_key": done.cache_key,
            }
        )
        for name in ("input_tokens", "output_tokens"):
            if name in done.usage:
                node.metadata[f"qwen_vl_{name}"] = done.usage[name]
        for keys in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
            keys.extend(k for k in CAPTION_METADATA_KEYS if k not in keys)

    def _finish(self, nodes: Sequence[BaseNode], outcomes: list[Outcome]) -> Sequence[BaseNode]:
        self._failures = []
        succeeded: list[BaseNode] = []
        fatal: BaseException | None = None
        for outcome in sorted(outcomes, key=lambda o: o.job[0]):
            node = outcome.job[1]
            if outcome.error is None:
                if outcome.done is not None:
                    self._apply(node, outcome.done)
                succeeded.append(node)
                continue
            failure = PageFailure(_node_label(node), None, outcome.error)
            self._failures.append(failure)
            if outcome.fatal:
                fatal = outcome.error
            if self.on_error == "skip" or outcome.fatal:
                logger.warning("QwenVLImageCaptioner: %s failed: %s", failure.where(), failure.message)
        if fatal is not None:
            raise QwenVLReaderError(self._failures, succeeded, fatal=fatal) from fatal
        if self._failures and self.on_error == "raise":
            raise QwenVLReaderError(self._failures, succeeded, total=len(outcomes)) from self._failures[0].error
        return nodes

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        worker = self._worker()

        def work(job: tuple[int, BaseNode, tuple[str, Any]]) -> Outcome:
            try:
                load = self._loader(worker, *job)
                return Outcome(job, done=worker.run(load) if load is not None else None)
            except Exception as exc:
                return Outcome(job, error=exc)

        with closing(run_ordered(self._jobs(nodes), work, self.num_workers)) as running:
            outcomes = list(running)
        return self._finish(nodes, outcomes)

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        worker = self._worker()
        semaphore = self._semaphores.get(self.num_workers)

        async def work(job: tuple[int, BaseNode, tuple[str, Any]]) -> Outcome:
            try:
                load = await asyncio.to_thread(self._loader, worker, *job)
                return Outcome(job, done=await worker.arun(load, semaphore) if load is not None else None)
            except Exception as exc:
                return Outcome(job, error=exc)

        async with aclosing(run_async(self._jobs(nodes), work, self.num_workers)) as running:
            outcomes = [outcome async for outcome in running]
        return self._finish(nodes, outcomes)
