"""Body fields that name stored objects are refused when the object does not exist.

The status is the one the spec lists for the operation: 422 ("cannot find requested asset")
where it lists that, else 404, else 400.
"""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest

from aioretell._operation_table import OPERATIONS
from aioretell.emulator import Emulator, spec
from aioretell.emulator.references import REFERENCES
from aioretell.emulator.state import DEFAULT_AGENT_ID, DEFAULT_CHAT_AGENT_ID, DEFAULT_LLM_ID

PHONE = {"from_number": "+14155550100", "to_number": "+14155550101"}
LLM_ENGINE = {"type": "retell-llm", "llm_id": DEFAULT_LLM_ID}
MISSING_LLM = {"type": "retell-llm", "llm_id": "llm_missing"}
MISSING_FLOW = {"type": "conversation-flow", "conversation_flow_id": "conversation_flow_missing"}


async def _send(
    http: aiohttp.ClientSession, method: str, path: str, body: Any
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, path, json=body) as resp:
        return resp.status, await resp.json() if resp.status != 204 else {}


CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    # (method, path, body, status, what the message names)
    ("POST", "/v2/create-phone-call", {**PHONE, "override_agent_id": "agent_missing"}, 422,
     "agent_missing"),
    # A chat agent is no voice agent.
    ("POST", "/v2/create-phone-call", {**PHONE, "override_agent_id": DEFAULT_CHAT_AGENT_ID}, 422,
     DEFAULT_CHAT_AGENT_ID),
    ("POST", "/v2/create-phone-call",
     {**PHONE, "override_agent_id": DEFAULT_AGENT_ID, "override_agent_version": 7}, 422,
     "no version 7"),
    ("POST", "/v3/create-web-call", {"agent_id": "agent_missing"}, 422, "agent_missing"),
    ("POST", "/v2/register-phone-call", {"agent_id": "agent_missing"}, 422, "agent_missing"),
    ("POST", "/create-batch-call",
     {"from_number": "+14155550100",
      "tasks": [{"to_number": "+14155550101", "override_agent_id": "agent_missing"}]}, 422,
     "tasks[].override_agent_id"),
    ("POST", "/create-chat", {"agent_id": DEFAULT_AGENT_ID}, 422, DEFAULT_AGENT_ID),
    ("POST", "/create-chat",
     {"agent_id": DEFAULT_CHAT_AGENT_ID, "agent_version": "latest_published"}, 422,
     "no version latest_published"),
    ("POST", "/create-sms-chat", {**PHONE, "override_agent_id": "agent_missing"}, 422,
     "agent_missing"),
    ("POST", "/create-chat-completion", {"chat_id": "chat_missing", "content": "hi"}, 422,
     "chat_missing"),
    # create-chat-agent lists neither 422 nor 404: 400.
    ("POST", "/create-chat-agent", {"response_engine": MISSING_LLM}, 400, "llm_missing"),
    ("PATCH", f"/update-chat-agent/{DEFAULT_CHAT_AGENT_ID}", {"response_engine": MISSING_FLOW},
     422, "conversation_flow_missing"),
    ("POST", "/create-agent", {"response_engine": MISSING_LLM, "voice_id": "11labs-Adrian"}, 422,
     "llm_missing"),
    ("POST", "/create-agent", {"response_engine": LLM_ENGINE, "voice_id": "voice_missing"}, 422,
     "voice_missing"),
    ("PATCH", f"/update-agent/{DEFAULT_AGENT_ID}", {"fallback_voice_ids": ["voice_missing"]}, 422,
     "fallback_voice_ids[]"),
    ("POST", "/create-retell-llm", {"knowledge_base_ids": ["knowledge_base_missing"]}, 400,
     "knowledge_base_missing"),
    ("PATCH", f"/update-retell-llm/{DEFAULT_LLM_ID}",
     {"knowledge_base_ids": ["knowledge_base_missing"]}, 422, "knowledge_base_missing"),
    ("POST", "/create-phone-number", {"inbound_agents": [{"agent_id": "agent_missing",
                                                         "weight": 1}]}, 400, "agent_missing"),
    ("POST", "/create-test-case-definition",
     {"name": "t", "response_engine": MISSING_LLM, "user_prompt": "u", "metrics": ["m"]}, 400,
     "llm_missing"),
    ("POST", "/update-crm-config", {"app_id": "app_missing"}, 404, "app_missing"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "named"), CASES)
async def test_a_missing_reference_is_refused(
    emu: Emulator,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: dict[str, Any],
    status: int,
    named: str,
) -> None:
    before = _snapshot(emu)
    got, answer = await _send(http, method, path, body)
    assert got == status, answer
    assert answer["status"] == "error"
    assert named in answer["message"], answer["message"]
    # Nothing was created or changed: no call placed, no chat started, no record touched.
    assert emu.state.calls == {} and emu.state.chats == {}
    assert emu.state.dialed_numbers() == []
    assert _snapshot(emu) == before


def _snapshot(emu: Emulator) -> dict[str, Any]:
    """Every stored record, deep-copied (stores made empty on first look are left out)."""
    return {name: copy.deepcopy(store) for name, store in emu.state.records.items() if store}


async def test_existing_references_and_versions_are_taken(http: aiohttp.ClientSession) -> None:
    status, agent = await _send(
        http, "POST", "/create-agent", {"response_engine": LLM_ENGINE, "voice_id": "11labs-Maya"}
    )
    assert status == 201, agent
    status, _ = await _send(
        http, "POST", f"/create-agent-version/{agent['agent_id']}", {"base_version": 0}
    )
    assert status == 201
    for version in (0, 1, "latest"):
        body = {**PHONE, "override_agent_id": agent["agent_id"], "override_agent_version": version}
        status, call = await _send(http, "POST", "/v2/create-phone-call", body)
        assert status == 201, call
        assert call["agent_id"] == agent["agent_id"]
    form = aiohttp.FormData({"knowledge_base_name": "KB"}, default_to_multipart=True)
    async with http.post("/create-knowledge-base", data=form) as resp:
        assert resp.status == 201
        kb = await resp.json()
    body = {"knowledge_base_ids": [kb["knowledge_base_id"]]}
    status, llm = await _send(http, "POST", "/create-retell-llm", body)
    assert status == 201, llm
    assert llm["knowledge_base_ids"] == [kb["knowledge_base_id"]]


def _has_field(schema: Any, parts: list[str]) -> bool:
    """Whether the OpenAPI ``schema`` has the field at ``parts`` (through any member)."""
    schema = spec.resolve(schema)
    if not parts:
        return True
    if not isinstance(schema, dict):
        return False
    members = [*schema.get("oneOf", ()), *schema.get("anyOf", ())]
    if any(_has_field(member, parts) for member in members):
        return True
    name = parts[0].removesuffix("[]")
    properties, _ = spec.object_shape(schema)
    if name not in properties:
        return False
    field = spec.resolve(properties[name])
    if parts[0].endswith("[]"):
        field = field.get("items", {})
    return _has_field(field, parts[1:])


@pytest.mark.parametrize("operation_id", sorted(REFERENCES))
def test_every_listed_field_is_in_the_spec(operation_id: str) -> None:
    """A typo in the table would silently check nothing: each path names a spec field."""
    assert operation_id in OPERATIONS
    operation, _ = spec.operations()[operation_id]
    body = spec.body_schema(operation)
    for ref in REFERENCES[operation_id]:
        assert _has_field(body, ref.path.split(".")), (operation_id, ref.path)
        if ref.version is not None:
            holder = ref.path.split(".")[:-1]
            assert _has_field(body, [*holder, ref.version]), (operation_id, ref.version)


def test_the_refusal_status_comes_from_the_spec() -> None:
    assert spec.refusal_status("createPhoneCall") == 422
    assert spec.refusal_status("updateCrmConfig") == 404
    assert spec.refusal_status("createChatAgent") == 400
