"""LangChain's standard integration suite against live DashScope.

Runs only when DASHSCOPE_API_KEY is set (tests/conftest.py skips tests/integration otherwise);
set DASHSCOPE_REGION (e.g. ``singapore``) to match an international key. The same suite runs
offline against the local server in tests/unit/test_chat_standard_offline.py.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_qwen_vl import ChatQwenVL
from tests.support.langchain_flags import QwenVLCapabilities

DEMO_IMAGE = "https://dashscope.oss-cn-beijing.aliyuncs.com/images/dog_and_girl.jpeg"


class TestChatQwenVLLive(QwenVLCapabilities, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "qwen3-vl-plus", "temperature": 0}

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        llm = ChatQwenVL(**self.chat_model_params, enable_thinking=True, thinking_budget=512)
        prompt = "Think briefly, then answer: what is 17 * 23?"
        if not stream:
            return llm.invoke(prompt)
        full = None
        for chunk in llm.stream(prompt):
            full = chunk if full is None else full + chunk
        assert full is not None
        return full


def test_live_image_usage_and_reasoning() -> None:
    """The Peers-table gaps on the real service: image tokens in usage, reasoning surfaced."""
    llm = ChatQwenVL(model="qwen3-vl-plus", enable_thinking=True, thinking_budget=256, max_tokens=200)
    reply = llm.invoke([HumanMessage([{"type": "image", "url": DEMO_IMAGE}, "How many people? One word."])])
    assert reply.text
    assert reply.additional_kwargs.get("reasoning_content")
    assert reply.usage_metadata["input_token_details"]["image"] > 0
    assert reply.response_metadata["request_id"]


def test_live_frame_list_video() -> None:
    frames = [DEMO_IMAGE] * 4
    reply = ChatQwenVL(model="qwen3-vl-flash", max_tokens=100).invoke(
        [HumanMessage([{"type": "video", "video": frames, "fps": 2}, "Describe the clip in five words."])]
    )
    assert reply.text and reply.usage_metadata["input_token_details"].get("video", 0) > 0
