"""The ```python snippets of README.md's Security section run, as written, against the local server;
and what the section promises about pickles holds for the snippet's model."""

from __future__ import annotations

import pickle

import pytest

from tests.support.readme_sections import python_snippets

SNIPPETS = python_snippets("Security")


def test_the_security_section_has_a_snippet():
    assert SNIPPETS


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_security_snippet_runs(index, dashscope, monkeypatch, api_key):
    monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    scope = {"__name__": "__readme__"}
    exec(compile(SNIPPETS[index], f"README.md Security snippet {index}", "exec"), scope)
    assert dashscope.chat_requests, "the snippet should have talked to the server"
    if "payload" in scope:
        assert api_key.encode() not in scope["payload"]
        assert api_key.encode() not in pickle.dumps(scope["worker_llm"])
