"""Run one call and show it: reasoning on stderr under a header, the answer on stdout.

With ``--print-response`` stdout is reserved for the JSON document: a streamed answer is shown
live on stderr instead, and a non-streamed one is not echoed (it is in the JSON).
"""

from __future__ import annotations

from typing import Any

from qwen_vl_core.types import ChatResult, StreamAccumulator

from ._common import EXIT_API, EXIT_OK, CLIError, Console

__all__ = ["Display", "run_call", "finish"]

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


def run_call(
    client: Any,
    prepared: Any,
    *,
    stream: bool,
    console: Console,
    print_response: bool,
) -> ChatResult:
    """``client.chat`` or ``client.stream`` (folded into one result), shown as it arrives."""
    if stream:
        display = Display(console, answer_to_stdout=not print_response)
        acc = StreamAccumulator()
        try:
            for delta in client.stream(prepared.messages, model=prepared.model, **prepared.options):
                acc.add(delta)
                display.reasoning(delta.reasoning)
                display.answer(delta.text)
        finally:
            display.finish()
        return acc.build()
    result = client.chat(prepared.messages, model=prepared.model, **prepared.options)
    display = Display(console, answer_to_stdout=True, enabled=not print_response)
    display.reasoning(result.reasoning)
    display.answer(result.text)
    display.finish()
    return result


def finish(result: ChatResult, console: Console, problem: str | None = None) -> int:
    """The exit code for a finished call: partial answers and unusable ones are API failures (3)."""
    if result.partial:
        raise CLIError("the server timed out and returned only part of the answer (saved, marked partial)", EXIT_API)
    if problem:
        raise CLIError(problem, EXIT_API)
    if result.finish_reason == "length":
        console.warn("the answer was cut off at max_tokens (finish_reason 'length')")
    return EXIT_OK
