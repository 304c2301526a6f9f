"""Fault injection and rate limiting, as a client sees them over a real socket."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
import pytest

from aioretell.emulator import Emulator, EmulatorConfig, Fault, FaultInjector, ManualClock

PHONE = {"from_number": "+14155550100", "to_number": "+14155550101"}
DISCONNECTS = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


def no_server_errors(caplog: pytest.LogCaptureFixture) -> None:
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == [], [r.getMessage() for r in noisy]


async def disconnected(request: AbstractAsyncContextManager[aiohttp.ClientResponse]) -> None:
    """The server drops the connection instead of answering ``request``."""
    with pytest.raises(DISCONNECTS):
        async with request as resp:
            await resp.read()


async def test_status_fault_with_retry_after(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.script("createPhoneCall", [Fault.status(429, retry_after=1.0, retry_after_ms=250)])
    async with http.post("/v2/create-phone-call", json=PHONE) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert resp.headers["retry-after-ms"] == "250"
        assert resp.content_type == "application/json"
        assert (await resp.json())["status"] == "error"
    assert emu.state.calls == {}  # nothing happened
    async with http.post("/v2/create-phone-call", json=PHONE) as resp:  # script used up
        assert resp.status == 201


async def test_status_fault_bodies(emu: Emulator, http: aiohttp.ClientSession) -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    emu.faults.script("getConcurrency", [Fault.status(502, body=html), Fault.status(500, body=b"")])
    async with http.get("/get-concurrency") as resp:
        assert resp.status == 502
        assert resp.content_type == "text/html"
        assert await resp.read() == html
    async with http.get("/get-concurrency") as resp:
        assert resp.status == 500
        assert await resp.read() == b""


async def test_delay_then_normal(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.script("createPhoneCall", [Fault.delay(0.01), Fault.ok()])
    for _ in range(2):
        async with http.post("/v2/create-phone-call", json=PHONE) as resp:
            assert resp.status == 201
    assert len(emu.state.calls) == 2


async def test_reset_before_request_does_nothing(
    emu: Emulator, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.faults.script("createPhoneCall", [Fault.reset_before_request()])
    await disconnected(http.post("/v2/create-phone-call", json=PHONE))
    assert emu.state.calls == {}
    assert emu.state.dialed_numbers() == []
    async with http.post("/v2/create-phone-call", json=PHONE) as resp:  # the server is fine
        assert resp.status == 201
    no_server_errors(caplog)


async def test_reset_after_request_creates_the_call(
    emu: Emulator, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.faults.script("createPhoneCall", [Fault.reset_after_request()])
    await disconnected(http.post("/v2/create-phone-call", json=PHONE))
    [call] = emu.state.calls.values()
    assert call.to_number == PHONE["to_number"]
    assert emu.state.dialed_numbers() == [PHONE["to_number"]]
    no_server_errors(caplog)


async def test_reset_on_a_get_is_retried_once_by_aiohttp_itself(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # aiohttp's client repeats an idempotent method (GET, PUT, DELETE) once after a
    # disconnect, so a single reset on a GET goes unseen; two are needed to surface it.
    emu.faults.script("getConcurrency", [Fault.reset_after_request()])
    async with http.get("/get-concurrency") as resp:
        assert resp.status == 200
    emu.faults.script("getConcurrency", [Fault.reset_before_request()] * 2)
    await disconnected(http.get("/get-concurrency"))
    assert [r[0] for r in emu.requests] == ["getConcurrency"] * 4


async def test_malformed_body_after_acting(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.script("createPhoneCall", [Fault.malformed_body()])
    async with http.post("/v2/create-phone-call", json=PHONE) as resp:
        assert resp.status == 201
        assert resp.content_type == "application/json"
        raw = await resp.read()
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert len(emu.state.calls) == 1


async def test_random_faults_are_seeded(make_config: Callable[..., EmulatorConfig]) -> None:
    runs = []
    for _ in range(2):
        config = make_config(seed=7)
        async with Emulator(config) as emu:
            emu.faults.set_probability("getConcurrency", status_500=0.3, status_503=0.3)
            headers = {"Authorization": f"Bearer {config.api_key}"}
            async with aiohttp.ClientSession(emu.base_url, headers=headers) as http:
                statuses = []
                for _ in range(30):
                    async with http.get("/get-concurrency") as resp:
                        statuses.append(resp.status)
        runs.append(statuses)
    assert runs[0] == runs[1]
    assert {200, 500, 503} == set(runs[0])


async def test_global_probability_and_per_operation_override(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.set_probability(status_429=1.0, retry_after=2)
    emu.faults.set_probability("getConcurrency")  # all zero: this operation is spared
    async with http.get("/get-concurrency") as resp:
        assert resp.status == 200
    async with http.post("/v2/create-phone-call", json=PHONE) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"


async def test_rate_limit(make_config: Callable[..., EmulatorConfig], clock: ManualClock) -> None:
    config = make_config(rate_limit_rps=2.0)
    async with Emulator(config) as emu:
        headers = {"Authorization": f"Bearer {config.api_key}"}
        async with aiohttp.ClientSession(emu.base_url, headers=headers) as http:
            for _ in range(2):
                async with http.get("/get-concurrency") as resp:
                    assert resp.status == 200
            async with http.post("/v2/create-phone-call", json=PHONE) as resp:
                assert resp.status == 429
                assert resp.headers["Retry-After"] == "1"
                assert resp.headers["retry-after-ms"] == "500"
                assert (await resp.json())["status"] == "error"
            assert emu.state.calls == {}
            clock.advance(0.5)
            async with http.post("/v2/create-phone-call", json=PHONE) as resp:
                assert resp.status == 201


def test_fault_probabilities_must_make_sense() -> None:
    with pytest.raises(ValueError):
        FaultInjector().set_probability(status_500=0.7, reset_after=0.7)
