"""Every operation against the emulator over real sockets, through aioretell and retell-sdk.

The script is :data:`tests.scenarios.SCENARIO`: 113 (resource, method) rows reaching all 109
operations, written once and run through both clients (the same method and argument names).
Both raise on any non-2xx answer, so a finished run means every step passed; the assertions
below check the run covered everything, decoded into the declared types, and that the state
behaved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, get_args, get_origin

import msgspec
import pytest
import retell
from retell import AsyncRetell

import aioretell
from aioretell._operation_table import METHODS, OPERATIONS
from aioretell.emulator import Emulator
from tests.emulator.recording import Recorder
from tests.scenarios import CALLER, COVERED_ROWS, IMPORTED_NUMBER, SCENARIO, run_scenario


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def sdk(emu: Emulator, api_key: str, recorder: Recorder) -> AsyncIterator[AsyncRetell]:
    client = recorder.client(api_key, emu.base_url)
    try:
        yield client
    finally:
        await client.close()


NOT_FOUND = (retell.NotFoundError, aioretell.NotFoundError)


@pytest.fixture(params=["aioretell", "retell-sdk"])
async def client(
    request: pytest.FixtureRequest, emu: Emulator, api_key: str, recorder: Recorder
) -> AsyncIterator[Any]:
    """Each test below runs once per client, each time on a fresh emulator."""
    if request.param == "retell-sdk":
        sdk = recorder.client(api_key, emu.base_url)
        try:
            yield sdk
        finally:
            await sdk.close()
    else:
        async with aioretell.AsyncRetell(
            api_key=api_key, base_url=emu.base_url, max_retries=0
        ) as ours:
            yield ours


@pytest.fixture
async def results(client: Any) -> dict[str, Any]:
    return await run_scenario(client)


def test_the_scenario_covers_every_sdk_method() -> None:
    assert len(METHODS) == 113
    assert set(METHODS) == COVERED_ROWS


async def test_every_operation_answers_2xx(
    emu: Emulator, client: Any, recorder: Recorder, results: dict[str, Any]
) -> None:
    assert len(results) == len(SCENARIO)
    # One request per step (no retries), logged by the emulator in the same order as the steps.
    assert len(emu.requests) == len(SCENARIO)
    for (operation_id, _, _), step in zip(emu.requests, SCENARIO, strict=True):
        assert METHODS[step.row] == operation_id
    assert {operation_id for operation_id, _, _ in emu.requests} == set(OPERATIONS)
    assert len(OPERATIONS) == 109
    if isinstance(client, AsyncRetell):
        # The SDK's own view of each answer: its status and raw body.
        assert len(recorder.exchanges) == len(SCENARIO)
        for (_, method, path), exchange in zip(emu.requests, recorder.exchanges, strict=True):
            assert (exchange.method, exchange.path) == (method, path)
            assert 200 <= exchange.status < 300, (path, exchange.status, exchange.body)
    else:
        # aioretell decoded each answer into the type its operation declares.
        for step in SCENARIO:
            assert_declared_type(results[step.key], OPERATIONS[METHODS[step.row]].response_type)


def assert_declared_type(value: Any, declared: Any) -> None:
    if declared is None:
        assert value is None
    elif get_origin(declared) is list:
        (item,) = get_args(declared)
        assert isinstance(value, list) and value
        assert all(isinstance(v, item) for v in value)
    else:
        assert isinstance(declared, type) and issubclass(declared, msgspec.Struct)
        assert isinstance(value, declared), (type(value), declared)


async def test_updates_read_back(results: dict[str, Any]) -> None:
    assert results["agent.update"].agent_name == "Scenario agent (renamed)"
    assert results["llm.update"].general_prompt == "You book tables and take orders."
    assert results["conversation_flow_component.update"].name == "Greeting v2"
    assert results["phone_number.update"].nickname == "Reception"
    assert results["contact.update"].last_name == "Lovelace"
    assert results["contact.update"].contact_tags[0].label == "vip"
    assert results["tests.update_test_case_definition"].name == "Books a table for two"
    assert results["crm.get_config"].contact_memory_update_prompt.startswith("Note the caller")

    call = results["call.retrieve"]
    assert call.metadata == {"source": "updated"}
    assert call.call_status == "ended"
    assert call.disconnection_reason == "manual_stopped"
    chat = results["chat.retrieve"]
    assert chat.chat_status == "ended"
    assert chat.metadata == {"source": "updated"}


async def test_versions_and_sources(results: dict[str, Any]) -> None:
    assert results["agent.create_version"].version == 1
    versions = results["agent.list_versions"].items
    assert [(v.version, v.is_published) for v in versions] == [(1, True), (0, False)]
    assert results["agent.retrieve"].version == 0

    created = results["knowledge_base.create"].knowledge_base_sources
    assert [s.type for s in created] == ["text", "url", "document"]
    assert (created[2].filename, created[2].file_size) == ("menu.txt", 25)
    assert len(results["knowledge_base.add_sources"].knowledge_base_sources) == 5
    remaining = results["knowledge_base.delete_source"].knowledge_base_sources
    assert created[0].source_id not in {s.source_id for s in remaining}
    assert len(remaining) == 4

    clone = results["voice.clone"]
    assert clone.voice_name == "Cloned voice" and clone.provider == "elevenlabs"


async def test_lists_return_created_items(results: dict[str, Any]) -> None:
    def ids(page: Any, field: str) -> set[str]:
        items = page if isinstance(page, list) else page.items
        return {getattr(item, field) for item in items}

    assert results["agent.create"].agent_id in ids(results["agent.list"], "agent_id")
    assert results["llm.create"].llm_id in ids(results["llm.list"], "llm_id")
    kb_id = results["knowledge_base.create"].knowledge_base_id
    assert kb_id in ids(results["knowledge_base.list"], "knowledge_base_id")
    numbers = ids(results["phone_number.list"], "phone_number")
    assert {results["phone_number.create"].phone_number, IMPORTED_NUMBER} <= numbers
    assert results["contact.create"].contact_id in ids(results["contact.list"], "contact_id")
    assert "11labs-Adrian" in ids(results["voice.list"], "voice_id")
    calls = ids(results["call.list"], "call_id")
    assert results["call.create_phone_call"].call_id in calls
    conversations = ids(results["contact.list_conversations"], "call_id")
    assert results["call.create_phone_call"].call_id in conversations
    runs = results["tests.list_test_runs"].items
    assert [r.status for r in runs] == ["pass"]


async def test_jobs_and_imports(emu: Emulator, results: dict[str, Any]) -> None:
    imported = results["contact.get_import"]
    assert (imported.status, imported.succeeded, imported.failed) == ("idle", 2, 0)
    phones = {c["phone_number"] for c in emu.state.store("contacts").values()}
    assert phones == {"+14155550104", "+14155550105"}  # the created contact was deleted
    assert results["crm.get_sync_job_status"].status == "idle"


async def test_deleted_objects_404(client: Any, results: dict[str, Any]) -> None:
    with pytest.raises(NOT_FOUND):
        await client.agent.retrieve(results["agent.create"].agent_id)
    with pytest.raises(NOT_FOUND):
        await client.contact.get(results["contact.create"].contact_id)
    with pytest.raises(NOT_FOUND):
        await client.contact.get_by_phone(CALLER)
    with pytest.raises(NOT_FOUND):
        await client.phone_number.retrieve(IMPORTED_NUMBER)
    with pytest.raises(NOT_FOUND):
        await client.knowledge_base.retrieve(results["knowledge_base.create"].knowledge_base_id)
    with pytest.raises(NOT_FOUND):
        definition = results["tests.create_test_case_definition"]
        await client.tests.get_test_case_definition(definition.test_case_definition_id)
    # What was not deleted is still there.
    kept = await client.phone_number.retrieve(results["phone_number.create"].phone_number)
    assert kept.nickname == "Reception"


async def test_identity_never_echoes_the_key(
    api_key: str, sdk: AsyncRetell, recorder: Recorder
) -> None:
    """Checked on the raw bodies the SDK recorded (the same answers aioretell decodes)."""
    results = await run_scenario(sdk)
    assert results["identity.retrieve"].org_id
    assert len(recorder.exchanges) == len(SCENARIO)
    assert all(api_key.encode() not in exchange.body for exchange in recorder.exchanges)
    imported = next(e for e in recorder.exchanges if e.path == "/import-phone-number")
    assert b"not-a-real-password" not in imported.body
