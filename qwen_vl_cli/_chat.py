"""Run one call and show it: reasoning on stderr under a header, the answer on stdout.

With ``--print-response`` stdout is reserved for the JSON document: a streamed answer is shown
live on stderr instead, and a non-streamed one is not echoed (it is in the JSON).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from qwen_vl_core.client import PARTIAL_ADVICE
from qwen_vl_core.types import ChatResult, StreamAccumulator

from ._common import EXIT_API, EXIT_OK, CLIError, Console

__all__ = ["Display", "run_call", "finish", "partial_message"]

REASONING_HEADER = "--- Reasoning ---"
ANSWER_HEADER = "--- Answer ---"


class Display:
    def __init__(self, console: Console, *, answer_to_stdout: bool, enabled: bool = True) -> None:
        self.console = console
        self.answer_to_stdout = answer_to_stdout
        self.enabled = enabled
        self._state: str | None = None

    def reasoning(self, text: str) -> None:
        if not (self.enabled and text):
            return
        if self._state != "reasoning":
            self.console.end_lines()
            self.console.err(REASONING_HEADER)
            self._state = "reasoning"
        self.console.err(text, end="")

    def answer(self, text: str) -> None:
        if not (self.enabled and text):
            return
        if self._state == "reasoning":
            self.console.end_lines()
            self.console.err(ANSWER_HEADER)
        self._state = "answer"
        if self.answer_to_stdout:
            self.console.out(text, end="")
        else:
            self.console.err(text, end="")

    def finish(self) -> None:
        if self.enabled:
            self.console.end_lines()


class _NoPartialAdvice(logging.Filter):
    """The core's warning for a partial answer, left out: :func:`finish` words it as flags."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and record.args[:1] == (PARTIAL_ADVICE,))


def run_call(
    client: Any,
    prepared: Any,
    *,
    stream: bool,
    console: Console,
    print_response: bool,
) -> ChatResult:
    """``client.chat`` or ``client.stream`` (folded into one result), shown as it arrives.

    With a prefix (``--continue-from``) the call continues it (``continue_from``, partial mode): the
    prefix is shown first and the result's text is the whole answer, prefix included."""
    options = dict(prepared.options)
    prefix = getattr(prepared, "prefix", None)
    if prefix:
        options["continue_from"] = prefix
    log, quiet = logging.getLogger("qwen_vl_core.client"), _NoPartialAdvice()
    log.addFilter(quiet)
    try:
        if stream:
            display = Display(console, answer_to_stdout=not print_response)
            display.answer(prefix or "")
            acc = StreamAccumulator()
            try:
                for delta in client.stream(prepared.messages, model=prepared.model, **options):
                    acc.add(delta)
                    display.reasoning(delta.reasoning)
                    display.answer(delta.text)
            finally:
                display.finish()
            result = acc.build()
        else:
            result = client.chat(prepared.messages, model=prepared.model, **options)
            display = Display(console, answer_to_stdout=True, enabled=not print_response)
            display.reasoning(result.reasoning)
            display.answer((prefix or "") + result.text)
            display.finish()
    finally:
        log.removeFilter(quiet)
    if prefix:
        result.text = prefix + result.text
    return result


def finish(
    result: ChatResult,
    console: Console,
    problem: str | None = None,
    *,
    command: str = "analyze",
    saved: Path | None = None,
) -> int:
    """The exit code for a finished call: partial answers and unusable ones are API failures (3).
    A partial answer's message says how to continue it (``--continue-from`` the saved result)."""
    if result.partial:
        raise CLIError(partial_message(command, saved), EXIT_API)
    if problem:
        raise CLIError(problem, EXIT_API)
    if result.finish_reason == "length":
        console.warn("the answer was cut off at max_tokens (finish_reason 'length')")
    return EXIT_OK


def partial_message(command: str, saved: Path | None) -> str:
    """What to say when the server cut a non-streamed answer short (after about 180 s)."""
    head = "the server stopped the answer after about 180 s and returned only its beginning"
    if command == "ocr":
        where = f"saved to {saved}" if saved else "not saved"
        return f"{head} ({where}, marked partial); run it again, or on a smaller image"
    stream = "" if command == "reason" else " (or add --stream: a streamed answer has no time limit)"
    if saved is not None:
        return f"{head} (saved to {saved}, marked partial); continue it with: qwen-vl {command} --continue-from {saved}{stream}"
    return (
        f"{head} (marked partial, not saved); write what you have to a file and continue it with "
        f"qwen-vl {command} --continue-from FILE and the same request{stream}"
    )


def open_client(args: Any, console: Console, prepared: Any) -> tuple[Any, Any]:
    """The client for a call, and the raw-response recorder when ``--save-raw`` asks for one."""
    from ._common import make_client

    recorder = None
    http_client = None
    if getattr(args, "save_raw", False):
        from ._raw import RawRecorder

        recorder = RawRecorder()
        http_client = recorder.http_client()
    client = make_client(
        args, console, max_retries=prepared.max_retries, retry_backoff_s=prepared.retry_backoff_s, http_client=http_client
    )
    if http_client is not None:
        client_close = client.close

        def close() -> None:  # the injected httpx client is ours to close too
            try:
                client_close()
            finally:
                http_client.close()

        client.close = close  # type: ignore[method-assign]
    return client, recorder


def raw_extra(recorder: Any) -> dict[str, Any]:
    """``{"raw_response": ...}`` for the output document (empty without ``--save-raw``)."""
    if recorder is None:
        return {}
    return {"raw_response": recorder.value() if recorder.recorded else None}


def check_raw(args: Any) -> None:
    if getattr(args, "save_raw", False) and getattr(args, "no_save", False) and not getattr(args, "print_response", False):
        raise CLIError("--save-raw keeps the raw response in the result, but --no-save writes no result; add --print-response or drop one")
