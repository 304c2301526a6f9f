"""Configuration records: voice agents, chat agents and Retell LLMs (in-memory CRUD)."""

from __future__ import annotations

from ..listing import match_filter, query_response
from ..registry import Reply, Request, found, handles
from ..state import JSON
from .agent_versions import version_of


def _crud(
    store: str, id_field: str, prefix: str, what: str, ops: tuple[str, str, str, str]
) -> None:
    """Register create / get / update / delete handlers over ``state.<store>``."""
    create_op, get_op, update_op, delete_op = ops

    @handles(create_op)
    def create(req: Request) -> Reply:
        record = req.state.create_config(getattr(req.state, store), id_field, prefix, req.body)
        return Reply(201, record)

    def record(req: Request) -> JSON:
        return found(getattr(req.state, store), req.path[id_field], what)

    @handles(get_op)
    def get(req: Request) -> Reply:
        version = req.query.get("version")
        # LLM versions are not modelled: any version of an LLM reads as its current one.
        if version is None or store == "llms":
            return Reply(200, record(req))
        return Reply(200, version_of(req.state, record(req), version))

    @handles(update_op)
    def update(req: Request) -> Reply:
        return Reply(200, req.state.update_config(record(req), req.body))

    @handles(delete_op)
    def delete(req: Request) -> Reply:
        record_id = record(req)[id_field]
        del getattr(req.state, store)[record_id]
        req.state.agent_versions.pop(record_id, None)  # an LLM id never has versions here
        return Reply(204)


for _spec in (
    (
        "agents",
        "agent_id",
        "agent_",
        "Agent",
        ("createAgent", "getAgent", "updateAgent", "deleteAgent"),
    ),
    (
        "chat_agents",
        "agent_id",
        "agent_",
        "Chat agent",
        ("createChatAgent", "getChatAgent", "updateChatAgent", "deleteChatAgent"),
    ),
    (
        "llms",
        "llm_id",
        "llm_",
        "Retell LLM",
        ("createRetellLLM", "getRetellLLM", "updateRetellLLM", "deleteRetellLLM"),
    ),
):
    _crud(*_spec)


def _list_item(agent: JSON, channel: str) -> JSON:
    return {
        "agent_id": agent["agent_id"],
        "agent_name": agent.get("agent_name") or "",
        "channel": channel,
        "user_modified_timestamp": agent["last_modification_timestamp"],
        "tags": {},
        # Not in the OpenAPI spec, but required by the official SDK's list item model.
        "is_suspended": False,
    }


# Shaped: conforming would drop ``is_suspended``, which the spec's types do not know.
@handles("listAgents", shaped=True)
def list_agents(req: Request) -> Reply:
    """Voice and chat agents together, by last modification; filters: channel, query."""
    state = req.state
    items = [_list_item(a, "voice") for a in state.agents.values()]
    items += [_list_item(a, "chat") for a in state.chat_agents.values()]
    items.sort(key=lambda item: item["user_modified_timestamp"])
    criteria = req.body.get("filter_criteria") or {}
    channel = criteria.get("channel")
    if channel:
        items = [i for i in items if match_filter(channel, i["channel"])]
    query = criteria.get("query")
    if query:
        needle = query.lower()
        items = [i for i in items if needle in i["agent_name"].lower() or query in i["agent_id"]]
    return Reply(200, query_response(req.query, items, "agent_id"))


@handles("listRetellLLM")
def list_llms(req: Request) -> Reply:
    return Reply(200, query_response(req.query, req.state.llms.values(), "llm_id"))
