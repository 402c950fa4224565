"""What a new user meets first: install lines that work as written (from a checkout, or a built
wheel), how to point at another endpoint, the streaming snippet showing reasoning and answer apart,
and the CLI features the README promises."""

from __future__ import annotations

import re

import pytest

from tests.fake_dashscope import Sse, chunks
from tests.support.readme_sections import README, python_snippets, section

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = README.parent
TEXT = README.read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])
DEV = " ".join(PYPROJECT["dependency-groups"]["dev"])
PIP = re.compile(r"pip install ([^`\n]+)")


def install_lines() -> list[tuple[str, str]]:
    files = [README, *sorted((ROOT / "examples").glob("*.py")), *sorted((ROOT / "qwen_vl_cli").glob("*.py"))]
    return [(path.name, m.group(1)) for path in files for m in PIP.finditer(path.read_text(encoding="utf-8"))]


def test_no_install_line_names_the_unpublished_package():
    lines = install_lines()
    assert len(lines) >= 8
    for where, line in lines:
        assert "qwen-vl-integrations[" not in line and "qwen_vl_integrations[" not in line.split("/")[0], (where, line)


@pytest.mark.parametrize(("where", "line"), install_lines())
def test_each_local_install_names_existing_extras(where, line):
    for target in re.findall(r"""["']?([^\s"']*\[([^\]]+)\])["']?""", line):
        spec, extras = target
        if spec.startswith(".[") or ".whl[" in spec:  # a checkout or a built wheel
            assert set(extras.split(",")) <= EXTRAS, (where, line)


def test_the_readme_says_checkout_or_wheel():
    quickstart = section("Quickstart")
    assert 'pip install ".[all]"' in quickstart and "uv build --wheel" in quickstart and ".whl[all]" in quickstart
    assert "from a checkout" in quickstart


def test_the_quickstart_says_how_to_point_at_another_endpoint():
    quickstart = section("Quickstart")
    for needle in ("DASHSCOPE_BASE_URL", "base_url=", "--base-url", "examples/describe_image.py"):
        assert needle in quickstart, needle


def test_the_embeddings_package_of_the_example_is_in_the_dev_group():
    assert "llama-index-embeddings-openai-like" in DEV
    assert "llama-index-embeddings-openai-like" in (ROOT / "examples" / "scanned_pdf_rag.py").read_text(encoding="utf-8")


def test_streaming_snippet_shows_reasoning_and_answer_apart(dashscope, api_key, monkeypatch, tmp_path, capsys):
    snippet = next(s for s in python_snippets("The core client") if "enable_thinking=True" in s)
    monkeypatch.chdir(tmp_path)
    from PIL import Image

    Image.new("RGB", (200, 100), "white").save("photo.jpg")
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    dashscope.script(Sse(chunks("Three circles.", reasoning="One, two, three.")))
    exec(compile(snippet.split("async def main")[0], "README streaming snippet", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert "--- Reasoning ---\nOne, two, three.\n--- Answer ---\nThree circles." in out


@pytest.mark.parametrize("needle", ["--save-raw", "--continue-from", "--check", "QWEN_API_KEY", "project root",
                                    "(see 'qwen-vl read", "4 to 80", "up to 1 h"])  # fmt: skip
def test_the_readme_documents_what_issue_10_added(needle):
    assert needle in TEXT.replace("\n", " ")
