"""The version and the default model are each said once, in the core."""

import qwen_vl_core
from qwen_vl_core import DEFAULT_MODEL, get_capabilities
from qwen_vl_core._version import __version__
from qwen_vl_core.tokens import image_tokens


def test_version_lives_in_its_own_module():
    assert qwen_vl_core.__version__ == __version__


def test_default_model_is_a_registry_entry():
    caps = get_capabilities(DEFAULT_MODEL)
    assert caps.known and caps.name == DEFAULT_MODEL
    assert image_tokens(1000, 1000) == image_tokens(1000, 1000, DEFAULT_MODEL)


def test_user_agent_carries_the_version(dashscope, api_key):
    client = qwen_vl_core.QwenVLClient(api_key=api_key, base_url=dashscope.url)
    client.chat("hi", model=DEFAULT_MODEL)
    assert dashscope.chat_requests[-1].headers["user-agent"] == f"qwen-vl-integrations/{__version__}"
