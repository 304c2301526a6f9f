"""Connected apps (CRM and tool integrations): CRUD, tool schemas, usages, auth checks."""

from __future__ import annotations

import msgspec

from ..catalog import ORG_ID
from ..crud import Collection, list_reply, register
from ..registry import Reply, Request, handles
from ..state import JSON

APPS = register(
    Collection(
        "apps",
        "app_",
        "App",
        create="createApp",
        get="getApp",
        update="updateApp",
        delete="deleteApp",
        list="listApps",
        defaults={"org_id": ORG_ID, "connection_status": "connected"},
    )
)


@handles("getAppToolSchema")
def get_tool_schema(req: Request) -> Reply:
    """Every template resolves; its input schema merges the parameter schemas sent."""
    APPS.at(req)
    properties: JSON = {}
    required: list[str] = []
    for parameter in req.body.get("parameters") or []:
        properties.update(parameter["properties"])
        required += parameter.get("required") or []
    schema = {"type": "object", "properties": properties, "required": required}
    result = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    return Reply(200, {"complete": True, "input_schema": schema, "response_schema": result})


@handles("listAppUsages")
def list_usages(req: Request) -> Reply:
    """Voice agents whose configuration mentions the app's id (e.g. in a tool)."""
    app_id = APPS.at(req)["app_id"]
    needle = msgspec.json.encode(app_id)
    usages = [
        {
            "type": "agent",
            "agent_id": agent["agent_id"],
            "agent_name": agent.get("agent_name"),
            "agent_versions": [agent.get("version", 0)],
            "configured_timestamp": agent["last_modification_timestamp"],
        }
        for agent in req.state.agents.values()
        if needle in msgspec.json.encode(agent)
    ]
    return list_reply(req, "listAppUsages", usages, "agent_id")


@handles("testAppAuth")
def test_auth(req: Request) -> Reply:
    APPS.at(req)
    return Reply(200, {"success": True})
