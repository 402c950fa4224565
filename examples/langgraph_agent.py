"""A LangGraph agent that looks at a photo of a receipt and calls a tool to convert its total.

    export DASHSCOPE_API_KEY=sk-...          # a Singapore key also needs DASHSCOPE_REGION=singapore
    python examples/langgraph_agent.py receipt.png
    python examples/langgraph_agent.py receipt.png "How much is the tip, in euros?" --model qwen3-vl-flash

The graph is the classic tool loop: the model node (ChatQwenVL with tools bound) either answers or
asks for tool calls; the tools node runs them and hands the results back to the model. The image is
a local file path inside an ordinary HumanMessage: ChatQwenVL reads, downscales and sends it.
Exit codes, as the qwen-vl command's: 0 answered, 2 bad arguments or input, 3 the API call failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langchain_qwen_vl import ChatQwenVL
from qwen_vl_core import DEFAULT_MODEL, QwenVLError
from qwen_vl_core.errors import ConfigurationError, InputValidationError

# Indicative rates for the demo (units of each currency per 1 US dollar).
USD_RATES = {"USD": 1.0, "CNY": 7.1, "EUR": 0.92, "GBP": 0.79, "JPY": 151.0, "SGD": 1.34, "HKD": 7.8}

SYSTEM = (
    "You read photos of receipts and invoices. Read amounts exactly as printed. "
    "Whenever money must be expressed in another currency, call convert_currency; never convert in your head."
)
DEFAULT_QUESTION = "What is the total on this receipt, in US dollars?"


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> str:
    """Convert an amount of money between currencies (ISO codes such as CNY, USD, EUR)."""
    src, dst = from_currency.upper(), to_currency.upper()
    unknown = [c for c in (src, dst) if c not in USD_RATES]
    if unknown:
        return f"Unknown currency {', '.join(unknown)}; known: {', '.join(sorted(USD_RATES))}"
    converted = amount / USD_RATES[src] * USD_RATES[dst]
    return f"{amount:.2f} {src} = {converted:.2f} {dst}"


TOOLS = [convert_currency]


def build_agent(llm: ChatQwenVL | None = None) -> Any:
    """The compiled graph: model -> (tools -> model)* -> end."""
    llm = llm or ChatQwenVL(model=DEFAULT_MODEL)
    model = llm.bind_tools(TOOLS)

    def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke([SystemMessage(SYSTEM), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    return graph.compile()


def ask(image: str | Path, question: str = DEFAULT_QUESTION, llm: ChatQwenVL | None = None) -> list[BaseMessage]:
    """Run the agent on one image; returns the whole conversation (the last message is the answer)."""
    message = HumanMessage(
        content=[
            {"type": "image", "url": str(image)},  # a local path works wherever a URL does
            {"type": "text", "text": question},
        ]
    )
    state = build_agent(llm).invoke({"messages": [message]}, {"recursion_limit": 10})
    return state["messages"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ask a LangGraph agent with Qwen-VL about a receipt photo.")
    parser.add_argument("image", help="path to an image file (PNG, JPEG, WEBP, ...)")
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--region", default=None, help="beijing (default), singapore, us or hongkong")
    parser.add_argument("--base-url", default=None, help="another endpoint (default: DASHSCOPE_BASE_URL, else the region's)")
    args = parser.parse_args(argv)
    if not Path(args.image).is_file():
        parser.error(f"no such image file: {args.image}")

    try:
        messages = ask(args.image, args.question, ChatQwenVL(model=args.model, region=args.region, base_url=args.base_url))
    except (InputValidationError, ConfigurationError) as exc:  # nothing was sent
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except QwenVLError as exc:  # the API call failed: exit 3, as the qwen-vl command does
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                print(f"[tool call] {call['name']}({call['args']})")
        elif message.type == "tool":
            print(f"[tool result] {message.content}")
    answer = messages[-1]
    print(answer.text)
    usage = answer.usage_metadata or {}
    details = usage.get("input_token_details", {})
    print(f"[usage] {usage.get('total_tokens', '?')} tokens in the last call, {details.get('image', '?')} of them image tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
