"""Configuration records: voice agents, chat agents and Retell LLMs (in-memory CRUD)."""

from __future__ import annotations

from ..crud import Collection, register
from ..listing import match_filter, query_response
from ..registry import Reply, Request, handles
from ..state import JSON
from .agent_versions import version_of

#: A new agent or LLM starts as version 0, unpublished; the create body adds the rest.
_CONFIG_DEFAULTS = {"version": 0, "is_published": False}


def _versioned(c: Collection, get: str, delete: str) -> Collection:
    """Get and delete for an agent store: ``?version=`` reads a snapshot; delete drops them."""

    @handles(get)
    def get_agent(req: Request) -> Reply:
        version = req.query.get("version")
        record = c.at(req)
        return Reply(200, record if version is None else version_of(req.state, record, version))

    @handles(delete)
    def delete_agent(req: Request) -> Reply:
        record = c.at(req)
        c.remove(req.state, record)
        req.state.agent_versions.pop(record[c.id_field], None)
        return Reply(204)

    return c


AGENTS = _versioned(
    register(
        Collection(
            "agents",
            "agent_",
            "Agent",
            create="createAgent",
            update="updateAgent",
            defaults=_CONFIG_DEFAULTS,
        )
    ),
    get="getAgent",
    delete="deleteAgent",
)
CHAT_AGENTS = _versioned(
    register(
        Collection(
            "chat_agents",
            "agent_",
            "Chat agent",
            create="createChatAgent",
            update="updateChatAgent",
            defaults=_CONFIG_DEFAULTS,
        )
    ),
    get="getChatAgent",
    delete="deleteChatAgent",
)
# LLM versions are not modelled: any ``version`` of an LLM reads as its current one.
LLMS = register(
    Collection(
        "llms",
        "llm_",
        "Retell LLM",
        create="createRetellLLM",
        get="getRetellLLM",
        update="updateRetellLLM",
        delete="deleteRetellLLM",
        list="listRetellLLM",
        defaults=_CONFIG_DEFAULTS,
    )
)


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
