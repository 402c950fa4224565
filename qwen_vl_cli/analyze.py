"""``qwen-vl analyze``: image / multi-image / video understanding, optionally as JSON."""

from __future__ import annotations

import argparse
from typing import Any

from qwen_vl_core.models import DEFAULT_MODEL, get_capabilities
from qwen_vl_core.structured import JSON_HINT, extract_json, json_schema_format, load_json_schema, schema_errors, schema_prompt

from ._args import add_api_args, add_request_args
from ._chat import check_raw, finish, open_client, raw_extra, run_call
from ._common import Console
from ._output import emit, normalized, plan_output
from ._request import (
    ANALYZE_FIELDS,
    LOW_DETAIL_TOKENS,
    Prepared,
    continue_answer,
    load_continuation,
    load_request,
    prepare,
    set_prompt,
)


DESCRIPTION = f"""\
Ask a Qwen-VL model about images or a video.

Request fields (JSON object):
  prompt (required)      the question or instruction
  image | images | video | video_frames
                         inputs: http(s) URL, local path, file://, data: or oss:// URL;
                         images and video_frames are arrays (video_frames: 4 to 512 images,
                         4 to 80 for Qwen3.5 / Qwen3.6)
  model                  default {DEFAULT_MODEL}
  max_tokens, temperature, top_p, seed
  detail                 auto (default) | low (at most {LOW_DETAIL_TOKENS} tokens per image) |
                         high (high_resolution: up to 16384 tokens per image)
  enable_thinking, thinking_budget, high_resolution, min_pixels, max_pixels, fps
  json_mode, schema      as --json-mode / --schema
  max_retries            retries for 408/409/429/5xx and connection errors (default 2)
  retry_backoff_s        first retry delay in seconds, doubling each time (default 0.5)
Fields that are not given are not sent: the model's defaults apply.
"""

EPILOG = """\
examples:
  qwen-vl analyze --request '{"prompt":"What is in this image?","image":"https://example.com/a.jpg"}'
  qwen-vl analyze --prompt "Compare them" --image a.png --image b.png --stream
  qwen-vl analyze --request '{"prompt":"Extract title, total, date","image":"invoice.png"}' --json-mode
  qwen-vl analyze --request-file req.json --schema invoice.schema.json --print-response
  qwen-vl analyze --request '{"prompt":"Describe the clip","video":"clip.mp4"}' --upload-files
  qwen-vl analyze --continue-from output/qwen-vl/analyze-20260415T101530Z-1a2b3c.json   # a partial answer

exit codes: 0 success, 2 usage or input error, 3 API error or unusable answer
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "analyze",
        help="ask about images or a video (Qwen3-VL and others)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_request_args(p)
    group = p.add_argument_group("answer")
    group.add_argument(
        "--json-mode",
        action="store_true",
        help="ask for a JSON object (response_format json_object); the answer must parse",
    )
    group.add_argument(
        "--schema",
        metavar="FILE|JSON",
        help="JSON Schema for structured extraction (a .json file or inline JSON); the answer is checked against it",
    )
    group.add_argument(
        "--stream", action="store_true", help="print the answer as it arrives (always on when the model thinks)"
    )
    add_api_args(p)
    p.set_defaults(run=run)


def _structured(prepared: Prepared) -> dict[str, Any] | None:
    """Set ``response_format`` (and the prompt where needed); return the schema, if any."""
    request = prepared.request
    schema = request.get("schema")
    if schema is not None:
        schema = load_json_schema(schema, what="--schema" if isinstance(schema, str) else "request field 'schema'")
        request["schema"] = schema
        caps = get_capabilities(prepared.model)
        if caps.known and "json_schema" not in caps.structured_output and "json_object" in caps.structured_output:
            # e.g. qwen-vl-max: JSON mode with the schema in the prompt, still checked afterwards.
            prepared.options["response_format"] = {"type": "json_object"}
            set_prompt(prepared, f"{prepared.prompt}\n\n{schema_prompt(schema)}")
            prepared.notes["response_format"] = "json_object (the model has no json_schema output)"
        else:
            prepared.options["response_format"] = json_schema_format(schema)
        return schema
    if request.get("json_mode"):
        prepared.options["response_format"] = {"type": "json_object"}
        if "json" not in (prepared.prompt or "").lower():
            # DashScope refuses json_object unless the word "json" appears in the messages.
            set_prompt(prepared, f"{prepared.prompt}\n\n{JSON_HINT}")
    return None


def check_json(text: str, schema: dict[str, Any] | None) -> tuple[Any, list[str], str | None]:
    """(parsed value, schema problems, error message or None)."""
    try:
        value = extract_json(text)
    except ValueError as exc:
        return None, [], f"the answer is not valid JSON ({exc}); the raw answer is the result's \"text\""
    if schema is None:
        return value, [], None
    problems = schema_errors(value, schema)
    if problems:
        more = "" if len(problems) == 1 else f" (and {len(problems) - 1} more)"
        return value, problems, f"the answer does not match the schema: {problems[0]}{more}"
    return value, [], None


def run(args: argparse.Namespace, console: Console) -> int:
    check_raw(args)
    continuation = load_continuation(args, "analyze", ANALYZE_FIELDS)
    request = load_request(args, base=continuation.request if continuation else None)
    if args.json_mode:
        request["json_mode"] = True
    if args.schema is not None:
        request["schema"] = args.schema
    prepared = prepare(request, command="analyze", known=ANALYZE_FIELDS, default_model=DEFAULT_MODEL)
    continue_answer(prepared, continuation)
    schema = _structured(prepared)
    target = plan_output(args, "analyze")
    client, recorder = open_client(args, console, prepared)
    # Thinking answers are streamed, as the seed scripts do: the reasoning can be long.
    caps = get_capabilities(prepared.model)
    thinking = caps.thinking_on(prepared.options.get("enable_thinking")) and "response_format" not in prepared.options
    stream = args.stream or thinking
    with client:
        result = run_call(client, prepared, stream=stream, console=console, print_response=args.print_response)
    extra: dict[str, Any] = raw_extra(recorder)
    problem = None
    if "response_format" in prepared.options:
        value, problems, problem = check_json(result.text, schema)
        extra["json"] = value
        if problems:
            extra["json_errors"] = problems
    document = normalized(
        result, command="analyze", model=prepared.model, request={**prepared.request, **prepared.notes}, extra=extra
    )
    emit(document, target, args, console)
    return finish(result, console, problem, command="analyze", saved=target)

