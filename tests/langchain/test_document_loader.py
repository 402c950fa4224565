"""QwenVLDocumentLoader against the local DashScope server: sync and async loads, lazy order,
metadata, both error policies, the cache, bytes and directory inputs, key secrecy, and the
end-to-end RAG flow (scanned PDF -> loader -> splitter -> vector store -> ChatQwenVL)."""

from __future__ import annotations

import logging
import pickle
import threading
import time

import pytest
from tests.support.llama_index import (
    KEY,
    Json,
    PageResponder,
    completion,
    error_body,
    image_bytes,
    make_pdf,
    page_number,
    server_error,
)

from langchain_qwen_vl import ChatQwenVL, DocumentReadError, QwenVLDocumentLoader
from qwen_vl_core import (
    DEFAULT_MODEL,
    AuthenticationError,
    ConfigurationError,
    InputValidationError,
    QwenVLClient,
    ServerError,
)
from qwen_vl_core.documents import PROMPTS

META_KEYS = {
    "source", "page", "file_path", "file_name", "page_label", "total_pages", "width", "height", "mode", "model",
    "request_id", "image_sha256", "page_path", "input_tokens", "output_tokens", "total_tokens", "image_tokens",
}  # fmt: skip


def make_loader(dashscope, file_path, **kwargs) -> QwenVLDocumentLoader:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("max_retries", 0)
    return QwenVLDocumentLoader(file_path, base_url=dashscope.url, **kwargs)


def sent_pages(dashscope) -> list[int]:
    return sorted(page_number(r) for r in dashscope.chat_requests)


def user_texts(body: dict) -> list[str]:
    return [p.get("text", "") for m in body["messages"] if isinstance(m["content"], list) for p in m["content"]]


# ------------------------------------------------------------------------------------------ loading


def test_load_gives_one_document_per_page_with_langchain_metadata(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "scan.pdf", 3)
    dashscope.responder = PageResponder()
    docs = make_loader(dashscope, pdf).load()
    assert [d.page_content for d in docs] == ["text of page 1", "text of page 2", "text of page 3"]
    assert [d.id for d in docs] == [f"{pdf}#page={n}" for n in (1, 2, 3)]
    first = docs[0].metadata
    assert set(first) == META_KEYS
    assert (first["source"], first["file_path"], first["file_name"]) == (str(pdf), str(pdf), "scan.pdf")
    assert [d.metadata["page"] for d in docs] == [0, 1, 2]  # 0-based, as LangChain's PDF loaders
    assert [d.metadata["page_label"] for d in docs] == ["1", "2", "3"]
    assert {d.metadata["total_pages"] for d in docs} == {3}
    assert (first["mode"], first["model"], first["page_path"]) == ("markdown", DEFAULT_MODEL, "embedded")
    assert first["request_id"] and len(first["image_sha256"]) == 64 and first["input_tokens"] > 0
    assert sent_pages(dashscope) == [1, 2, 3]


def test_lazy_load_is_lazy_and_keeps_page_order(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", 10)
    responder = PageResponder()

    def slow_first_page(rec):  # page 1 answers last, yet comes out first
        if page_number(rec) == 1:
            time.sleep(0.3)
        return responder(rec)

    dashscope.responder = slow_first_page
    pages = make_loader(dashscope, pdf, num_workers=4).lazy_load()
    first = next(pages)
    assert first.metadata["page_label"] == "1"
    assert len(dashscope.chat_requests) < 10  # not read ahead to the end
    assert [d.metadata["page_label"] for d in pages] == [str(n) for n in range(2, 11)]
    assert sent_pages(dashscope) == list(range(1, 11))


def test_lazy_load_stopped_early_sends_no_more_pages(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", 12)
    dashscope.responder = PageResponder()
    pages = make_loader(dashscope, pdf, num_workers=1).lazy_load()
    assert next(pages).page_content == "text of page 1"
    pages.close()
    time.sleep(0.2)
    assert len(dashscope.chat_requests) <= 3


async def test_async_load_matches_sync_and_bounds_concurrency(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "scan.pdf", 8)
    responder = PageResponder()
    dashscope.responder = responder.track(0.05)
    loader = make_loader(dashscope, pdf, num_workers=3)
    docs = await loader.aload()
    assert [d.page_content for d in docs] == [f"text of page {n}" for n in range(1, 9)]
    assert responder.peak <= 3
    ids = [d.id async for d in loader.alazy_load()]
    assert ids == [d.id for d in docs] == [d.id for d in loader.load()]


def test_inputs_bytes_lists_and_directories(dashscope, tmp_path):
    dashscope.responder = lambda rec: Json(completion("an image"))
    png = image_bytes("receipt")
    docs = make_loader(dashscope, png).load()
    assert [(d.metadata["source"], d.metadata["page"], d.id) for d in docs] == [("<bytes>", 0, "<bytes>#page=1")]
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    make_pdf(folder / "a.pdf", 2)
    (folder / "b.png").write_bytes(png)
    (folder / "sub" / "c.png").write_bytes(png)
    (folder / "notes.txt").write_text("not a page")
    names = [(d.metadata["file_name"], d.metadata["page_label"]) for d in make_loader(dashscope, folder).load()]
    assert names == [("a.pdf", "1"), ("a.pdf", "2"), ("b.png", "1"), ("c.png", "1")]
    flat = make_loader(dashscope, str(folder), recursive=False).load()
    assert [d.metadata["file_name"] for d in flat] == ["a.pdf", "a.pdf", "b.png"]
    mixed = make_loader(dashscope, [folder / "b.png", png, png]).load()
    assert [d.metadata["source"] for d in mixed] == [str(folder / "b.png"), "<bytes 1>", "<bytes 2>"]


def test_modes_prompt_and_options_reach_the_request(dashscope, tmp_path):
    png = tmp_path / "chart.png"
    png.write_bytes(image_bytes("Q1 Q2"))
    dashscope.responder = lambda rec: Json(completion("answer"))
    make_loader(dashscope, png).load()
    plain = dashscope.last_body
    assert not {"max_tokens", "temperature", "enable_thinking", "vl_high_resolution_images"} & set(plain)
    assert user_texts(plain)[-1] == PROMPTS["markdown"]
    for mode in ("caption", "ocr", "caption+ocr"):
        doc = make_loader(dashscope, png, mode=mode).load()[0]
        assert doc.metadata["mode"] == mode and user_texts(dashscope.last_body)[-1] == PROMPTS[mode]
    make_loader(dashscope, png, prompt="Only the title.", max_tokens=77, temperature=0.1, enable_thinking=False,
                model="qwen3-vl-flash").load()  # fmt: skip
    body = dashscope.last_body
    assert user_texts(body)[-1] == "Only the title."
    assert (body["max_tokens"], body["temperature"], body["enable_thinking"], body["model"]) == (77, 0.1, False, "qwen3-vl-flash")


def test_bad_settings_fail_before_anything_is_sent(dashscope, tmp_path):
    for bad in ({"mode": "summary"}, {"on_error": "ignore"}, {"num_workers": 0}, {"dpi": 5000}, {"max_retries": -1}):
        with pytest.raises(ValueError):
            make_loader(dashscope, tmp_path / "x.pdf", **bad)
    with pytest.raises(ConfigurationError, match="no DashScope API key"):
        QwenVLDocumentLoader(tmp_path / "x.pdf", base_url=dashscope.url)
    assert dashscope.requests == []


# ------------------------------------------------------------------------------------------ failures

FAILING = {3: server_error, 6: server_error}


def check_raised(err: DocumentReadError, pdf, pages: int) -> None:
    good = [n for n in range(1, pages + 1) if n not in FAILING]
    assert [d.page_content for d in err.documents] == [f"text of page {n}" for n in good]
    assert [d.metadata["page"] for d in err.documents] == [n - 1 for n in good]
    assert [(f.file, f.page, type(f.error)) for f in err.failures] == [(str(pdf), n, ServerError) for n in FAILING]
    assert f"2 of {pages} page(s) failed" in str(err) and err.fatal is None


def test_raise_policy_keeps_every_success_and_lists_each_failure(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", 8)
    dashscope.responder = PageResponder(fail=FAILING)
    loader = make_loader(dashscope, pdf)
    with pytest.raises(DocumentReadError) as info:
        loader.load()
    check_raised(info.value, pdf, 8)
    assert sent_pages(dashscope) == list(range(1, 9))  # every page was tried
    assert [f.page for f in loader.failures] == [3, 6]


async def test_raise_policy_async(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", 8)
    dashscope.responder = PageResponder(fail=FAILING)
    with pytest.raises(DocumentReadError) as info:
        await make_loader(dashscope, pdf).aload()
    check_raised(info.value, pdf, 8)


async def test_skip_policy_logs_and_records_failures(dashscope, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    pdf = make_pdf(tmp_path / "book.pdf", 8)
    dashscope.responder = PageResponder(fail=FAILING)
    loader = make_loader(dashscope, pdf, on_error="skip")
    docs = loader.load()
    assert [d.metadata["page_label"] for d in docs] == ["1", "2", "4", "5", "7", "8"]
    assert [(f.page, f.to_dict()["status"]) for f in loader.failures] == [(3, 500), (6, 500)]
    assert "QwenVLDocumentLoader: " in caplog.text and "book.pdf page 3 failed" in caplog.text
    assert all("overloaded" not in d.page_content for d in docs)  # an error never becomes text
    assert [d.id for d in await loader.aload()] == [d.id for d in docs]
    assert [f.page for f in loader.failures] == [3, 6]


def test_an_error_that_fails_every_page_stops_at_once(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", 20)
    dashscope.responder = lambda rec: Json(error_body("Incorrect API key provided.", "invalid_api_key"), 401)
    with pytest.raises(DocumentReadError) as info:
        make_loader(dashscope, pdf, num_workers=2, on_error="skip").load()
    assert isinstance(info.value.fatal, AuthenticationError)
    assert len(dashscope.chat_requests) < 20


# ------------------------------------------------------------------------------------------ cache


def test_cache_rerun_sends_nothing_and_gives_the_same_documents(dashscope, tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", 5)
    cache = tmp_path / "cache"
    dashscope.responder = PageResponder(fail={4: server_error})
    with pytest.raises(DocumentReadError):
        make_loader(dashscope, pdf, cache_dir=cache).load()  # interrupted: page 4 failed
    dashscope.reset()
    dashscope.responder = PageResponder()
    docs = make_loader(dashscope, pdf, cache_dir=cache).load()
    assert sent_pages(dashscope) == [4]  # only what was missing
    dashscope.reset()
    again = make_loader(dashscope, pdf, cache_dir=str(cache)).load()
    assert dashscope.requests == []  # a rerun sends nothing
    assert [(d.id, d.page_content, d.metadata) for d in again] == [(d.id, d.page_content, d.metadata) for d in docs]
    make_loader(dashscope, pdf, cache_dir=cache, mode="ocr").load()  # another mode is another answer
    assert len(dashscope.chat_requests) == 5


# ------------------------------------------------------------------------------------------ secrecy


def test_key_never_in_repr_pickle_or_logs(dashscope, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    pdf = make_pdf(tmp_path / "scan.pdf", 2)
    dashscope.script(server_error())
    dashscope.responder = PageResponder()
    loader = QwenVLDocumentLoader(pdf, api_key=KEY, base_url=dashscope.url, max_retries=1, show_progress=True)
    assert len(loader.load()) == 2
    dumped = pickle.dumps(loader)
    for text in (repr(loader), str(loader), repr(vars(loader)), repr(loader.client), caplog.text,
                 capsys.readouterr().err):  # fmt: skip
        assert KEY not in text
    assert KEY.encode() not in dumped
    assert "retrying" in caplog.text  # the retry was logged, without the key
    assert "scan.pdf" in repr(loader) and "markdown" in repr(loader)
    with pytest.raises(ConfigurationError):  # the copy has no key of its own ...
        pickle.loads(dumped).load()


def test_a_pickled_loader_finds_its_key_again(dashscope, tmp_path, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    pdf = make_pdf(tmp_path / "scan.pdf", 2)
    dashscope.responder = PageResponder()
    loader = QwenVLDocumentLoader(pdf, base_url=dashscope.url, cache_dir=tmp_path / "cache")
    dumped = pickle.dumps(loader)
    assert KEY.encode() not in dumped
    clone = pickle.loads(dumped)  # ... and finds it as a new loader would
    assert [d.page_content for d in clone.load()] == ["text of page 1", "text of page 2"]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in dashscope.chat_requests)


def test_an_injected_client_is_used(dashscope, tmp_path):
    dashscope.responder = PageResponder()
    client = QwenVLClient(api_key=KEY, base_url=dashscope.url, max_retries=0)
    loader = QwenVLDocumentLoader(make_pdf(tmp_path / "a.pdf", 1), client=client)
    assert loader.client is client and loader.load()[0].page_content == "text of page 1"


# ------------------------------------------------------------------------------------------ end to end

TOPICS = {
    1: "Rent of 1200 euros is due monthly, before the fifth day of each month.",
    2: "Pets are not allowed in the flat; a cat or dog needs written consent.",
    3: "Heating and hot water are paid by the landlord from October to April.",
}
FILLER = "Section {n} paragraph {i}: signatures witnessed; copies kept by both parties."


def page_text(n: int) -> str:
    lines = [f"# Lease, page {n}", "", TOPICS[n], ""] + [FILLER.format(n=n, i=i) for i in range(4)]
    return "\n".join(lines)


def test_scanned_pdf_to_retriever_to_chat_answer(dashscope, tmp_path):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_openai import OpenAIEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    pdf = make_pdf(tmp_path / "lease.pdf", 3)  # each page one full-page JPEG, as scanners write
    prompts: list[str] = []
    lock = threading.Lock()

    def respond(rec):
        if "image_url" in rec.body.decode():
            return Json(completion(page_text(page_number(rec))))
        prompt = " ".join(m["content"] for m in rec.json["messages"] if isinstance(m["content"], str))
        with lock:
            prompts.append(prompt)
        ok = TOPICS[2] in prompt
        return Json(completion("No pets without written consent (lease.pdf page 2)." if ok else "I do not know."))

    dashscope.responder = respond
    docs = QwenVLDocumentLoader(pdf, api_key=KEY, base_url=dashscope.url, cache_dir=tmp_path / "cache").load()
    assert [d.metadata["page_path"] for d in docs] == ["embedded"] * 3  # the scan's JPEG, sent as it is

    chunks = RecursiveCharacterTextSplitter(chunk_size=160, chunk_overlap=0).split_documents(docs)
    assert len(chunks) > len(docs) and all(c.metadata["file_name"] == "lease.pdf" for c in chunks)
    embeddings = OpenAIEmbeddings(
        model="text-embedding-v4", api_key=KEY, base_url=dashscope.url + "/compatible-mode/v1",
        check_embedding_ctx_length=False, chunk_size=10,
    )  # fmt: skip
    store = InMemoryVectorStore.from_documents(chunks, embeddings)
    retriever = store.as_retriever(search_kwargs={"k": 1})

    def context(hits) -> str:
        return "\n\n".join(f"[{d.metadata['file_name']} page {d.metadata['page_label']}] {d.page_content}" for d in hits)

    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer only from the context, citing the page."),
        ("human", "Context:\n{context}\n\nQuestion: {question}"),
    ])  # fmt: skip
    llm = ChatQwenVL(api_key=KEY, base_url=dashscope.url, max_retries=0)
    chain = {"context": retriever | context, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
    answer = chain.invoke("Are pets allowed in the flat?")

    assert answer == "No pets without written consent (lease.pdf page 2)."
    assert len(prompts) == 1
    assert "[lease.pdf page 2]" in prompts[0] and TOPICS[2] in prompts[0]  # the retrieved page reached the model
    assert TOPICS[1] not in prompts[0] and TOPICS[3] not in prompts[0]
    embeds = [r for r in dashscope.requests if r.kind == "embeddings"]
    assert embeds and all(r.json["model"] == "text-embedding-v4" for r in embeds)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in embeds)


def test_a_qwen_vl_ocr_model_uses_its_builtin_tasks(dashscope, tmp_path):
    png = tmp_path / "table.png"
    png.write_bytes(image_bytes("TABLE"))
    (doc,) = make_loader(dashscope, png, mode="ocr", model="qwen-vl-ocr").load()
    rec = dashscope.chat_requests[-1]
    assert rec.kind == "native" and rec.json["parameters"]["ocr_options"] == {"task": "text_recognition"}
    assert doc.page_content == "OCR(text_recognition): I see 1 image(s)."
    (doc,) = make_loader(dashscope, png, model="qwen-vl-ocr", ocr_task="table_parsing").load()
    assert dashscope.chat_requests[-1].json["parameters"]["ocr_options"] == {"task": "table_parsing"}
    with pytest.raises(InputValidationError, match="ocr_task needs a qwen-vl-ocr model"):
        make_loader(dashscope, png, ocr_task="table_parsing")  # refused when the loader is made
    assert len(dashscope.chat_requests) == 2
