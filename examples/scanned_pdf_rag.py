"""Question answering over a scanned PDF: Qwen-VL reads every page, LlamaIndex indexes the text,
and Qwen-VL answers from the retrieved pages, citing them.

    export DASHSCOPE_API_KEY=sk-...
    python examples/scanned_pdf_rag.py --pdf scans/contract.pdf \
        --question "What is the notice period for termination?"

Pages are read as Markdown (``--mode``) with ``--workers`` requests in flight, and every answer is
cached in ``--cache-dir``: asking a second question about the same PDF costs no reading at all.
Embeddings come from DashScope's ``text-embedding-v4`` (``--embed dashscope``); ``--embed mock``
uses LlamaIndex's MockEmbedding (for trying the pipeline offline).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from llama_index_qwen_vl import QwenVL, QwenVLReader, QwenVLReaderError
from qwen_vl_core import DEFAULT_MODEL


class DashScopeEmbedding(BaseEmbedding):
    """DashScope text embeddings through the OpenAI-compatible ``/embeddings`` endpoint."""

    model_name: str = "text-embedding-v4"
    dimensions: int = 1024
    embed_batch_size: int = 10  # the endpoint's limit per request

    _http: Any = PrivateAttr()
    _url: str = PrivateAttr()
    _headers: dict = PrivateAttr()

    def __init__(self, *, region: str | None = None, base_url: str | None = None, **data: Any) -> None:
        from qwen_vl_core.config import find_api_key, resolve_endpoint
        from qwen_vl_core.transport import Transport

        super().__init__(**data)
        self._url = resolve_endpoint(region, base_url).compatible_base + "/embeddings"
        self._headers = {"Authorization": f"Bearer {find_api_key().get_secret_value()}"}
        self._http = Transport(timeout=60)  # the core's retries and typed errors

    def _embed(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self.model_name, "input": texts, "dimensions": self.dimensions, "encoding_format": "float"}
        data = self._http.request("POST", self._url, headers=self._headers, json_body=body).data
        return [item["embedding"] for item in sorted(data["data"], key=lambda d: d["index"])]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pdf", required=True, help="the scanned PDF (or a directory of PDFs and images)")
    p.add_argument("--question", default="Summarize this document.", help="what to ask")
    p.add_argument("--mode", default="markdown", choices=("ocr", "markdown", "caption+ocr"), help="how pages are read")
    p.add_argument("--reader-model", default=DEFAULT_MODEL, help="model that reads the pages")
    p.add_argument("--llm-model", default=DEFAULT_MODEL, help="model that answers")
    p.add_argument("--dpi", type=float, default=150, help="PDF rendering resolution")
    p.add_argument("--workers", type=int, default=8, help="pages read at once")
    p.add_argument("--cache-dir", default=".qwen-vl-cache", help="answer cache ('' to disable)")
    p.add_argument("--top-k", type=int, default=4, help="pages retrieved per question")
    p.add_argument("--embed", choices=("dashscope", "mock"), default="dashscope", help="embedding model")
    p.add_argument("--region", help="DashScope region (beijing, singapore, us, hongkong)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reader = QwenVLReader(
        model=args.reader_model,
        mode=args.mode,
        dpi=args.dpi,
        num_workers=args.workers,
        cache_dir=args.cache_dir or None,
        show_progress=sys.stderr.isatty(),
        region=args.region,
    )
    try:
        documents = reader.load_data(args.pdf)
    except QwenVLReaderError as err:  # some pages failed: index the rest, say which are missing
        documents = err.documents
        for failure in err.failures:
            print(f"warning: {failure.where()} not read: {failure.message}", file=sys.stderr)
        if not documents:
            return 3
    print(f"read {len(documents)} page(s) from {args.pdf}", file=sys.stderr)

    if args.embed == "mock":
        from llama_index.core import MockEmbedding

        embed_model: BaseEmbedding = MockEmbedding(embed_dim=64)
    else:
        embed_model = DashScopeEmbedding(region=args.region)
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    llm = QwenVL(model=args.llm_model, region=args.region)
    engine = index.as_query_engine(llm=llm, similarity_top_k=args.top_k)
    response = engine.query(args.question)

    print(str(response).strip())
    print("\nsources:")
    for source in response.source_nodes:
        meta = source.node.metadata
        print(f"  {meta['file_name']} page {meta['page_label']} of {meta['total_pages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
