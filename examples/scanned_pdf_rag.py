"""Question answering over a scanned PDF: Qwen-VL reads every page, LlamaIndex indexes the text,
and Qwen-VL answers from the retrieved pages, citing them.

    export DASHSCOPE_API_KEY=sk-...
    python examples/scanned_pdf_rag.py --pdf scans/contract.pdf \
        --question "What is the notice period for termination?"

Pages are read as Markdown (``--mode``) with ``--workers`` requests in flight, and every answer is
cached in ``--cache-dir`` (default ``.qwen_vl_cache/``): asking a second question about the same PDF
costs no reading at all. Embeddings come from DashScope's ``text-embedding-v4`` through its
OpenAI-compatible ``/embeddings`` endpoint, with LlamaIndex's own OpenAI-compatible embeddings
integration (``llama-index-embeddings-openai-like``); ``--embed-base-url`` points them elsewhere, and
``--embed mock`` uses LlamaIndex's MockEmbedding (for trying the pipeline offline).

Needs (from a checkout): pip install ".[llama-index,pdf]" llama-index-embeddings-openai-like
Exit codes: 0 answered, 2 bad arguments or input, 3 the API failed (also: no embeddings endpoint).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding

from llama_index_qwen_vl import QwenVL, QwenVLReader, QwenVLReaderError
from qwen_vl_core import DEFAULT_MODEL, QwenVLError
from qwen_vl_core.config import find_api_key, resolve_endpoint
from qwen_vl_core.errors import ConfigurationError, InputValidationError

EMBED_BATCH = 10  # texts per request: DashScope's limit for text-embedding-v4


def dashscope_embeddings(args: argparse.Namespace) -> BaseEmbedding:
    """DashScope's text embeddings with LlamaIndex's OpenAI-compatible embeddings class, pointed at
    the compatible endpoint of the region (or of --embed-base-url / --base-url)."""
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    base = resolve_endpoint(args.region, args.embed_base_url or args.base_url).compatible_base
    return OpenAILikeEmbedding(
        model_name=args.embedding_model,
        api_base=base,
        api_key=find_api_key().get_secret_value(),  # the same key discovery as the reader and the LLM
        embed_batch_size=EMBED_BATCH,
        dimensions=args.dimensions,
        max_retries=2,
        timeout=60,
    )


def embeddings_error(exc: BaseException, args: argparse.Namespace) -> str | None:
    """One line for an error of the embeddings endpoint (``None`` if ``exc`` is not one)."""
    try:
        import openai
    except ImportError:  # pragma: no cover - the embeddings package depends on it
        return None
    if not isinstance(exc, openai.OpenAIError):
        return None
    base = resolve_endpoint(args.region, args.embed_base_url or args.base_url).compatible_base
    status = getattr(exc, "status_code", None)
    if status in (404, 405):
        return (
            f"{base}/embeddings answered HTTP {status}: this endpoint has no embeddings route; point "
            "--embed-base-url at one that has (DashScope's compatible mode does), or use --embed mock"
        )
    message = (getattr(exc, "message", None) or str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
    where = f"HTTP {status}" if status else "no answer"
    return f"the embeddings endpoint {base}/embeddings failed ({where}): {type(exc).__name__}: {message}"


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
    p.add_argument("--cache-dir", default=".qwen_vl_cache/", help="answer cache ('' to disable)")
    p.add_argument("--top-k", type=int, default=4, help="pages retrieved per question")
    p.add_argument("--embed", choices=("dashscope", "mock"), default="dashscope", help="embeddings: DashScope's, or a mock")
    p.add_argument("--embedding-model", default="text-embedding-v4", help="embedding model (default text-embedding-v4)")
    p.add_argument("--dimensions", type=int, default=1024, help="embedding size (default 1024)")
    p.add_argument("--region", help="DashScope region (beijing, singapore, us, hongkong)")
    p.add_argument("--base-url", help="another endpoint for reading and answering (default: DASHSCOPE_BASE_URL, else the region's)")
    p.add_argument("--embed-base-url", help="another endpoint for the embeddings (default: --base-url's)")
    return p.parse_args(argv)


def answer(args: argparse.Namespace) -> int:
    reader = QwenVLReader(
        model=args.reader_model,
        mode=args.mode,
        dpi=args.dpi,
        num_workers=args.workers,
        cache_dir=args.cache_dir or None,
        show_progress=sys.stderr.isatty(),
        region=args.region,
        base_url=args.base_url,
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
        embed_model = dashscope_embeddings(args)
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    llm = QwenVL(model=args.llm_model, region=args.region, base_url=args.base_url)
    engine = index.as_query_engine(llm=llm, similarity_top_k=args.top_k)
    response = engine.query(args.question)

    print(str(response).strip())
    print("\nsources:")
    for source in response.source_nodes:
        meta = source.node.metadata
        print(f"  {meta['file_name']} page {meta['page_label']} of {meta['total_pages']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return answer(args)
    except (InputValidationError, ConfigurationError) as exc:  # nothing was sent
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except QwenVLError as exc:  # reading or answering failed
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # the embeddings endpoint: one line, not a traceback
        line = embeddings_error(exc, args)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
