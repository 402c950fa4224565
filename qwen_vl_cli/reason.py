"""``qwen-vl reason``: visual reasoning (QVQ, or any thinking model), always streamed."""

from __future__ import annotations

import argparse
from typing import Any

from qwen_vl_core.models import get_capabilities

from ._args import add_api_args, add_request_args
from ._chat import ANSWER_HEADER, REASONING_HEADER, check_raw, finish, open_client, raw_extra, run_call
from ._common import Console
from ._output import emit, normalized, plan_output
from ._request import REASON_FIELDS, continue_answer, load_continuation, load_request, prepare

DEFAULT_MODEL = "qvq-max"

DESCRIPTION = f"""\
Visual reasoning with chain of thought: QVQ ({DEFAULT_MODEL} by default) or any model with a
thinking mode (thinking is switched on for hybrid models such as qwen3-vl-plus). Always streams.

Display: the reasoning streams to stderr under "{REASONING_HEADER}", then "{ANSWER_HEADER}" (on
stderr) and the answer streams to stdout, so `qwen-vl reason ... > answer.txt` keeps only the
answer. With --print-response, stdout holds only the JSON result and both stream to stderr.

Request fields: as for `qwen-vl analyze` (prompt, image, images, video, video_frames, model,
max_tokens, temperature, detail, thinking_budget, high_resolution, fps, max_retries,
retry_backoff_s, ...), without json_mode and schema (QVQ has no structured output).
"""

EPILOG = """\
examples:
  qwen-vl reason --request '{"prompt":"Solve this step by step","image":"problem.png"}'
  qwen-vl reason --prompt "Which bar is tallest, and by how much?" --image chart.png --print-response

exit codes: 0 success, 2 usage or input error, 3 API error or unusable answer
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "reason",
        help="visual reasoning with QVQ (streamed, reasoning shown apart from the answer)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_request_args(p)
    add_api_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    check_raw(args)
    continuation = load_continuation(args, "reason", REASON_FIELDS)
    request = load_request(args, base=continuation.request if continuation else None)
    prepared = prepare(request, command="reason", known=REASON_FIELDS, default_model=DEFAULT_MODEL)
    continue_answer(prepared, continuation)
    caps = get_capabilities(prepared.model)
    if caps.thinking in ("hybrid-off", "hybrid-on") and "enable_thinking" not in prepared.options:
        prepared.options["enable_thinking"] = True
    target = plan_output(args, "reason")
    client, recorder = open_client(args, console, prepared)
    with client:
        result = run_call(client, prepared, stream=True, console=console, print_response=args.print_response)
    if not result.reasoning and not result.partial:
        console.warn(f"model {prepared.model!r} returned no reasoning, only an answer")
    document = normalized(
        result, command="reason", model=prepared.model, request={**prepared.request, **prepared.notes},
        extra=raw_extra(recorder),
    )
    emit(document, target, args, console)
    return finish(result, console, command="reason", saved=target)
