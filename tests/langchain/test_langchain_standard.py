"""LangChain's standard unit tests for ChatQwenVL (offline), with accurate capability flags.

The standard *integration* suite also runs offline, against the local DashScope-protocol server,
in ``test_chat_standard_offline.py``; against live DashScope it is ``tests/integration/test_chat_live.py``.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_qwen_vl import ChatQwenVL
from tests.support.langchain_flags import QwenVLCapabilities

FAKE_KEY = "sk-standard-tests-0000"


load_module = importlib.import_module("langchain_core.load.load")  # the package attribute is the function
CLASS_PATH = ("langchain_qwen_vl", "chat_models", "ChatQwenVL")


class TestChatQwenVLUnit(QwenVLCapabilities, ChatModelUnitTests):
    @pytest.fixture(autouse=True)
    def _allow_partner_class(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``test_serdes`` loads with ``allowed_objects="all"``, which only admits the classes listed in
        langchain-core's own serialization mapping; a package outside that list is loaded by naming
        its class (``allowed_objects=[ChatQwenVL]``, see test_chat_model.py). Add our class to the
        default list for these tests only, so the snapshot and the round trip are still checked."""
        original = load_module._get_default_allowed_class_paths

        def with_ours(mode: Any) -> set[tuple[str, ...]]:
            paths = set(original(mode))
            if mode == "all":
                paths.add(CLASS_PATH)
            return paths

        monkeypatch.setattr(load_module, "_get_default_allowed_class_paths", with_ours)

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "qwen3-vl-plus", "api_key": FAKE_KEY}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"DASHSCOPE_API_KEY": "sk-from-env", "DASHSCOPE_REGION": "singapore"},
            {"model": "qwen3-vl-flash"},
            {"api_key": "sk-from-env", "model": "qwen3-vl-flash"},
        )

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[str]]:
        return {"invoke": ["reasoning_output"], "stream": ["reasoning_output"]}

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "qwen3-vl-flash"
