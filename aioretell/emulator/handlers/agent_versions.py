"""Versions of voice and chat agents (the version endpoints serve both kinds).

The agent record in ``state.agents`` / ``state.chat_agents`` is the newest version (the
draft); ``state.agent_versions`` keeps snapshots of the older ones. A new version starts as a
copy of a base version and becomes the draft.
"""

from __future__ import annotations

import copy

from ..crud import list_reply, touch
from ..registry import ApiError, Reply, Request, handles
from ..state import JSON, EmulatorState


def find_agent(state: EmulatorState, agent_id: str) -> tuple[dict[str, JSON], JSON]:
    """The store holding the voice or chat agent ``agent_id``, and its record; or 404."""
    for store in (state.agents, state.chat_agents):
        if agent_id in store:
            return store, store[agent_id]
    raise ApiError(404, f"Agent not found: {agent_id}")


def versions(state: EmulatorState, agent: JSON) -> dict[int, JSON]:
    """Every version of ``agent`` by number, oldest first."""
    older = state.agent_versions.get(agent["agent_id"], {})
    return {**older, agent["version"]: agent}


def version_of(state: EmulatorState, agent: JSON, wanted: str) -> JSON:
    """The version a ``version`` parameter names: a number, ``latest`` or ``latest_published``."""
    every = versions(state, agent)
    if wanted == "latest":
        return agent
    if wanted == "latest_published":
        published = [v for v in every.values() if v.get("is_published")]
        if published:
            return published[-1]
    elif wanted.isdigit() and int(wanted) in every:
        return every[int(wanted)]
    raise ApiError(404, f"Agent {agent['agent_id']} has no version {wanted}")


@handles("createAgentVersion")
def create_version(req: Request) -> Reply:
    state = req.state
    store, agent = find_agent(state, req.path["agent_id"])
    base = version_of(state, agent, str(req.body["base_version"]))
    number = max(versions(state, agent)) + 1
    state.agent_versions.setdefault(agent["agent_id"], {})[agent["version"]] = agent
    draft = copy.deepcopy(base)
    draft.update(version=number, base_version=base["version"], is_published=False)
    store[agent["agent_id"]] = touch(state, draft)
    return Reply(201, draft)


@handles("deleteAgentVersion")
def delete_version(req: Request) -> Reply:
    state = req.state
    _, agent = find_agent(state, req.path["agent_id"])
    number = int(req.query["version"])
    if number == agent["version"]:
        raise ApiError(400, "The newest version (the draft) cannot be deleted")
    older = state.agent_versions.get(agent["agent_id"], {})
    if number not in older:
        raise ApiError(404, f"Agent {agent['agent_id']} has no version {number}")
    del older[number]
    return Reply(204)


@handles("listAgentVersions")
def list_versions(req: Request) -> Reply:
    _, agent = find_agent(req.state, req.path["agent_id"])
    # The page cursor is the version number as text ("key" is dropped from the answer).
    items = [{**v, "key": str(n)} for n, v in versions(req.state, agent).items()]
    return list_reply(req, "listAgentVersions", items, "key")


@handles("publishAgentVersion")
def publish(req: Request) -> Reply:
    state = req.state
    _, agent = find_agent(state, req.path["agent_id"])
    version = version_of(state, agent, str(req.body["version"]))
    version["is_published"] = True
    for name in ("version_title", "version_description"):
        if name in req.body:
            version[name] = req.body[name]
    touch(state, version)
    return Reply(200)


@handles("repairAgent")
def repair(req: Request) -> Reply:
    """Nothing in the emulator breaks: repairing answers the version unchanged."""
    _, agent = find_agent(req.state, req.path["agent_id"])
    return Reply(200, version_of(req.state, agent, req.query.get("version", "latest")))
