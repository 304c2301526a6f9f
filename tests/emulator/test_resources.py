"""Rules of the table-driven resources beyond plain CRUD, over raw HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from aioretell._operation_table import OPERATIONS
from aioretell.emulator import Emulator, ManualClock
from aioretell.emulator.registry import HANDLERS
from aioretell.emulator.state import DEFAULT_LLM_ID

ENGINE = {"type": "retell-llm", "llm_id": DEFAULT_LLM_ID}


async def _call(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, path, **kwargs) as resp:
        body = await resp.read()
        return resp.status, (await resp.json() if body else None)


def test_every_operation_has_a_handler() -> None:
    assert set(OPERATIONS) <= set(HANDLERS)


async def test_phone_number_ids_arrive_url_encoded(http: aiohttp.ClientSession) -> None:
    status, number = await _call(
        http, "POST", "/create-phone-number", json={"phone_number": "+14155550100"}
    )
    assert status == 201
    assert number["phone_number_pretty"] == "+1 (415) 555-0100"
    status, got = await _call(http, "GET", "/get-phone-number/%2B14155550100")
    assert (status, got["phone_number"]) == (200, "+14155550100")
    status, _ = await _call(
        http, "PATCH", "/update-phone-number/%2B14155550100", json={"nickname": "Desk"}
    )
    assert status == 200
    status, _ = await _call(
        http, "POST", "/create-phone-number", json={"phone_number": "+14155550100"}
    )
    assert status == 400  # already exists
    status, _ = await _call(http, "DELETE", "/delete-phone-number/%2B14155550100")
    assert status == 204
    status, _ = await _call(http, "GET", "/get-phone-number/%2B14155550100")
    assert status == 404


async def test_import_checks_e164_unless_told_not_to(http: aiohttp.ClientSession) -> None:
    body = {"phone_number": "4155550100", "termination_uri": "trunk.example.com"}
    status, _ = await _call(http, "POST", "/import-phone-number", json=body)
    assert status == 400
    body["ignore_e164_validation"] = True
    status, number = await _call(http, "POST", "/import-phone-number", json=body)
    assert status == 201
    assert number["phone_number_type"] == "custom"
    assert number["sip_outbound_trunk_config"]["termination_uri"] == "trunk.example.com"


async def test_agent_versions(http: aiohttp.ClientSession) -> None:
    create = {"response_engine": ENGINE, "voice_id": "11labs-Adrian", "agent_name": "v0"}
    _, agent = await _call(http, "POST", "/create-agent", json=create)
    agent_id = agent["agent_id"]
    status, _ = await _call(
        http, "POST", f"/create-agent-version/{agent_id}", json={"base_version": 7}
    )
    assert status == 404
    status, draft = await _call(
        http, "POST", f"/create-agent-version/{agent_id}", json={"base_version": 0}
    )
    assert (status, draft["version"]) == (201, 1)
    await _call(http, "PATCH", f"/update-agent/{agent_id}", json={"agent_name": "v1"})
    _, old = await _call(http, "GET", f"/get-agent/{agent_id}", params={"version": "0"})
    _, new = await _call(http, "GET", f"/get-agent/{agent_id}")
    assert (old["agent_name"], new["agent_name"]) == ("v0", "v1")

    latest_published = {"version": "latest_published"}
    status, _ = await _call(http, "GET", f"/get-agent/{agent_id}", params=latest_published)
    assert status == 404
    status, _ = await _call(http, "POST", f"/publish-agent-version/{agent_id}", json={"version": 0})
    assert status == 200
    _, published = await _call(http, "GET", f"/get-agent/{agent_id}", params=latest_published)
    assert published["version"] == 0

    delete = f"/delete-agent-version/{agent_id}"
    status, _ = await _call(http, "DELETE", delete, params={"version": "1"})
    assert status == 400  # the draft
    status, _ = await _call(http, "DELETE", delete, params={"version": "0"})
    assert status == 204
    status, _ = await _call(http, "DELETE", delete)
    assert status == 400  # version is required


async def test_live_call_rules(http: aiohttp.ClientSession, clock: ManualClock) -> None:
    phone = {"from_number": "+14155550100", "to_number": "+14155550101"}
    _, call = await _call(http, "POST", "/v2/create-phone-call", json=phone)
    call_id = call["call_id"]
    status, _ = await _call(
        http, "POST", f"/v2/take-over-live-call/{call_id}", json={"participant_id": "p_1"}
    )
    assert status == 400  # nobody is listening
    status, _ = await _call(http, "PUT", f"/rerun-call-analysis/{call_id}")
    assert status == 400  # not ended yet
    override = {"fields_to_override": {"override_dynamic_variables": {"name": "Ada"}}}
    status, _ = await _call(http, "PATCH", f"/v2/update-live-call/{call_id}", json=override)
    assert status == 200
    _, got = await _call(http, "GET", f"/v2/get-call/{call_id}")
    assert got["retell_llm_dynamic_variables"] == {"name": "Ada"}
    clock.advance(60)
    status, body = await _call(http, "POST", f"/v2/listen-live-call/{call_id}")
    assert status == 400
    assert "not live" in body["message"]
    status, rerun = await _call(http, "PUT", f"/rerun-call-analysis/{call_id}")
    assert (status, rerun["call_status"]) == (201, "ended")


async def test_crm_and_contact_tags(http: aiohttp.ClientSession) -> None:
    status, _ = await _call(http, "POST", "/run-sync-job")
    assert status == 400  # no app configured
    status, _ = await _call(http, "POST", "/update-crm-config", json={"app_id": "app_missing"})
    assert status == 404
    tag = "ab" * 16
    config = {"contact_tags": [{"id": tag, "label": "gold"}]}
    status, _ = await _call(http, "POST", "/update-crm-config", json=config)
    assert status == 200
    contact = {"phone_number": "+14155550160", "contact_tag_ids": ["cd" * 16]}
    status, body = await _call(http, "POST", "/create-contact", json=contact)
    assert status == 400
    assert "tag" in body["message"]
    contact["contact_tag_ids"] = [tag]
    status, created = await _call(http, "POST", "/create-contact", json=contact)
    assert created["contact_tags"] == [{"id": tag, "label": "gold"}]
    status, _ = await _call(http, "POST", "/create-contact", json=contact)
    assert status == 400  # one contact per number
    status, _ = await _call(http, "POST", "/create-contact", json={"phone_number": "555"})
    assert status == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/get-mcp-tools/agent_emulator_default"),  # mcp_id is required
        ("GET", "/v2/list-batch-tests"),  # type is required
        ("GET", "/v2/list-test-case-definitions?type=retell-llm&limit=x"),
    ],
)
async def test_query_strings_are_validated(
    http: aiohttp.ClientSession, method: str, path: str
) -> None:
    status, body = await _call(http, method, path)
    assert status == 400
    assert body["message"].startswith("Invalid query parameters")


async def test_references_must_exist(http: aiohttp.ClientSession) -> None:
    batch = {"response_engine": ENGINE, "test_case_definition_ids": ["test_case_definition_x"]}
    status, _ = await _call(http, "POST", "/create-batch-test", json=batch)
    assert status == 400  # the spec lists neither 404 nor 422 for create-batch-test
    add = {"provider_voice_id": "cv_unknown", "voice_name": "Nope"}
    status, _ = await _call(http, "POST", "/add-community-voice", json=add)
    assert status == 404
    status, _ = await _call(http, "GET", "/v2/list-test-runs/test_batch_missing")
    assert status == 404
    messages = {"messages": [{"role": "user", "content": "hi"}]}
    status, _ = await _call(http, "POST", "/agent-playground-completion/agent_x", json=messages)
    assert status == 404


async def test_identity_is_metadata_only(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with http.get("/get-api-key-info") as resp:
        raw = await resp.read()
    assert resp.status == 200
    assert emu.config.api_key.encode() not in raw
