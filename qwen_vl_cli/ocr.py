"""``qwen-vl ocr``: qwen-vl-ocr with its built-in tasks (DashScope native API)."""

from __future__ import annotations

import argparse
from typing import Any

from qwen_vl_core.errors import InputValidationError
from qwen_vl_core.models import get_capabilities
from qwen_vl_core.protocol import OCR_TASKS
from qwen_vl_core.structured import extract_json, load_json_object

from ._args import add_api_args, add_request_args
from ._chat import check_raw, finish, open_client, raw_extra, run_call
from ._common import CLIError, Console
from ._output import emit, normalized, plan_output
from ._request import OCR_FIELDS, load_request, prepare, set_prompt

__all__ = ["add_parser", "run", "TASKS", "DEFAULT_TASK"]

DEFAULT_MODEL = "qwen-vl-ocr"
DEFAULT_TASK = "text_recognition"
NO_TASK = "none"
FREE_PROMPT = "Read all the text in the image."
TASKS = (
    "text_recognition",
    "key_information_extraction",
    "table_parsing",
    "document_parsing",
    "formula_recognition",
    "multi_lan",
    "advanced_recognition",
)
assert set(TASKS) == set(OCR_TASKS), "keep the CLI's task list in step with qwen_vl_core.protocol.OCR_TASKS"
# Tasks whose answer is JSON: parsed into the result's "json" field when it parses.
_JSON_TASKS = frozenset({"key_information_extraction"})

DESCRIPTION = f"""\
Text extraction with qwen-vl-ocr. A built-in task (--task, default {DEFAULT_TASK}) goes through
DashScope's native API with parameters.ocr_options; the model then uses its own prompt for the
task. --task {NO_TASK} sends your prompt instead (default prompt: "{FREE_PROMPT}").

Request fields (JSON object):
  image (required)       http(s) URL, local path, file://, data: or oss:// URL
  prompt                 only used with --task {NO_TASK}
  task, task_config      as --task / --task-config
  model                  default {DEFAULT_MODEL}
  max_tokens, temperature, top_p, seed, detail, high_resolution, min_pixels, max_pixels,
  max_retries, retry_backoff_s
"""

EPILOG = """\
examples:
  qwen-vl ocr --request '{"image":"invoice.jpg"}'
  qwen-vl ocr --image table.png --task table_parsing --print-response
  qwen-vl ocr --image receipt.jpg --task key_information_extraction \\
      --task-config '{"result_schema":{"store":"store name","total":"total amount"}}'

exit codes: 0 success, 2 usage or input error, 3 API error
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ocr",
        help="extract text, tables, formulas or key fields with qwen-vl-ocr",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_request_args(p, video=False, multi_image=False, continuation=False)
    group = p.add_argument_group("task")
    group.add_argument(
        "--task",
        choices=(*TASKS, NO_TASK),
        metavar="TASK",
        help=f"built-in OCR task: {', '.join(TASKS)} (default {DEFAULT_TASK}); '{NO_TASK}' for a free prompt",
    )
    group.add_argument(
        "--task-config",
        metavar="FILE|JSON",
        help='task configuration, e.g. {"result_schema": {...}} for key_information_extraction',
    )
    add_api_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    if args.image and len(args.image) > 1:
        raise CLIError("ocr takes one image; give --image once")
    check_raw(args)
    request = load_request(args, shortcuts="--image")
    if args.task is not None:
        request["task"] = args.task
    if args.task_config is not None:
        request["task_config"] = load_json_object(args.task_config, what="--task-config")
    prepared = prepare(
        request, command="ocr", known=OCR_FIELDS, default_model=DEFAULT_MODEL, prompt_required=False
    )
    task = prepared.request.setdefault("task", DEFAULT_TASK)
    config = prepared.request.get("task_config")
    if task == NO_TASK:
        if config is not None:
            raise InputValidationError(f"task_config needs a built-in task, not task {NO_TASK!r}")
        if not (prepared.prompt or "").strip():
            set_prompt(prepared, FREE_PROMPT)
    else:
        if task not in OCR_TASKS:
            raise InputValidationError(f"request field 'task' must be one of: {', '.join((*TASKS, NO_TASK))}; got {task!r}")
        caps = get_capabilities(prepared.model)
        if caps.known and not caps.ocr_tasks:
            raise InputValidationError(
                f"built-in OCR tasks need a qwen-vl-ocr model, not {prepared.model!r}; use --task {NO_TASK} for a free prompt"
            )
        prepared.options["ocr_task"] = task
        if config is not None:
            prepared.options["ocr_task_config"] = config
    target = plan_output(args, "ocr")
    client, recorder = open_client(args, console, prepared)
    with client:
        result = run_call(client, prepared, stream=False, console=console, print_response=args.print_response)
    extra: dict[str, Any] = raw_extra(recorder)
    if task in _JSON_TASKS:
        try:
            extra["json"] = extract_json(result.text)
        except ValueError:
            extra["json"] = None
    document = normalized(result, command="ocr", model=prepared.model, request={**prepared.request, **prepared.notes}, extra=extra)
    emit(document, target, args, console)
    return finish(result, console, command="ocr", saved=target)


