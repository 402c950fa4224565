"""Question answering over a scanned PDF with LangChain: Qwen-VL reads every page, the text is split
and embedded into an in-memory vector store, and Qwen-VL answers from the retrieved chunks, citing pages.

    export DASHSCOPE_API_KEY=sk-...          # a Singapore key also needs --region singapore
    python examples/langchain_scanned_pdf_rag.py scans/lease.pdf "Are pets allowed?"

The flow: QwenVLDocumentLoader (one Document per page, read as Markdown, cached in --cache-dir so a
second question costs no reading) -> RecursiveCharacterTextSplitter -> InMemoryVectorStore with
OpenAIEmbeddings pointed at DashScope's OpenAI-compatible embeddings endpoint (text-embedding-v4)
-> retriever -> ChatQwenVL. Exit codes: 0 answered, 2 bad arguments, 3 the API failed.
Needs (from a checkout): pip install ".[langchain,pdf]" langchain-openai langchain-text-splitters
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import OpenAIEmbeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter
from openai import OpenAIError

from langchain_qwen_vl import ChatQwenVL, DocumentReadError, QwenVLDocumentLoader
from qwen_vl_core import DEFAULT_MODEL, QwenVLError
from qwen_vl_core.config import find_api_key, resolve_endpoint

PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer the question using only the context below, and cite the pages you used as "
               "(file, page N). If the context does not answer it, say so."),
    ("human", "Context:\n{context}\n\nQuestion: {question}"),
])  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pdf", help="the scanned PDF (or an image, or a directory of them)")
    p.add_argument("question", help="what to ask about it")
    p.add_argument("--base-url", help="DashScope host or OpenAI-compatible base (default: the region's)")
    p.add_argument("--region", help="DashScope region: beijing (default), singapore, us, hongkong")
    p.add_argument("--cache-dir", default=".qwen_vl_cache/", help="page answer cache ('' to disable)")
    p.add_argument("--reader-model", default=DEFAULT_MODEL, help="model that reads the pages")
    p.add_argument("--chat-model", default=DEFAULT_MODEL, help="model that answers")
    p.add_argument("--embedding-model", default="text-embedding-v4", help="embedding model")
    p.add_argument("--mode", default="markdown", choices=("ocr", "markdown", "caption+ocr"), help="how pages are read")
    p.add_argument("--workers", type=int, default=8, help="pages read at once")
    p.add_argument("--chunk-size", type=int, default=1000, help="characters per chunk")
    p.add_argument("--top-k", type=int, default=4, help="chunks retrieved per question")
    args = p.parse_args(argv)
    if not Path(args.pdf).exists():
        p.error(f"no such file or directory: {args.pdf}")
    return args


def read_pages(args: argparse.Namespace) -> list[Document]:
    loader = QwenVLDocumentLoader(
        args.pdf,
        mode=args.mode,
        model=args.reader_model,
        base_url=args.base_url,
        region=args.region,
        num_workers=args.workers,
        cache_dir=args.cache_dir or None,
        show_progress=sys.stderr.isatty(),
    )
    try:
        return loader.load()
    except DocumentReadError as err:  # some pages failed: go on with the rest, say which are missing
        if err.fatal is not None or not err.documents:
            raise
        for failure in err.failures:
            print(f"warning: {failure.where()} not read: {failure.message}", file=sys.stderr)
        return err.documents


def format_context(chunks: list[Document]) -> str:
    return "\n\n".join(f"[{d.metadata['file_name']}, page {d.metadata['page_label']}]\n{d.page_content}" for d in chunks)


def answer(args: argparse.Namespace) -> tuple[str, list[Document]]:
    pages = read_pages(args)
    print(f"read {len(pages)} page(s) from {args.pdf}", file=sys.stderr)
    splitter = RecursiveCharacterTextSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_size // 10)
    chunks = splitter.split_documents(pages)
    embeddings = OpenAIEmbeddings(
        model=args.embedding_model,
        api_key=find_api_key(),  # the same key discovery as the loader (argument, env, .env, credentials)
        base_url=resolve_endpoint(args.region, args.base_url).compatible_base,
        check_embedding_ctx_length=False,  # DashScope takes text, not tiktoken ids
        chunk_size=10,  # texts per request: the endpoint's limit
    )
    retriever = InMemoryVectorStore.from_documents(chunks, embeddings).as_retriever(search_kwargs={"k": args.top_k})
    llm = ChatQwenVL(model=args.chat_model, base_url=args.base_url, region=args.region)
    generate = (
        (lambda x: {"context": format_context(x["sources"]), "question": x["question"]}) | PROMPT | llm | StrOutputParser()
    )
    chain = RunnableParallel(sources=retriever, question=RunnablePassthrough()).assign(answer=generate)
    result = chain.invoke(args.question)
    return result["answer"], result["sources"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        text, sources = answer(args)
    except (QwenVLError, OpenAIError) as err:
        print(f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return 3
    print(text.strip())
    print("\nsources:")
    for doc in sources:
        meta = doc.metadata
        print(f"  {meta['file_name']} page {meta['page_label']} of {meta['total_pages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
