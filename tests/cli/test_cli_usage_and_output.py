"""The ``qwen-vl`` command: one-line usage errors with the subcommand's help, flag values checked with
their range, ``--output`` creating only what was asked for, ``tokens --check``, regions, ``--save-raw``,
``--continue-from`` and what a partial answer says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from qwen_vl_cli import main
from tests.fake_dashscope import Json, Sse, chunks, completion
from tests.support.mp4_samples import write_mp4

OUTPUT_DIR = Path("output") / "qwen-vl"




def call(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def saved() -> list[Path]:
    return sorted(OUTPUT_DIR.glob("*.json")) if OUTPUT_DIR.exists() else []


# ---------------------------------------------------------------- one-line usage errors, every subcommand


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["analyze"], "give the request with --request JSON or --request-file FILE (or --prompt and --image)"),
        (["analyze", "--bogus"], "unrecognized arguments: --bogus"),
        (["analyze", "--prompt", "x", "--image", "a.png", "--timeout", "-1"], "--timeout must be positive"),
        (["reason"], "give the request with"),
        (["reason", "--request", "[1]"], "--request must be a JSON object"),
        (["ocr"], "give the request with --request JSON or --request-file FILE (or --image)"),
        (["ocr", "--task", "nope", "--image", "a.png"], "argument --task: invalid choice"),
        (["tokens"], "the following arguments are required: FILE"),
        (["tokens", "a.png", "--fps", "30"], "--fps must be from 0.1 to 10"),
        (["read"], "the following arguments are required: PATH"),
        (["read", "x.png", "--dpi", "-5"], "argument --dpi: must be between 18 and 1200 dpi, got -5"),
        (["read", "x.png", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["read", "x.png", "--max-retries", "-1"], "argument --max-retries: must be 0 or more, got -1"),
        (["read", "x.png", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line_pointing_at_the_subcommands_help(cli_env, capsys, argv, fragment):
    code, out, err = call(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("qwen-vl: error: "), err
    assert fragment in err
    assert err.rstrip("\n").endswith(f"(see 'qwen-vl {argv[0]} --help')")
    assert "usage:" not in err and "pydantic" not in err and "errors.pydantic.dev" not in err
    assert cli_env.requests == []


def test_ocr_without_arguments_does_not_ask_for_a_prompt(cli_env, capsys):
    _, _, err = call(capsys, "ocr")
    assert "--prompt" not in err and "--image" in err


def test_input_errors_exit_2_with_the_help_pointer_and_api_errors_exit_3_without(cli_env, capsys, png):
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", "missing.png")
    assert code == 2 and "missing.png" in err and err.rstrip().endswith("(see 'qwen-vl analyze --help')")
    cli_env.script(Json({"error": {"message": "boom", "type": "x", "code": "internal_error"}}, 500))
    code, _, err = call(capsys, "analyze", "--request", json.dumps({"prompt": "x", "image": str(png), "max_retries": 0}), "--no-save")
    assert code == 3 and "--help" not in err and err.count("\n") == 1


# ---------------------------------------------------------------- regions


def test_unknown_region_is_an_error_even_with_a_base_url(cli_env, capsys, png):
    for command in (["analyze", "--prompt", "x", "--image", str(png)], ["read", str(png)]):
        code, _, err = call(capsys, *command, "--region", "mars")
        assert code == 2 and "unknown region 'mars'" in err, err
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", str(png), "--region", "mars", "--base-url", cli_env.url)
    assert code == 2 and "unknown region 'mars'" in err
    assert cli_env.requests == []


# ---------------------------------------------------------------- --output creates only what was asked for


def test_output_file_in_a_missing_folder_is_an_error_before_the_request(cli_env, capsys, png, tmp_path):
    target = tmp_path / "nonexistent" / "dir" / "x.json"
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", str(png), "--output", str(target))
    assert code == 2 and "does not exist" in err and str(target.parent) in err
    assert not (tmp_path / "nonexistent").exists()
    assert cli_env.requests == []


def test_output_folder_with_a_slash_creates_that_one_folder_only(cli_env, capsys, png, tmp_path):
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", str(png), "--output", f"{tmp_path}/runs/")
    assert code == 0, err
    assert len(list((tmp_path / "runs").glob("analyze-*.json"))) == 1
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", str(png), "--output", f"{tmp_path}/a/b/")
    assert code == 2 and "only the last folder" in err and not (tmp_path / "a").exists()


def test_default_output_folder_is_created(cli_env, capsys, png):
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", str(png))
    assert code == 0, err
    assert len(saved()) == 1


# ---------------------------------------------------------------- tokens --check


def test_tokens_check_exits_2_on_what_dashscope_refuses(capsys):
    Image.new("RGB", (2100, 10)).save("thin.png")
    Image.new("RGB", (300, 200)).save("ok.png")
    write_mp4(Path("long.mp4"), 1280, 720, 25 * 60)
    assert call(capsys, "tokens", "ok.png", "thin.png")[0] == 0  # reported, not an error without --check
    code, out, err = call(capsys, "tokens", "--check", "ok.png")
    assert code == 0, err
    code, out, err = call(capsys, "tokens", "--check", "ok.png", "thin.png")
    assert code == 2 and "DashScope would refuse 'thin.png'" in err and "more than 10 px" in err
    assert "TOTAL" in out  # the table is still printed
    # 25 min: within Qwen3-VL-Plus's 1 h (004), past qwen-vl-max's 20 min and QVQ's 10 min (003)
    assert call(capsys, "tokens", "--check", "long.mp4", "--model", "qwen3-vl-plus")[0] == 0
    code, out, err = call(capsys, "tokens", "--check", "long.mp4", "--model", "qwen3-vl-plus", "--model", "qvq-max", "--json")
    assert code == 2 and "for qvq-max: longer than 10 min" in err
    row = json.loads(out)["files"][0]
    assert row["refused"] == {"qvq-max": "longer than 10 min, the most qvq-max takes"}
    assert row["frames"] == {"qwen3-vl-plus": 512, "qvq-max": 512}


def test_tokens_notes_what_cannot_be_checked_locally(capsys):
    Path("rec.avi").write_bytes(b"RIFF\0\0\0\0AVI LIST" + b"\0" * 64)
    code, out, err = call(capsys, "tokens", "rec.avi", "--duration", "30", "--size", "640x480", "--json")
    assert code == 0, err
    assert "length of a AVI file cannot be read here" in json.loads(out)["files"][0]["note"]
    code, out, err = call(capsys, "tokens", "https://example.com/clip.mp4", "--duration", "90", "--size", "1280x720",
                          "--model", "qwen3-vl-plus", "--json")  # fmt: skip
    assert code == 0, err
    row = json.loads(out)["files"][0]
    assert row["kind"] == "video" and row["tokens"]["qwen3-vl-plus"] > 0 and "URL cannot be checked here" in row["note"]
    code, _, err = call(capsys, "tokens", "https://example.com/a.jpg")
    assert code == 2 and "needs --size WxH (a URL is not downloaded)" in err


# ---------------------------------------------------------------- --save-raw


def test_save_raw_keeps_the_json_response_beside_the_normalized_result(cli_env, capsys, png):
    cli_env.script(Json(completion("A red square.", request_id="req-raw-1")))
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", str(png), "--save-raw")
    assert code == 0, err
    doc = json.loads(saved()[0].read_text())
    assert doc["text"] == "A red square."
    raw = doc["raw_response"]
    assert raw["choices"][0]["message"]["content"] == "A red square." and raw["object"] == "chat.completion"


def test_save_raw_keeps_the_stream_events(cli_env, capsys, png, api_key):
    cli_env.script(Sse(chunks("Forty-two.", reasoning="Think.", model="qvq-max")))
    code, out, err = call(capsys, "reason", "--prompt", "x", "--image", str(png), "--save-raw", "--no-save", "--print-response")
    assert code == 0, err
    doc = json.loads(out)
    events = doc["raw_response"]
    assert isinstance(events, list) and len(events) >= 2
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")) == "Forty-two."
    assert api_key not in out + err


def test_without_save_raw_there_is_no_raw_response(cli_env, capsys, png):
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", str(png))
    assert code == 0, err
    assert "raw_response" not in json.loads(saved()[0].read_text())
    code, _, err = call(capsys, "analyze", "--prompt", "x", "--image", str(png), "--save-raw", "--no-save")
    assert code == 2 and "--save-raw" in err


# ---------------------------------------------------------------- partial answers and --continue-from


def test_a_partial_answer_says_how_to_continue_it_and_continue_from_does(cli_env, capsys, png):
    cli_env.script(Json(completion("The first half"), headers={"x-dashscope-partialresponse": "true"}))
    code, out, err = call(capsys, "analyze", "--prompt", "Describe it", "--image", str(png))
    assert code == 3
    first = saved()[0]
    assert f"continue it with: qwen-vl analyze --continue-from {first}" in err
    assert err.count("qwen-vl: error:") == 1 and "continue_from=" not in err  # the core's warning is not repeated
    assert json.loads(first.read_text())["partial"] is True

    cli_env.script(Json(completion(", and the second half.")))
    code, out, err = call(capsys, "analyze", "--continue-from", str(first), "--output", "whole.json")
    assert code == 0, err
    assert out.strip() == "The first half, and the second half."
    body = cli_env.last_body
    assert body["messages"][-1] == {"role": "assistant", "content": "The first half", "partial": True}
    assert body["messages"][0]["content"][-1]["text"] == "Describe it"  # the saved request, reused
    doc = json.loads(Path("whole.json").read_text())
    assert doc["text"] == "The first half, and the second half." and doc["partial"] is False
    assert doc["request"]["continued_from"] == {"file": str(first), "characters": len("The first half")}


def test_continue_from_a_text_file_with_a_new_request(cli_env, capsys, png):
    Path("start.txt").write_text("Once upon a time")
    cli_env.script(Sse(chunks(" there was a cat.")))
    code, out, err = call(capsys, "analyze", "--continue-from", "start.txt", "--prompt", "Tell a story", "--image", str(png),
                          "--stream", "--no-save")  # fmt: skip
    assert code == 0, err
    assert out.strip() == "Once upon a time there was a cat."
    assert cli_env.last_body["messages"][-1]["partial"] is True


def test_continue_from_errors(cli_env, capsys, png):
    code, _, err = call(capsys, "analyze", "--continue-from", "nope.txt")
    assert code == 2 and "--continue-from 'nope.txt': no such file" in err
    Path("empty.txt").write_text("  \n")
    code, _, err = call(capsys, "analyze", "--continue-from", "empty.txt", "--prompt", "x", "--image", str(png))
    assert code == 2 and "holds no answer to continue" in err
    Path("other.json").write_text(json.dumps({"text": "abc", "command": "reason", "request": {"prompt": "x"}}))
    code, _, err = call(capsys, "analyze", "--continue-from", "other.json")
    assert code == 2 and "is a result of 'qwen-vl reason'" in err
    code, _, err = call(capsys, "ocr", "--continue-from", "x.txt")
    assert code == 2 and "unrecognized arguments: --continue-from" in err
    assert cli_env.requests == []
