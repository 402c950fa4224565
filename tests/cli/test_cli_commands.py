"""The ``qwen-vl`` command against the local DashScope server: analyze, reason, ocr (read: test_cli_read.py).

Exit codes, key secrecy and live streaming run the real console script as a subprocess
(``python -m qwen_vl_cli``); the rest call ``main(argv)`` in-process for speed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.fake_dashscope import Json, Sse, chunks, completion, error_body

from qwen_vl_cli import main

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_DIR = Path("output") / "qwen-vl"


# ---------------------------------------------------------------- helpers




@pytest.fixture(scope="session")
def big_png(tmp_path_factory) -> Path:
    """A 9 MB PNG of noise: within the 10 MB image limit, but its data URL (12 MB) is over 10 MB."""
    path = tmp_path_factory.mktemp("big") / "noise.png"
    side = 1500  # under the Qwen3-VL pixel cap, so it is sent as it is, not downscaled
    Image.frombytes("RGBA", (side, side), os.urandom(side * side * 4)).save(path, compress_level=0)
    assert path.stat().st_size > 7 * 1024 * 1024
    return path


def call(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_cli(*argv: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    environ = dict(os.environ if env is None else env)
    environ["PYTHONPATH"] = str(ROOT)
    environ.pop("PYTHONUNBUFFERED", None)
    return subprocess.run(
        [sys.executable, "-m", "qwen_vl_cli", *argv],
        capture_output=True,
        text=True,
        env=environ,
        cwd=os.getcwd(),
        timeout=timeout,
    )


def saved_files() -> list[Path]:
    return sorted(OUTPUT_DIR.glob("*.json")) if OUTPUT_DIR.exists() else []


def only_saved() -> dict:
    files = saved_files()
    assert len(files) == 1, files
    return json.loads(files[0].read_text(encoding="utf-8"))


def request_json(**fields) -> str:
    return json.dumps(fields)


def user_content(body: dict) -> list:
    if "input" in body:  # native mode
        return body["input"]["messages"][-1]["content"]
    return body["messages"][-1]["content"]


def prompt_sent(body: dict) -> str:
    return "".join(p.get("text", "") for p in user_content(body) if isinstance(p, dict))


# ---------------------------------------------------------------- subprocess: success, exit codes, keys


def test_analyze_subprocess_prints_answer_and_saves_normalized_json(cli_env, png, api_key):
    proc = run_cli("analyze", "--request", request_json(prompt="What is in it?", image=str(png)))

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "I see 1 image(s) and 0 video(s). You said: What is in it?\n"
    files = saved_files()
    assert len(files) == 1 and files[0].name.startswith("analyze-")
    assert f"saved {files[0]}" in proc.stderr
    doc = json.loads(files[0].read_text())
    assert doc["text"] == proc.stdout.strip()
    assert doc["model"] == "qwen3-vl-plus"
    assert doc["request_id"] and doc["reasoning"] is None
    assert doc["usage"]["image_tokens"] > 0 and doc["usage"]["total_tokens"] > 0
    assert doc["request"] == {"prompt": "What is in it?", "image": str(png), "model": "qwen3-vl-plus"}
    # The local file went out as a data URL; none of it is in the record.
    assert user_content(cli_env.last_body)[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "base64" not in files[0].read_text()
    for text in (proc.stdout, proc.stderr, files[0].read_text()):
        assert api_key not in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", "--request", '{"prompt": "x", '], "--request is not valid JSON"),
        (["analyze", "--request", '{"prompt": "x", "image": "missing.png"}'], "'missing.png': no such file"),
        (["analyze", "--request", '{"prompt": "x", "imgae": "a.png"}'], "unknown request field 'imgae'"),
        (["analyze", "--request", '{"prompt": "x"}', "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["ocr", "--request", '{"image": "a.png"}', "--task", "poetry"], "invalid choice: 'poetry'"),
    ],
    ids=["bad-json", "missing-file", "unknown-field", "unknown-flag", "bad-task"],
)
def test_usage_and_input_errors_exit_2_with_one_line(cli_env, argv, message):
    proc = run_cli(*argv)

    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qwen-vl: error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert cli_env.chat_requests == [] and saved_files() == []


def test_missing_key_exits_2_without_a_request(dashscope, png):
    env = {k: v for k, v in os.environ.items() if k != "DASHSCOPE_API_KEY"}
    env["DASHSCOPE_BASE_URL"] = dashscope.url
    proc = run_cli("analyze", "--request", request_json(prompt="x", image=str(png)), env=env)

    assert proc.returncode == 2
    assert proc.stderr.startswith("qwen-vl: error: no DashScope API key found") and proc.stderr.count("\n") == 1
    assert dashscope.requests == []


def test_api_error_exits_3_and_the_key_never_shows(cli_env, png, api_key):
    # A server that echoes the key back in its error message: it must still never be printed.
    cli_env.script(Json(error_body(f"Incorrect API key provided: {api_key}", "invalid_api_key"), 401))
    proc = run_cli("analyze", "--request", request_json(prompt="x", image=str(png)), "--print-response")

    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("qwen-vl: error: Incorrect API key provided: ***")
    assert "status=401" in proc.stderr and "--region" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert api_key not in proc.stdout + proc.stderr
    assert saved_files() == []
    assert cli_env.last_body["model"] == "qwen3-vl-plus"  # it did reach the server


def test_stream_prints_text_as_it_arrives(cli_env, png):
    pieces = chunks("alpha beta gamma delta", piece=6)
    cli_env.script(Sse(pieces, delay=0.25))
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    environ.pop("PYTHONUNBUFFERED", None)  # a pipe is block-buffered for users: the CLI must flush
    with subprocess.Popen(
        [sys.executable, "-m", "qwen_vl_cli", "analyze", "--stream", "--prompt", "x", "--image", str(png)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    ) as proc:
        try:
            first = proc.stdout.read1(64)
            first_at = time.monotonic()
            rest = proc.stdout.read()  # until the process closes stdout
            done_at = time.monotonic()
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert first.decode().startswith("alpha")
    # 7 events 0.25 s apart: the first piece must be on stdout well before the last one.
    assert done_at - first_at > 0.75, "the first piece was only printed with the whole answer"
    assert (first + rest).decode() == "alpha beta gamma delta\n"
    assert proc.returncode == 0
    assert cli_env.last_body["stream"] is True
    assert only_saved()["text"] == "alpha beta gamma delta"


# ---------------------------------------------------------------- analyze in-process


def test_print_response_is_pure_json_and_data_urls_are_redacted(cli_env, capsys):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(buf, format="PNG")
    raw = buf.getvalue()
    data_url = "data:image/png;base64," + base64.b64encode(raw).decode()

    code, out, err = call(capsys, "analyze", "--request", request_json(prompt="Colour?", image=data_url), "--print-response")

    assert code == 0, err
    doc = json.loads(out)  # stdout holds the JSON document only
    assert doc["request"]["image"] == f"<data URL, {len(raw)} bytes>"
    assert set(doc) >= {"text", "reasoning", "model", "usage", "request_id", "request"}
    saved = saved_files()[0].read_text()
    assert json.loads(saved)["request"] == doc["request"]
    assert base64.b64encode(raw).decode()[:40] not in saved and "base64" not in saved


def test_non_streaming_request_and_options(cli_env, capsys, png):
    request = request_json(
        prompt="x", images=[str(png), str(png)], max_tokens=300, temperature=0.1, detail="low",
        max_retries=0, retry_backoff_s=0.01,
    )
    code, out, err = call(capsys, "analyze", "--request", request)

    assert code == 0, err
    body = cli_env.last_body
    assert "stream" not in body
    assert body["max_tokens"] == 300 and body["temperature"] == 0.1
    images = [p for p in body["messages"][0]["content"] if p["type"] == "image_url"]
    assert len(images) == 2 and all(p["max_pixels"] == 512 * 32 * 32 for p in images)
    assert "enable_thinking" not in body and "vl_high_resolution_images" not in body


def test_detail_high_sends_high_resolution(cli_env, capsys, png):
    code, _, err = call(capsys, "analyze", "--request", request_json(prompt="x", image=str(png), detail="high"), "--no-save")
    assert code == 0, err
    assert cli_env.last_body["vl_high_resolution_images"] is True
    assert saved_files() == []


def test_retries_follow_max_retries(cli_env, capsys, png):
    busy = Json(error_body("Service busy", "ServiceUnavailable", type_="server_error"), 503)
    cli_env.script(busy, busy)
    ok = request_json(prompt="x", image=str(png), max_retries=2, retry_backoff_s=0.01)
    code, _, err = call(capsys, "analyze", "--request", ok)
    assert code == 0, err
    assert len(cli_env.chat_requests) == 3

    cli_env.reset()
    cli_env.script(busy)
    code, _, err = call(capsys, "analyze", "--request", request_json(prompt="x", image=str(png), max_retries=0))
    assert code == 3 and "Service busy" in err and "status=503" in err
    assert len(cli_env.chat_requests) == 1


def test_connection_refused_exits_3(monkeypatch, capsys, png, api_key):
    monkeypatch.setenv("DASHSCOPE_API_KEY", api_key)
    code, _, err = call(
        capsys, "analyze", "--base-url", "http://127.0.0.1:9", "--request", request_json(prompt="x", image=str(png), max_retries=0)
    )
    assert code == 3
    assert err.startswith("qwen-vl: error: ") and "--base-url" in err


def test_json_mode_adds_the_word_json_and_parses_the_answer(cli_env, capsys, png):
    cli_env.script(Json(completion('```json\n{"title": "Invoice", "total": 12.5}\n```')))
    code, out, err = call(capsys, "analyze", "--request", request_json(prompt="Extract title and total", image=str(png)), "--json-mode")

    assert code == 0, err
    body = cli_env.last_body
    assert body["response_format"] == {"type": "json_object"}
    assert "json" in prompt_sent(body).lower()
    doc = only_saved()
    assert doc["json"] == {"title": "Invoice", "total": 12.5}
    assert doc["request"]["prompt"] == "Extract title and total" and "JSON" in doc["request"]["prompt_sent"]


def test_json_mode_keeps_a_prompt_that_already_says_json(cli_env, capsys, png):
    cli_env.script(Json(completion('{"a": 1}')))
    code, _, err = call(capsys, "analyze", "--request", request_json(prompt="Answer in JSON", image=str(png), json_mode=True))
    assert code == 0, err
    assert prompt_sent(cli_env.last_body) == "Answer in JSON"
    assert "prompt_sent" not in only_saved()["request"]


def test_json_mode_answer_that_is_not_json_exits_3_but_is_saved(cli_env, capsys, png):
    cli_env.script(Json(completion("Sorry, I cannot do that.")))
    code, _, err = call(capsys, "analyze", "--request", request_json(prompt="x", image=str(png)), "--json-mode")
    assert code == 3
    assert "not valid JSON" in err
    doc = only_saved()
    assert doc["text"] == "Sorry, I cannot do that." and doc["json"] is None


SCHEMA = {
    "title": "invoice",
    "type": "object",
    "properties": {"total": {"type": "number"}, "currency": {"type": "string", "enum": ["EUR", "USD"]}},
    "required": ["total", "currency"],
}


def test_schema_file_sends_json_schema_and_validates(cli_env, capsys, png):
    Path("invoice.schema.json").write_text(json.dumps(SCHEMA))
    cli_env.script(Json(completion('Here it is: {"total": 9.5, "currency": "EUR"}')))
    code, out, err = call(capsys, "analyze", "--request", request_json(prompt="Extract", image=str(png)), "--schema", "invoice.schema.json")

    assert code == 0, err
    rf = cli_env.last_body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == SCHEMA and rf["json_schema"]["name"] == "invoice"
    doc = only_saved()
    assert doc["json"] == {"total": 9.5, "currency": "EUR"}
    assert doc["request"]["schema"] == SCHEMA


def test_schema_violation_exits_3_with_the_problem(cli_env, capsys, png):
    cli_env.script(Json(completion('{"total": "9.50", "currency": "GBP"}')))
    code, _, err = call(capsys, "analyze", "--request", request_json(prompt="x", image=str(png)), "--schema", json.dumps(SCHEMA))
    assert code == 3
    assert "does not match the schema: $.currency: 'GBP' is not one of ['EUR', 'USD'] (and 1 more)" in err
    doc = only_saved()
    assert doc["json_errors"] == ["$.currency: 'GBP' is not one of ['EUR', 'USD']", "$.total: '9.50' is not of type 'number'"]


def test_schema_on_a_json_object_only_model_puts_the_schema_in_the_prompt(cli_env, capsys, png):
    cli_env.script(Json(completion('{"total": 1, "currency": "USD"}', model="qwen-vl-max")))
    code, _, err = call(
        capsys, "analyze", "--request", request_json(prompt="x", image=str(png), model="qwen-vl-max"), "--schema", json.dumps(SCHEMA)
    )
    assert code == 0, err
    body = cli_env.last_body
    assert body["response_format"] == {"type": "json_object"}
    assert '"required": ["total", "currency"]' in prompt_sent(body)


def test_schema_with_thinking_on_is_an_input_error(cli_env, capsys, png):
    code, _, err = call(
        capsys, "analyze", "--request", request_json(prompt="x", image=str(png), enable_thinking=True), "--schema", json.dumps(SCHEMA)
    )
    assert code == 2 and "needs thinking off" in err
    assert cli_env.chat_requests == []


def test_upload_off_by_default_then_on_with_upload_files(cli_env, capsys, big_png):
    request = request_json(prompt="What is it?", image=str(big_png))
    code, _, err = call(capsys, "analyze", "--request", request)
    assert code == 2
    assert "over the 10 MB limit" in err and "add --upload-files" in err and "upload=True" not in err
    assert cli_env.requests == []

    code, out, err = call(capsys, "analyze", "--request", request, "--upload-files")
    assert code == 0, err
    assert len(cli_env.uploads) == 1 and len(cli_env.policy_requests) == 1
    (key, data), = cli_env.uploads.items()
    assert data == big_png.read_bytes()
    chat = cli_env.chat_requests[-1]
    assert chat.json["messages"][0]["content"][0]["image_url"]["url"] == f"oss://{key}"
    assert chat.headers["x-dashscope-ossresourceresolve"] == "enable"
    assert only_saved()["request"]["image"] == str(big_png)


def test_video_frames_and_video_fields(cli_env, capsys, png):
    frames = [str(png)] * 4
    code, _, err = call(capsys, "analyze", "--request", request_json(prompt="x", video_frames=frames, fps=1))
    assert code == 0, err
    part = cli_env.last_body["messages"][0]["content"][0]
    assert part["type"] == "video" and len(part["video"]) == 4 and part["fps"] == 1

    code, _, err = call(capsys, "analyze", "--request", request_json(prompt="x", video="https://example.com/clip.mp4"))
    assert code == 0, err
    assert cli_env.last_body["messages"][0]["content"][0] == {"type": "video_url", "video_url": {"url": "https://example.com/clip.mp4"}}


def test_request_file_and_shortcut_flags(cli_env, capsys, png):
    Path("req.json").write_text(request_json(prompt="from file", image="https://example.com/a.jpg", model="qwen3-vl-flash"))
    code, _, err = call(capsys, "analyze", "--request-file", "req.json", "--prompt", "from flag", "--image", str(png))
    assert code == 0, err
    body = cli_env.last_body
    assert body["model"] == "qwen3-vl-flash"
    assert prompt_sent(body) == "from flag"
    assert body["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png")


def test_output_path_file_and_directory(cli_env, capsys, png):
    req = request_json(prompt="x", image=str(png))
    code, _, err = call(capsys, "analyze", "--request", req, "--output", "results/")  # a folder: created
    assert code == 0, err
    assert len(list(Path("results").glob("analyze-*.json"))) == 1
    code, _, err = call(capsys, "analyze", "--request", req, "--output", "results/one.json")
    assert code == 0, err
    assert json.loads(Path("results/one.json").read_text())["text"]
    assert saved_files() == []


def test_api_key_env(cli_env, capsys, png, monkeypatch):
    monkeypatch.setenv("OTHER_KEY", "sk-other-9876543210")
    code, _, err = call(capsys, "analyze", "--api-key-env", "OTHER_KEY", "--request", request_json(prompt="x", image=str(png)))
    assert code == 0, err
    assert cli_env.chat_requests[-1].headers["authorization"] == "Bearer sk-other-9876543210"

    code, _, err = call(capsys, "analyze", "--api-key-env", "UNSET_KEY_VAR", "--request", request_json(prompt="x", image=str(png)))
    assert code == 2 and "UNSET_KEY_VAR is not set" in err


def test_partial_answer_is_saved_and_exits_3(cli_env, capsys, png):
    cli_env.script(Json(completion("The first half"), headers={"x-dashscope-partialresponse": "true"}))
    code, out, err = call(capsys, "analyze", "--request", request_json(prompt="x", image=str(png)))
    assert code == 3 and "returned only its beginning" in err and "--continue-from" in err
    assert only_saved()["partial"] is True


# ---------------------------------------------------------------- reason


def test_reason_streams_reasoning_to_stderr_and_answer_to_stdout(cli_env, capsys, png):
    cli_env.script(Sse(chunks("The answer is 42.", reasoning="First add, then multiply.", model="qvq-max")))
    code, out, err = call(capsys, "reason", "--request", request_json(prompt="Solve it", image=str(png)))

    assert code == 0, err
    assert out == "The answer is 42.\n"
    assert "--- Reasoning ---\nFirst add, then multiply.\n--- Answer ---\n" in err
    assert "The answer is" not in err  # (the saved file's random name may contain any digits)
    body = cli_env.last_body
    assert body["model"] == "qvq-max" and body["stream"] is True
    doc = only_saved()
    assert doc["reasoning"] == "First add, then multiply." and doc["text"] == "The answer is 42."
    assert doc["command"] == "reason"


def test_reason_with_print_response_keeps_stdout_for_json(cli_env, capsys, png):
    code, out, err = call(capsys, "reason", "--prompt", "Solve", "--image", str(png), "--print-response", "--no-save")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["reasoning"] == "Thinking about the request." and doc["text"].startswith("I see 1 image")
    assert "--- Reasoning ---" in err and "I see 1 image" in err  # shown live on stderr


def test_reason_turns_thinking_on_for_hybrid_models(cli_env, capsys, png):
    code, _, err = call(capsys, "reason", "--request", request_json(prompt="x", image=str(png), model="qwen3-vl-plus"))
    assert code == 0, err
    assert cli_env.last_body["enable_thinking"] is True and cli_env.last_body["stream"] is True


def test_reason_refuses_json_fields(cli_env, capsys, png):
    code, _, err = call(capsys, "reason", "--request", request_json(prompt="x", image=str(png), json_mode=True))
    assert code == 2 and "unknown request field 'json_mode' for 'reason'" in err


# ---------------------------------------------------------------- ocr


def test_ocr_default_task_uses_the_native_api(cli_env, capsys, png):
    code, out, err = call(capsys, "ocr", "--request", request_json(image=str(png)))
    assert code == 0, err
    assert out == "OCR(text_recognition): I see 1 image(s).\n"
    req = cli_env.chat_requests[-1]
    assert req.kind == "native"
    assert req.json["model"] == "qwen-vl-ocr"
    assert req.json["parameters"]["ocr_options"] == {"task": "text_recognition"}
    doc = only_saved()
    assert doc["request"]["task"] == "text_recognition" and doc["model"] == "qwen-vl-ocr"


def test_ocr_key_information_extraction_with_task_config(cli_env, capsys, png):
    config = {"result_schema": {"total": "the total amount"}}
    code, _, err = call(
        capsys, "ocr", "--image", str(png), "--task", "key_information_extraction", "--task-config", json.dumps(config)
    )
    assert code == 0, err
    assert cli_env.last_body["parameters"]["ocr_options"] == {"task": "key_information_extraction", "task_config": config}
    assert only_saved()["request"]["task_config"] == config


def test_ocr_without_a_task_sends_the_prompt(cli_env, capsys, png):
    code, _, err = call(capsys, "ocr", "--image", str(png), "--task", "none")
    assert code == 0, err
    req = cli_env.chat_requests[-1]
    assert req.kind == "compatible" and "ocr_options" not in json.dumps(req.json)
    assert prompt_sent(req.json) == "Read all the text in the image."


# ---------------------------------------------------------------- misc


def test_help_and_version(capsys):
    code, out, _ = call(capsys, "--version")
    assert code == 0 and out.startswith("qwen-vl ")
    code, out, _ = call(capsys, "analyze", "--help")
    assert code == 0 and "video_frames" in out and "--upload-files" in out
    code, _, err = call(capsys)
    assert code == 2 and "analyze" in err


def test_no_request_at_all_is_a_usage_error(cli_env, capsys):
    code, _, err = call(capsys, "analyze")
    assert code == 2 and "--request" in err
    assert cli_env.requests == []


def test_unwritable_output_fails_before_the_request(cli_env, capsys, png):
    code, _, err = call(capsys, "analyze", "--request", request_json(prompt="x", image=str(png)), "--output", f"{png}/result.json")
    assert code == 2 and "not a writable directory" in err
    assert cli_env.requests == []


def test_thinking_answers_are_streamed(cli_env, capsys, png):
    code, out, err = call(capsys, "analyze", "--request", request_json(prompt="x", image=str(png), enable_thinking=True, thinking_budget=500))
    assert code == 0, err
    body = cli_env.last_body
    assert body["stream"] is True and body["enable_thinking"] is True and body["thinking_budget"] == 500
    assert "--- Reasoning ---\nThinking about the request." in err and out.startswith("I see 1 image")


def test_ocr_task_on_a_general_model_is_an_input_error(cli_env, capsys, png):
    code, _, err = call(capsys, "ocr", "--image", str(png), "--model", "qwen3-vl-plus")
    assert code == 2 and "--task none" in err
    assert cli_env.requests == []
