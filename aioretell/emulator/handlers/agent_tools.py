"""Trying agents out: the playground completion and the tools of an agent's MCP servers."""

from __future__ import annotations

from ..catalog import MCP_TOOLS
from ..registry import ApiError, Reply, Request, handles
from .agent_versions import find_agent
from .chats import agent_reply


@handles("getMCPTools")
def get_mcp_tools(req: Request) -> Reply:
    """Every MCP server offers the same catalogue of tools (no server is contacted)."""
    find_agent(req.state, req.path["agent_id"])
    return Reply(200, list(MCP_TOOLS))


@handles("agentPlaygroundCompletion")
def playground_completion(req: Request) -> Reply:
    """The agent answers the conversation's last user message, as it does in chats."""
    find_agent(req.state, req.path["agent_id"])
    messages = req.body["messages"]
    user_turns = [m for m in messages if m["role"] == "user"]
    if not user_turns:
        raise ApiError(400, "messages must contain a user message to answer")
    content = agent_reply(len(user_turns), user_turns[-1].get("content", ""))
    answer = {
        "message_id": req.state.new_id("msg_"),
        "role": "agent",
        "content": content,
        "created_timestamp": req.state.now_ms(),
    }
    out = {"messages": [answer], "call_ended": False}
    for name in ("current_state", "current_node_id", "dynamic_variables"):
        if name in req.body:
            out[name] = req.body[name]
    return Reply(200, out)
