"""Live DashScope checks for the core client and the LlamaIndex classes.

Run only when DASHSCOPE_API_KEY is set (tests/conftest.py skips tests/integration otherwise); set
DASHSCOPE_REGION (e.g. ``singapore``) to match an international key.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from qwen_vl_core import QwenVLClient

DEMO_IMAGE = "https://dashscope.oss-cn-beijing.aliyuncs.com/images/dog_and_girl.jpeg"


def _sign(path: Path, text: str = "OPEN 24 HOURS") -> Path:
    img = Image.new("RGB", (640, 240), "white")
    ImageDraw.Draw(img).text((40, 100), text, fill="black", font_size=48)
    img.save(path)
    return path


def test_core_chat_with_url_reports_image_tokens():
    with QwenVLClient() as client:
        result = client.chat([{"role": "user", "content": [{"image": DEMO_IMAGE}, {"type": "text", "text": "What animal is in the picture? One word."}]}],
                             model="qwen3-vl-flash", max_tokens=20)
    assert "dog" in result.text.lower()
    assert result.usage and result.usage.image_tokens and result.request_id


def test_core_stream_with_thinking_and_local_file(tmp_path):
    sign = _sign(tmp_path / "sign.png")
    with QwenVLClient() as client:
        deltas = list(client.stream([{"role": "user", "content": [{"image": str(sign)}, {"type": "text", "text": "Read the sign."}]}],
                                    model="qwen3-vl-plus", enable_thinking=True, thinking_budget=512, max_tokens=200))
    assert "open" in "".join(d.text for d in deltas).lower()
    assert any(d.reasoning for d in deltas)


def test_llamaindex_llm_and_reader(tmp_path):
    from llama_index.core.llms import ChatMessage, ImageBlock, TextBlock

    from llama_index_qwen_vl import QwenVL, QwenVLReader

    llm = QwenVL(model="qwen3-vl-flash", max_tokens=20)
    reply = llm.chat([ChatMessage(role="user", blocks=[ImageBlock(url=DEMO_IMAGE), TextBlock(text="What animal? One word.")])])
    assert "dog" in str(reply.message.content).lower()

    docs = QwenVLReader(mode="ocr", model="qwen3-vl-flash").load_data(_sign(tmp_path / "page.png"))
    assert len(docs) == 1 and "OPEN" in docs[0].text.upper()
