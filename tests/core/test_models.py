import pytest

from qwen_vl_core.models import REGISTRY, get_capabilities


@pytest.mark.parametrize(
    ("name", "family", "patch", "cap", "thinking", "stream_only", "tools"),
    [
        ("qwen3-vl-plus", "qwen3-vl", 32, 2560, "hybrid-off", False, True),
        ("qwen3-vl-flash-2025-10-15", "qwen3-vl", 32, 2560, "hybrid-off", False, True),
        ("qwen3-vl-plus-latest", "qwen3-vl", 32, 2560, "hybrid-off", False, True),
        ("qwen3.5-plus", "qwen3.5", 32, 2560, "hybrid-on", False, True),
        ("qwen3.6-plus", "qwen3.5", 32, 2560, "hybrid-on", False, True),
        ("qwen-vl-max", "qwen2.5-vl", 32, 2560, "never", False, False),
        ("qwen-vl-max-2025-08-13", "qwen2.5-vl", 32, 2560, "never", False, False),
        ("qwen-vl-max-2025-04-08", "qwen2.5-vl", 28, 1280, "never", False, False),
        ("qwen-vl-plus-2025-01-25", "qwen2.5-vl", 28, 1280, "never", False, False),
        ("qwen-vl-plus-0815", "qwen2.5-vl", 32, 2560, "never", False, False),
        ("qvq-max", "qvq", 28, 1280, "always", True, False),
        ("qvq-max-latest", "qvq", 28, 1280, "always", True, False),
        ("qwen3-vl-235b-a22b-thinking", "qwen3-vl", 32, 2560, "always", False, True),
        ("qwen3-vl-32b-instruct", "qwen3-vl", 32, 2560, "never", False, True),
        ("qwen2.5-vl-72b-instruct", "qwen2.5-vl", 28, 1280, "never", False, False),
        ("qwen-vl-ocr-latest", "qwen-vl-ocr", 32, 2560, "never", False, False),
    ],
)
def test_registry_entries(name, family, patch, cap, thinking, stream_only, tools):
    caps = get_capabilities(name)
    assert caps.known
    assert caps.name == name
    assert (caps.family, caps.patch_size, caps.image_token_cap) == (family, patch, cap)
    assert (caps.thinking, caps.stream_only, caps.tools) == (thinking, stream_only, tools)


def test_structured_output_modes():
    assert get_capabilities("qwen3-vl-plus").structured_output == {"json_schema", "json_object"}
    assert get_capabilities("qwen-vl-max").structured_output == {"json_object"}
    assert get_capabilities("qvq-max").structured_output == frozenset()
    assert get_capabilities("qwen3-vl-235b-a22b-thinking").structured_output == frozenset()


def test_context_and_output_limits():
    assert get_capabilities("qwen3-vl-plus").context_window == 262144
    assert get_capabilities("qwen3-vl-plus").max_output == 32768
    assert get_capabilities("qwen3.5-plus").context_window == 1_000_000
    assert get_capabilities("qwen-vl-max").max_output == 8192


@pytest.mark.parametrize("name", ["gpt-4o", "my-finetune", "", "Qwen/Qwen2-VL-7B", "x-thinking"])
def test_unknown_models_are_permissive(name):
    caps = get_capabilities(name)
    assert not caps.known
    assert caps.tools
    assert caps.can_disable_thinking or name.endswith("-thinking")


def test_provider_prefix_is_ignored():
    assert get_capabilities("dashscope/qvq-max").stream_only


def test_thinking_resolution():
    hybrid_off = get_capabilities("qwen3-vl-plus")
    assert hybrid_off.thinking_on(None) is False and hybrid_off.thinking_on(True) is True
    hybrid_on = get_capabilities("qwen3.5-plus")
    assert hybrid_on.thinking_on(None) is True and hybrid_on.thinking_on(False) is False
    assert get_capabilities("qvq-max").thinking_on(False) is True
    assert get_capabilities("qwen-vl-max").thinking_on(True) is False


def test_every_registry_family_resolves_to_itself():
    for name, caps in REGISTRY.items():
        assert get_capabilities(name).family == caps.family
