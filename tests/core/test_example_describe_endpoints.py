"""examples/describe_image.py: --base-url for another endpoint, reasoning apart from the answer, and the
qwen-vl command's exit codes (2 nothing sent, 3 the API failed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.fake_dashscope import Json, Sse, chunks, error_body

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "describe_image.py"


def run(args, env, cwd=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=cwd)  # fmt: skip


def clean_env(api_key):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE", "QWEN_API"))}
    env["DASHSCOPE_API_KEY"] = api_key
    return env


def photo(tmp_path):
    img = tmp_path / "cat.png"
    Image.new("RGB", (320, 240), "orange").save(img)
    return img


def test_base_url_flag_points_at_another_endpoint(dashscope, api_key, tmp_path):
    proc = run([str(photo(tmp_path)), "--base-url", dashscope.compatible_url], clean_env(api_key))
    assert proc.returncode == 0, proc.stderr
    assert "I see 1 image(s)" in proc.stdout
    assert dashscope.chat_requests and dashscope.chat_requests[-1].path == "/compatible-mode/v1/chat/completions"


def test_reasoning_streams_to_stderr_apart_from_the_answer(dashscope, api_key, tmp_path):
    dashscope.script(Sse(chunks("A cat.", reasoning="Orange fur, whiskers.")))
    proc = run([str(photo(tmp_path)), "--base-url", dashscope.url], clean_env(api_key))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "A cat."
    assert "--- Reasoning ---\nOrange fur, whiskers.\n--- Answer ---" in proc.stderr


def test_api_errors_exit_3_like_the_cli(dashscope, api_key, tmp_path):
    dashscope.script(Json(error_body("Invalid API-key provided.", "invalid_api_key"), 401))
    proc = run([str(photo(tmp_path)), "--base-url", dashscope.url], clean_env(api_key))
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert api_key not in proc.stdout + proc.stderr


def test_bad_settings_exit_2_and_send_nothing(dashscope, api_key, tmp_path):
    proc = run([str(photo(tmp_path)), "--base-url", dashscope.url, "--region", "mars"], clean_env(api_key))
    assert proc.returncode == 2 and "unknown region 'mars'" in proc.stderr
    proc = run([str(photo(tmp_path)), "--base-url", "ftp://nowhere"], clean_env(api_key))
    assert proc.returncode == 2 and "is not an http(s) URL" in proc.stderr
    assert dashscope.requests == []
