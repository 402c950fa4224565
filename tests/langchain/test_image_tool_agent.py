"""QwenVLImageTool inside a LangGraph agent: a text-only ChatQwenVL agent asks for a file outside the
allowed folders, gets the refusal as a ToolMessage, and goes on with an allowed one."""

from __future__ import annotations

import base64
import json

from tests.support.chat import Json, completion, make_model, png_bytes
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langchain_qwen_vl import ChatQwenVL, QwenVLImageTool

PHOTO = png_bytes(64, 64, (240, 240, 230))
FINAL = "The receipt in your folder totals 42.60 CNY; I was not allowed to open the other file."


def build(llm, tool, *, asynchronous: bool = False):
    """The classic tool loop: agent -> (tools -> agent)* -> end."""
    agent = llm.bind_tools([tool])

    def think(state: MessagesState) -> dict:
        return {"messages": [agent.invoke(state["messages"])]}

    async def athink(state: MessagesState) -> dict:
        return {"messages": [await agent.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", athink if asynchronous else think)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile()


def _script(dashscope, outside: str, inside: str) -> None:
    dashscope.script(
        # 1: the agent asks to look at a file outside the allowed folder
        Json(completion(tool_calls=[{"id": "call_out", "name": "look_at_image",
                                     "arguments": {"image": outside, "question": "What is the total?"}}])),
        # 2: after the refusal, it tries the file it was told about
        Json(completion(tool_calls=[{"id": "call_in", "name": "look_at_image",
                                     "arguments": {"image": inside, "question": "What is the total?"}}])),
        # 3: the vision model answers the tool
        Json(completion("The total is 42.60 CNY.", model="qwen3-vl-flash")),
        # 4: the agent's final answer
        Json(completion(FINAL)),
    )  # fmt: skip


def _check(dashscope, messages, allowed) -> None:
    refusal, answer = (m for m in messages if isinstance(m, ToolMessage))
    assert refusal.tool_call_id == "call_out" and refusal.status == "error"
    assert "outside the allowed directories" in refusal.content and str(allowed) in refusal.content
    assert answer.tool_call_id == "call_in" and answer.status == "success"
    assert answer.content == "The total is 42.60 CNY."
    assert isinstance(messages[-1], AIMessage) and messages[-1].content == FINAL

    agent1, agent2, vision, agent3 = (r.json for r in dashscope.chat_requests)
    assert [t["function"]["name"] for t in agent1["tools"]] == ["look_at_image"]
    params = agent1["tools"][0]["function"]["parameters"]
    assert set(params["properties"]) == {"image", "question"}
    # the refusal reached the agent model as the tool result; nothing was sent for the refused file
    assert agent2["messages"][-1] == {"role": "tool", "tool_call_id": "call_out", "content": refusal.content}
    assert vision["model"] == "qwen3-vl-flash" and "tools" not in vision
    url = vision["messages"][-1]["content"][0]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == PHOTO
    assert agent3["messages"][-1]["content"] == "The total is 42.60 CNY."
    for body in (agent1, agent2, agent3):  # the agent itself never saw an image
        assert "image_url" not in json.dumps(body)


def test_a_langgraph_agent_gets_the_refusal_and_continues(dashscope, tmp_path) -> None:
    allowed = tmp_path / "inbox"
    allowed.mkdir()
    (allowed / "receipt.png").write_bytes(PHOTO)
    (tmp_path / "private.png").write_bytes(PHOTO)
    _script(dashscope, str(tmp_path / "private.png"), str(allowed / "receipt.png"))
    tool = QwenVLImageTool(llm=make_model(dashscope, model="qwen3-vl-flash"), allowed_dirs=[allowed])

    state = build(make_model(dashscope, model="qwen3.5-plus", enable_thinking=False), tool).invoke(
        {"messages": [HumanMessage("What is the total of my receipt?")]}, {"recursion_limit": 10}
    )

    _check(dashscope, state["messages"], allowed)
    assert dashscope.pending == 0


async def test_the_agent_runs_async_too(dashscope, tmp_path, monkeypatch) -> None:
    def no_sync(*args, **kwargs):
        raise AssertionError("the sync path was used")

    monkeypatch.setattr(ChatQwenVL, "_generate", no_sync)  # the tool's _arun and the agent stay async
    allowed = tmp_path / "inbox"
    allowed.mkdir()
    (allowed / "receipt.png").write_bytes(PHOTO)
    _script(dashscope, "../../etc/passwd", str(allowed / "receipt.png"))
    tool = QwenVLImageTool(llm=make_model(dashscope, model="qwen3-vl-flash"), allowed_dirs=[allowed])
    llm = make_model(dashscope, model="qwen3.5-plus", enable_thinking=False)
    graph = build(llm, tool, asynchronous=True)
    state = await graph.ainvoke({"messages": [HumanMessage("Total?")]}, {"recursion_limit": 10})

    _check(dashscope, state["messages"], allowed)
