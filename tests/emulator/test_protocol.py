"""Auth, validation, routing and error shapes."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from aioretell._operation import Operation, RetrySafety
from aioretell.emulator import Emulator, EmulatorConfig, create_app, serve

PHONE = {"from_number": "+14155550100", "to_number": "+14155550101"}


async def _json(resp: aiohttp.ClientResponse) -> Any:
    assert resp.content_type == "application/json"
    return await resp.json()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_missing_or_wrong_key_is_401_and_not_recorded(emu: Emulator, api_key: str) -> None:
    async with aiohttp.ClientSession(emu.base_url) as session:
        async with session.get("/get-concurrency") as resp:
            assert resp.status == 401
            assert (await _json(resp))["status"] == "error"
        wrong = "key_wrong_secret"
        async with session.get("/get-concurrency", headers=auth(wrong)) as resp:
            assert resp.status == 401
            text = await resp.text()
            assert wrong not in text and api_key not in text
        async with session.get("/get-concurrency", headers={"Authorization": api_key}) as resp:
            assert resp.status == 401
    assert emu.requests == []


async def test_requests_are_recorded_in_order(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with http.get("/get-concurrency") as resp:
        assert resp.status == 200
    async with http.get("/v2/get-call/call_missing") as resp:
        assert resp.status == 404
    assert emu.requests == [
        ("getConcurrency", "GET", "/get-concurrency"),
        ("getCall", "GET", "/v2/get-call/call_missing"),
    ]


async def test_missing_field_is_400_naming_it(http: aiohttp.ClientSession) -> None:
    async with http.post("/v2/create-phone-call", json={"from_number": "+14155550100"}) as resp:
        assert resp.status == 400
        body = await _json(resp)
    assert body["status"] == "error"
    assert "to_number" in body["message"]


async def test_mistyped_field_is_400_naming_it(http: aiohttp.ClientSession) -> None:
    async with http.post("/create-chat-completion", json={"chat_id": "c", "content": 5}) as resp:
        assert resp.status == 400
        body = await _json(resp)
    assert "content" in body["message"]


async def test_malformed_json_is_400(http: aiohttp.ClientSession) -> None:
    headers = {"Content-Type": "application/json"}
    async with http.post(
        "/v2/create-phone-call", data=b'{"from_number": ', headers=headers
    ) as resp:
        assert resp.status == 400
        assert "JSON" in (await _json(resp))["message"]


async def test_nothing_is_created_by_an_invalid_request(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.post("/v2/create-phone-call", json={"to_number": "+14155550101"}) as resp:
        assert resp.status == 400
    assert emu.state.calls == {}
    assert emu.state.dialed_numbers() == []


async def test_unknown_ids_are_404(http: aiohttp.ClientSession) -> None:
    for method, path in [
        ("GET", "/v2/get-call/call_nope"),
        ("POST", "/v2/stop-call/call_nope"),
        ("DELETE", "/v2/delete-call/call_nope"),
        ("GET", "/get-chat/chat_nope"),
        ("PATCH", "/end-chat/chat_nope"),
        ("GET", "/get-chat-agent/agent_nope"),
        ("GET", "/get-agent/agent_nope"),
        ("GET", "/get-retell-llm/llm_nope"),
    ]:
        async with http.request(method, path) as resp:
            assert resp.status == 404, path
            body = await _json(resp)
            assert body["status"] == "error"
            assert "not found" in body["message"]


async def test_unknown_route_and_method_answer_json(http: aiohttp.ClientSession) -> None:
    async with http.get("/no-such-endpoint") as resp:
        assert resp.status == 404
        assert (await _json(resp))["status"] == "error"
    async with http.get("/v2/create-phone-call") as resp:
        assert resp.status == 405
        assert (await _json(resp))["status"] == "error"


async def test_operation_without_handler_is_501(api_key: str) -> None:
    op = Operation("emulatorTestNoHandler", "GET", "/emulator-test", (), RetrySafety.SAFE)
    app = create_app(EmulatorConfig(api_key=api_key), {op.operation_id: op})
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/emulator-test", headers=auth(api_key))
        assert resp.status == 501
        assert "emulatorTestNoHandler" in (await resp.json())["message"]


async def test_create_returns_201_and_204_has_empty_body(http: aiohttp.ClientSession) -> None:
    async with http.post("/v2/create-phone-call", json=PHONE) as resp:
        assert resp.status == 201
        call_id = (await _json(resp))["call_id"]
    async with http.post(f"/v2/stop-call/{call_id}") as resp:
        assert resp.status == 204
        assert await resp.read() == b""


async def test_serve_runs_until_cancelled(capsys: pytest.CaptureFixture[str], api_key: str) -> None:
    task = asyncio.create_task(serve(EmulatorConfig(api_key=api_key)))
    printed = ""
    for _ in range(500):
        printed += capsys.readouterr().err
        if "listening on" in printed:
            break
        await asyncio.sleep(0.01)
    assert api_key not in printed
    url = printed.split("listening on", 1)[1].split()[0]
    async with (
        aiohttp.ClientSession(url, headers=auth(api_key)) as session,
        session.get("/get-concurrency") as resp,
    ):
        assert resp.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_config_repr_hides_the_key(api_key: str) -> None:
    assert api_key not in repr(EmulatorConfig(api_key=api_key))
