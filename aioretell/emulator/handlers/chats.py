"""Chats: create (API and SMS), completions, read, list, update, end, delete."""

from __future__ import annotations

from ..listing import list_records
from ..registry import ApiError, Reply, Request, found, handles
from ..render import chat_view, render_chat
from ..state import DEFAULT_CHAT_AGENT_ID, ChatRecord
from ._shared import session_fields

SMS_GREETING = "Hi! This is an emulated Retell agent texting you."


def agent_reply(user_turn: int, content: str) -> str:
    """The agent's deterministic answer to the ``user_turn``-th user message (from 1)."""
    # Quoted as prose, the same way whatever the message holds (repr switched quote styles).
    return f'Reply {user_turn}: you said "{content}".'


@handles("createChat", shaped=True)
def create_chat(req: Request) -> Reply:
    agent = found(req.state.chat_agents, req.body["agent_id"], "Chat agent")
    chat = req.state.create_chat(agent, "api_chat", **session_fields(req.body))
    return Reply(201, render_chat(chat))


@handles("createSmsChat", shaped=True)
def create_sms_chat(req: Request) -> Reply:
    agent_id = req.body.get("override_agent_id") or DEFAULT_CHAT_AGENT_ID
    agent = found(req.state.chat_agents, agent_id, "Chat agent")
    chat = req.state.create_chat(agent, "sms_chat", **session_fields(req.body))
    req.state.add_message(chat, "agent", SMS_GREETING)
    return Reply(200, render_chat(chat))


def _chat(req: Request, chat_id: str) -> ChatRecord:
    return found(req.state.chats, chat_id, "Chat")


@handles("createChatCompletion", shaped=True)
def create_chat_completion(req: Request) -> Reply:
    """Store the user message and answer it; the reply lists only the new agent messages."""
    chat = _chat(req, req.body["chat_id"])
    if chat.end_ms is not None:
        raise ApiError(400, f"Chat {chat.chat_id} has ended")
    content = req.body["content"]
    req.state.add_message(chat, "user", content)
    turn = sum(1 for m in chat.messages if m["role"] == "user")
    answer = req.state.add_message(chat, "agent", agent_reply(turn, content))
    return Reply(201, {"messages": [answer]})


@handles("getChat", shaped=True)
def get_chat(req: Request) -> Reply:
    return Reply(200, render_chat(_chat(req, req.path["chat_id"])))


@handles("endChat", shaped=True)
def end_chat(req: Request) -> Reply:
    req.state.end_chat(_chat(req, req.path["chat_id"]))
    return Reply(204)


@handles("updateChatMetadata", shaped=True)
def update_chat(req: Request) -> Reply:
    chat = _chat(req, req.path["chat_id"])
    if "metadata" in req.body:
        chat.metadata = req.body["metadata"]
    return Reply(200, render_chat(chat))


@handles("deleteChat", shaped=True)
def delete_chat(req: Request) -> Reply:
    del req.state.chats[_chat(req, req.path["chat_id"]).chat_id]
    return Reply(204)


@handles("listChats", shaped=True)
def list_chats(req: Request) -> Reply:
    body = list_records(
        req.body,
        req.state.chats.values(),
        "chat_id",
        item_id=_chat_id,
        view=chat_view,
        render=render_chat,
    )
    return Reply(200, body)


def _chat_id(chat: ChatRecord) -> str:
    return chat.chat_id
