"""Local files are opened once and checked for what was opened (qwen_vl_core.media.local_files).

Over real files and the local DashScope server: a file (or a folder on its path) swapped for a
symlink while it is being loaded never lets a file outside ``allowed_dirs`` through (core client,
LangChain image tool, LlamaIndex reader, a PDF page in a render process); hard links are refused
under a confinement unless allowed; a huge sparse file is refused from its size without being read;
refusals name the input as given, never where a link points.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from qwen_vl_core import QwenVLClient
from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.media import LocalFilePolicy, MediaOptions, resolve_image
from tests.fake_dashscope import Json, completion
from tests.support.chat import make_model
from tests.support.llama_index import make_pdf, page_height, sent_images

KEY = "sk-test-0123456789abcdef"
INSIDE_SIZE = (64, 64)
SECRET_SIZE = (48, 80)  # an image of this size reaching the server means the outside file was read
TRIES = 300

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="symlink races and /proc: Linux")


def png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


INSIDE = png(INSIDE_SIZE, (250, 250, 240))
SECRET = png(SECRET_SIZE, (10, 200, 10))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """allowed/ (photo.png, real/photo.png) and outside/ (secret.png, photo.png: both the secret)."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "real").mkdir(parents=True)
    outside.mkdir()
    (allowed / "photo.png").write_bytes(INSIDE)
    (allowed / "real" / "photo.png").write_bytes(INSIDE)
    (outside / "secret.png").write_bytes(SECRET)
    (outside / "photo.png").write_bytes(SECRET)
    os.symlink(allowed / "real", allowed / "sub", target_is_directory=True)  # a folder link inside: fine
    return allowed, outside


# ------------------------------------------------------------------ the swapper

_SWAPPER = r"""
import os, sys
mode, allowed, outside, inside_bytes_path = sys.argv[1:5]
inside = open(inside_bytes_path, "rb").read()
name = os.path.join(allowed, "photo.png") if mode == "file" else os.path.join(allowed, "sub")
tmp_file, tmp_link = os.path.join(allowed, ".tmp-file"), os.path.join(allowed, ".tmp-link")
print("ready", flush=True)
while True:
    if mode == "file":  # the name flips between a fresh regular file and a link to the secret
        with open(tmp_file, "wb") as fh:
            fh.write(inside)
        os.replace(tmp_file, name)
        os.symlink(os.path.join(outside, "secret.png"), tmp_link)
        os.replace(tmp_link, name)
    else:  # a folder on the path flips between a folder inside and the outside folder
        os.symlink(os.path.join(allowed, "real"), tmp_link)
        os.replace(tmp_link, name)
        os.symlink(outside, tmp_link)
        os.replace(tmp_link, name)
"""


class Swapper:
    """A separate process flipping the name as fast as it can (real parallelism, no GIL)."""

    def __init__(self, mode: str, allowed: Path, outside: Path) -> None:
        source = allowed.parent / "inside.bin"
        source.write_bytes(INSIDE)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SWAPPER, mode, str(allowed), str(outside), str(source)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def __enter__(self) -> "Swapper":
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.poll() is None, "the swapper stopped early"
        self.proc.kill()
        self.proc.wait(10)


def target(mode: str, allowed: Path) -> Path:
    return allowed / "photo.png" if mode == "file" else allowed / "sub" / "photo.png"


def sizes_sent(dashscope) -> list[tuple[int, int]]:
    return [img.size for rec in dashscope.chat_requests for img in sent_images(rec)]


# ------------------------------------------------------------------ races, through every door


@pytest.mark.parametrize("mode", ["file", "folder"])
def test_swapped_symlink_never_reads_outside_through_the_client(folders, mode: str) -> None:
    allowed, outside = folders
    client = QwenVLClient(api_key=KEY, base_url="http://127.0.0.1:9", allowed_dirs=[allowed])
    path = target(mode, allowed)
    read, refused = 0, []
    with Swapper(mode, allowed, outside):
        for _ in range(TRIES):
            try:
                request = client.prepare(
                    [{"role": "user", "content": [{"image": str(path)}, {"text": "?"}]}],
                    model="qwen3-vl-plus",
                    stream=False,
                )
            except InputValidationError as exc:
                refused.append(str(exc))
                continue
            url = request.body["messages"][0]["content"][0]["image_url"]["url"]
            image = Image.open(io.BytesIO(__import__("base64").b64decode(url.split(",", 1)[1])))
            assert image.size == INSIDE_SIZE, "a file outside the allowed directories was read"
            read += 1
    assert read > 0  # the race was run against a file that is also readable
    assert all(str(outside) not in message and "secret" not in message for message in refused)


@pytest.mark.parametrize("mode", ["file", "folder"])
def test_swapped_symlink_never_reaches_the_server_through_the_image_tool(dashscope, folders, mode: str) -> None:
    from langchain_qwen_vl import QwenVLImageTool

    allowed, outside = folders
    tool = QwenVLImageTool(llm=make_model(dashscope), allowed_dirs=[str(allowed)])
    dashscope.responder = lambda rec: Json(completion("a photo"))
    path = str(target(mode, allowed))
    statuses = []
    with Swapper(mode, allowed, outside):
        for i in range(TRIES):
            call = {"type": "tool_call", "id": f"c{i}", "name": "look_at_image", "args": {"image": path, "question": "?"}}
            message = tool.invoke(call)
            statuses.append(message.status)
            if message.status == "error":
                assert str(outside) not in message.content and "secret" not in message.content
    sent = sizes_sent(dashscope)
    assert SECRET_SIZE not in sent, f"{sent.count(SECRET_SIZE)} of {TRIES} tries sent the outside file"
    assert sent and set(sent) == {INSIDE_SIZE} and statuses.count("success") == len(sent)


@pytest.mark.parametrize("mode", ["file", "folder"])
def test_swapped_symlink_never_reaches_the_server_through_the_reader(dashscope, folders, mode: str) -> None:
    from llama_index_qwen_vl import QwenVLReader

    allowed, outside = folders
    reader = QwenVLReader(
        api_key=KEY, base_url=dashscope.url, max_retries=0, allowed_dirs=[str(allowed)], on_error="skip",
        num_workers=4, mode="caption",
    )  # fmt: skip
    dashscope.responder = lambda rec: Json(completion("a photo"))
    # The reader opens each file twice (listing sniffs it, the page load reads it), so a run can,
    # by the swapper's timing, refuse every try; up to three runs, each checked in full, until one
    # also read the inside file (the race was really exercised).
    for _ in range(3):
        dashscope.reset()
        with Swapper(mode, allowed, outside):
            documents = reader.load_data([str(target(mode, allowed))] * TRIES)
        sent = sizes_sent(dashscope)
        assert SECRET_SIZE not in sent, f"{sent.count(SECRET_SIZE)} of {TRIES} pages sent the outside file"
        assert set(sent) <= {INSIDE_SIZE} and len(documents) == len(sent)
        assert len(documents) + len(reader.failures) == TRIES
        for failure in reader.failures:
            assert str(outside) not in failure.message and "secret" not in failure.message
        if sent:
            break
    assert sent, "no try read the inside file in three runs: the race was not exercised"


def test_a_pdf_swapped_before_a_render_process_opens_it_is_refused(tmp_path: Path) -> None:
    """Render processes open the file again: through the same check (the task carries the policy)."""
    from qwen_vl_core.documents.prepare import RenderProcesses, prepare_page
    from qwen_vl_core.documents.sources import RenderSettings, iter_pages

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    inside = make_pdf(allowed / "doc.pdf", 2)
    secret = make_pdf(outside / "secret.pdf", 3)
    policy = LocalFilePolicy(allowed_dirs=(allowed,))
    refs = list(iter_pages([str(inside)], RenderSettings(budget_pixels=1_000_000, dpi=72), policy=policy))
    assert [ref.number for ref in refs] == [1, 2]
    refs[0].document.close()
    task = refs[1].task
    processes = RenderProcesses(1)
    try:
        assert processes.run(task).height == page_height(2)  # a worker process renders it
    finally:
        processes.close()
    inside.unlink()
    os.symlink(secret, inside)  # swapped after listing, before the page is rendered
    with pytest.raises(InputValidationError, match=r"doc\.pdf' is (a symbolic link|outside the allowed)") as info:
        prepare_page(task)  # what a render process does with a task
    assert "secret" not in str(info.value)
    processes = RenderProcesses(1)
    try:
        with pytest.raises(InputValidationError, match=r"doc\.pdf' is (a symbolic link|outside the allowed)"):
            processes.run(task)  # a fresh worker opens the file: refused there too
    finally:
        processes.close()


# ------------------------------------------------------------------ hard links


def test_hard_links_are_refused_under_a_confinement_and_allowed_with_the_option(dashscope, tmp_path: Path) -> None:
    from llama_index_qwen_vl import QwenVLReader

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(SECRET)
    link = allowed / "linked.png"
    os.link(outside / "secret.png", link)

    confined = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,)))
    with pytest.raises(InputValidationError) as info:
        resolve_image(str(link), options=confined)
    message = str(info.value)
    assert f"{str(link)!r} has 2 hard links" in message
    assert "a hard link can make a file outside the allowed directories appear inside" in message
    assert "allow_hard_links=True" in message and str(outside) not in message

    reader = QwenVLReader(api_key=KEY, base_url=dashscope.url, max_retries=0, allowed_dirs=[str(allowed)], on_error="skip")
    assert reader.load_data(str(link)) == [] and "hard links" in reader.failures[0].message
    assert dashscope.chat_requests == []

    trusting = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,), allow_hard_links=True))
    assert resolve_image(str(link), options=trusting).width == SECRET_SIZE[0]
    assert resolve_image(str(link)).width == SECRET_SIZE[0]  # no confinement: no link rule


# ------------------------------------------------------------------ size before reading


def _max_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def test_a_huge_sparse_file_is_refused_from_its_size_without_reading(dashscope, tmp_path: Path) -> None:
    from llama_index_qwen_vl import QwenVLReader

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    huge_png, huge_pdf = allowed / "huge.png", allowed / "huge.pdf"
    for path in (huge_png, huge_pdf):
        path.write_bytes(INSIDE[:64] if path.suffix == ".png" else b"%PDF-1.7\n")
        os.truncate(path, 3 * 1024**3)  # sparse: 3 GB on paper, nothing on disk
    before = _max_rss_bytes()
    started = time.perf_counter()

    for options in (MediaOptions(), MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,)))):
        with pytest.raises(InputValidationError) as info:
            resolve_image(str(huge_png), options=options)
        assert str(info.value).startswith(f"image {str(huge_png)!r} is 3 GB")
        assert "the limit is 100 MB" in str(info.value) and "max_file_bytes" in str(info.value)

    reader = QwenVLReader(api_key=KEY, base_url=dashscope.url, max_retries=0, allowed_dirs=[str(allowed)], on_error="skip")
    assert reader.load_data([str(huge_pdf), str(huge_png)]) == []
    messages = {Path(f.file).name: f.message for f in reader.failures}
    assert "is 3 GB" in messages["huge.pdf"] and "the limit is 512 MB" in messages["huge.pdf"]
    assert "is 3 GB" in messages["huge.png"] and "the limit is 100 MB" in messages["huge.png"]
    assert dashscope.chat_requests == []

    assert _max_rss_bytes() - before < 64 * 1024 * 1024, "the file was read before it was refused"
    assert time.perf_counter() - started < 10


def test_the_file_size_limit_is_an_option(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(INSIDE)
    small = MediaOptions(max_file_bytes=100)
    assert small.policy.max_file_bytes == 100  # carried by the policy every read goes through
    with pytest.raises(InputValidationError) as info:
        resolve_image(str(path), options=small)
    message = str(info.value)
    assert message.startswith(f"image {str(path)!r} is ") and f"({len(INSIDE)} bytes)" in message
    assert "the limit is 0.1 KB (100 bytes)" in message
    assert resolve_image(str(path), options=MediaOptions(max_file_bytes=len(INSIDE))).width == INSIDE_SIZE[0]


# ------------------------------------------------------------------ what refusals say


def test_refusals_name_the_input_as_given_never_the_link_target(dashscope, tmp_path: Path) -> None:
    from langchain_qwen_vl import QwenVLImageTool
    from llama_index_qwen_vl import QwenVLReader

    allowed, outside = tmp_path / "allowed", tmp_path / "hidden-place"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(SECRET)
    os.symlink("/proc/self/environ", allowed / "env.png")
    os.symlink(outside / "secret.png", allowed / "note.png")
    os.symlink(outside, allowed / "more", target_is_directory=True)
    given = [str(allowed / "env.png"), str(allowed / "note.png"), str(allowed / "more" / "secret.png")]

    options = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,)))
    tool = QwenVLImageTool(llm=make_model(dashscope), allowed_dirs=[str(allowed)])
    reader = QwenVLReader(api_key=KEY, base_url=dashscope.url, max_retries=0, allowed_dirs=[str(allowed)], on_error="skip")
    reader.load_data(given)
    from_reader = {f.file: f.message for f in reader.failures}
    for path in given:
        with pytest.raises(InputValidationError) as info:
            resolve_image(path, options=options)
        call = {"type": "tool_call", "id": "c", "name": "look_at_image", "args": {"image": path, "question": "?"}}
        for message in (str(info.value), tool.invoke(call).content, from_reader[path]):
            assert repr(path) in message
            for leak in ("/proc", "environ", str(outside), "hidden-place"):
                assert leak not in message, message
    assert dashscope.chat_requests == []


# ------------------------------------------------------------------ the one opening, directly


def test_a_link_as_the_last_component_is_refused_under_a_confinement_and_followed_without(folders) -> None:
    allowed, _ = folders
    alias = allowed / "alias.png"
    os.symlink(allowed / "photo.png", alias)  # points inside, but could be switched at any moment
    confined = MediaOptions(policy=LocalFilePolicy(allowed_dirs=(allowed,)))
    with pytest.raises(InputValidationError, match=r"alias\.png' is a symbolic link; .*give the path of the file itself"):
        resolve_image(str(alias), options=confined)
    assert resolve_image(str(allowed / "sub" / "photo.png"), options=confined).width == INSIDE_SIZE[0]  # folder link
    assert resolve_image(str(alias)).width == INSIDE_SIZE[0]  # no confinement: followed as before


def test_reads_come_from_the_checked_descriptor_and_stop_at_the_limit(tmp_path: Path) -> None:
    from qwen_vl_core.media.local_files import open_local

    path = tmp_path / "growing.png"
    path.write_bytes(INSIDE)
    policy = LocalFilePolicy(allowed_dirs=(tmp_path,))
    with open_local(path, policy, label="image 'growing.png'", max_bytes=len(INSIDE)) as local:
        assert local.size == len(INSIDE) and local.head(8) == INSIDE[:8]
        path.unlink()  # the name is gone: the open descriptor still reads the file that was checked
        assert local.read() == INSIDE
    path.write_bytes(INSIDE)
    with open_local(path, policy, label="image 'growing.png'", max_bytes=len(INSIDE)) as local:
        with open(path, "ab") as fh:
            fh.write(b"x" * 10)  # grows after the size was checked
        with pytest.raises(InputValidationError, match=r"image 'growing\.png' grew past the limit"):
            local.read()
