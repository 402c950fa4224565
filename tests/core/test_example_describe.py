"""The README's main job, examples/describe_image.py, run as a real subprocess against the local server."""

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "describe_image.py"


def run(args, env):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_describe_image_streams_answer_and_usage(dashscope, api_key, tmp_path):
    img = tmp_path / "cat.png"
    Image.new("RGB", (320, 240), "orange").save(img)
    env = {**os.environ, "DASHSCOPE_API_KEY": api_key, "DASHSCOPE_BASE_URL": dashscope.url}
    proc = run([str(img), "--prompt", "What animal?"], env)
    assert proc.returncode == 0, proc.stderr
    assert "I see 1 image(s)" in proc.stdout
    assert "image_tokens" in proc.stderr
    assert dashscope.last_body["stream"] is True
    assert api_key not in proc.stdout + proc.stderr


def test_describe_image_reports_bad_input_without_traceback(dashscope, api_key, tmp_path):
    env = {**os.environ, "DASHSCOPE_API_KEY": api_key, "DASHSCOPE_BASE_URL": dashscope.url}
    proc = run([str(tmp_path / "missing.png")], env)
    assert proc.returncode == 2
    assert "missing.png" in proc.stderr and "Traceback" not in proc.stderr
    assert dashscope.requests == []


def test_describe_image_without_key_says_where_it_looked(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, str(SCRIPT), "x.png"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "DASHSCOPE_API_KEY" in proc.stderr and "credentials" in proc.stderr
