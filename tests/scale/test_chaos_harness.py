"""The chaos harness's moving parts: its own Redis, worker signals by pid, and catching a
worker with a create in flight."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from aioretell.emulator import Emulator, EmulatorConfig
from benchmarks.chaos import CreateTracker, Fleet, LoopLag, PrivateRedis, kill_mid_create

KEY = "key_chaos_harness"

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


@needs_redis_server
async def test_private_redis_comes_back_empty_after_a_restart() -> None:
    from redis.asyncio import Redis

    async with PrivateRedis() as server:
        assert server.port != 6379

        async def read_after_write(write: bool) -> bytes | None:
            client = Redis.from_url(server.url)
            try:
                if write:
                    await client.set("k", "v")
                value: bytes | None = await client.get("k")
                return value
            finally:
                await client.aclose()

        assert await read_after_write(True) == b"v"
        first = server.pid
        await server.kill()
        assert not await server.ping()
        await server.start()
        assert server.pid != first
        assert await read_after_write(False) is None  # nothing was saved
        await read_after_write(True)
        await server.restart(down_s=0.1)
        assert server.restarts == 1
        assert await read_after_write(False) is None
    assert not await server.ping()


# Creates one after another, forever: each worker's numbers carry its index.
_CREATOR = """
import asyncio, sys, aiohttp
async def main(url, key, index):
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        n = 0
        while True:
            n += 1
            body = {"from_number": "+14155550100", "to_number": f"+1{index}{n:09d}"}
            async with http.post(url + "/v2/create-phone-call", json=body) as r:
                await r.read()
            await asyncio.sleep(0.02)
asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_a_worker_is_killed_while_the_emulator_holds_its_create(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key=KEY, call_duration_s=0.1, concurrency_limit=10_000)
    emulator = Emulator(config)
    tracker = CreateTracker()
    tracker.install(emulator)
    async with emulator:
        fleet = Fleet(
            lambda i: [sys.executable, "-c", _CREATOR, emulator.base_url, KEY, str(i + 1)],
            2,
            tmp_path,
        )
        await fleet.start()
        try:
            killed = await kill_mid_create(
                emulator, tracker, fleet, candidates=[1], hold_s=1.0, timeout=30
            )
            assert killed.index == 1
            assert await fleet.procs[1].wait() == -signal.SIGKILL
            assert fleet.alive() == [0]
            # Worker 0 was never signalled.
            assert [(i, name) for _, i, name in fleet.signals] == [(1, "SIGKILL")]
            # The held create is handled after its sender died: the call exists.
            for _ in range(200):
                if killed.create.status is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            await fleet.aclose()
    assert killed.create.status == 201
    number = killed.create.answer["to_number"]
    assert number.startswith("+12")  # worker 1's numbers
    assert emulator.state.calls[killed.create.answer["call_id"]].to_number == number
    assert number in emulator.state.dialed_numbers()
    # Counted when it arrived, made when the hold was over.
    call = emulator.state.calls[killed.create.answer["call_id"]]
    assert call.created_at - killed.create.arrived >= 1.0 - 0.01
    assert tracker.arrivals()[call.call_id] == killed.create.arrived


async def test_fleet_freeze_and_thaw_by_pid(tmp_path: Path) -> None:
    script = "import time\nwhile True: print(time.monotonic(), flush=True); time.sleep(0.05)"
    fleet = Fleet(lambda i: [sys.executable, "-c", script], 1, tmp_path)
    await fleet.start()
    try:
        await asyncio.sleep(0.5)
        fleet.freeze(0)
        await asyncio.sleep(0.1)
        frozen = fleet.stdout(0)
        await asyncio.sleep(0.5)
        assert fleet.stdout(0) == frozen  # nothing printed while stopped
        fleet.thaw(0)
        await asyncio.sleep(0.5)
        assert len(fleet.stdout(0)) > len(frozen)
        assert [name for *_, name in fleet.signals] == ["SIGSTOP", "SIGCONT"]
    finally:
        await fleet.aclose()
    assert fleet.procs[0].returncode == -signal.SIGKILL


async def test_loop_lag_sees_a_blocked_loop() -> None:
    async with LoopLag(every=0.01) as lag:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251 - blocking the loop on purpose
        await asyncio.sleep(0.05)
    assert lag.samples
    assert lag.quantile(1.0) >= 0.15  # woke at least that late: the loop was blocked
    assert lag.quantile(0.5) <= lag.quantile(0.99) <= lag.quantile(1.0)
