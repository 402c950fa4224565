"""LangChain's standard *integration* suite, run offline against the local DashScope-protocol server.

The server's default replies are replaced by :func:`chat_support.smart_reply`, which answers
structured-output and tool-calling requests with schema-shaped JSON (as a well-behaved model would).
Tests that need real understanding of the prompt, or the network, are skipped with the reason;
they run for real in ``tests/integration/test_chat_live.py`` when DASHSCOPE_API_KEY is set.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.chat import KEY, smart_reply
from langchain_core.messages import AIMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_qwen_vl import ChatQwenVL
from tests.support.langchain_flags import QwenVLCapabilities

NEEDS_MORE_THAN_THE_LOCAL_SERVER = {
    "test_image_inputs": "downloads its test image from raw.githubusercontent.com (no network offline); "
    "every image form is covered offline by test_chat_inputs.py",
    "test_unicode_tool_call_integration": "needs a model that copies the customer's name from the prompt into the "
    "tool arguments; the local server answers schema-shaped placeholders",
}


class TestChatQwenVLStandardOffline(QwenVLCapabilities, ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _local_dashscope(self, request: pytest.FixtureRequest, dashscope: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        reason = NEEDS_MORE_THAN_THE_LOCAL_SERVER.get(request.node.originalname)
        if reason:
            pytest.skip(reason)
        monkeypatch.setenv("DASHSCOPE_BASE_URL", dashscope.url)
        monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
        dashscope.responder = smart_reply
        self.server = dashscope

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "qwen3-vl-plus", "max_retries": 0}

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        llm = ChatQwenVL(**self.chat_model_params, enable_thinking=True)
        prompt = "Think step by step: what is 17 * 23?"
        if not stream:
            return llm.invoke(prompt)
        full = None
        for chunk in llm.stream(prompt):
            full = chunk if full is None else full + chunk
        assert full is not None
        return full
