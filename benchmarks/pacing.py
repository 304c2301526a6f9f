"""Pacing against the emulator: fixed rate, adaptive rate, a shared 429 pause, faults at scale.

* fixed: ``rate_limit=40`` for 10 s against an emulator process with no limit: achieved rate
  and 429s;
* adaptive: an emulator process limiting at 50 requests/s, the client given no rate: achieved
  rate and the share of requests answered 429;
* pause: a scripted 429 with ``Retry-After: 1`` while 100 creates are queued; creates the client
  sent in the following second;
* faults: 10,000 ``create_phone_call`` through ``fan_out`` (``create_rate_limit=500``) with 5%
  injected faults (1% each of 429, 500, 503, reset before and after the request was read):
  outcomes accounted for and numbers dialed twice.

Run: ``python -m benchmarks.pacing [--quick]``. Numbers are reported, never judged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp

from aioretell import AsyncRetell, fan_out
from aioretell._exceptions import RequestInfo
from aioretell._sansio import HTTPRequest, HTTPResponse
from aioretell._transport import AiohttpTransport, PoolConfig

API_KEY = "key_bench_pacing"  # a dummy for the local emulator; never printed
FROM = "+14155550100"


@dataclass
class RecordingTransport(AiohttpTransport):
    """The real transport, noting when each request left and what status came back."""

    sends: list[tuple[float, str]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    answers: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(PoolConfig(limit=200))

    async def send(
        self, request: HTTPRequest, timeout: aiohttp.ClientTimeout, info: RequestInfo
    ) -> HTTPResponse:
        self.sends.append((time.monotonic(), info.operation_id))
        response = await super().send(request, timeout, info)
        self.statuses[response.status] += 1
        self.answers.append((time.monotonic(), response.status))
        return response


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "aioretell", "emulator", "--port", str(port)]
    command += ["--api-key", API_KEY, "--concurrency-limit", "1000000", *args]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        proc.stderr.readline()  # "listening on ..."
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()


async def _hammer(client: AsyncRetell, seconds: float, workers: int) -> int:
    deadline = time.monotonic() + seconds
    ok = 0

    async def worker() -> None:
        nonlocal ok
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                await client.concurrency.retrieve()
                ok += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return ok


async def fixed_rate(base_url: str, seconds: float) -> str:
    transport = RecordingTransport()
    async with AsyncRetell(
        api_key=API_KEY, base_url=base_url, rate_limit=40, transport=transport
    ) as client:
        ok = await _hammer(client, seconds, workers=20)
    await transport.aclose()
    times = [t for t, _ in transport.sends]
    rate = (len(times) - 1) / (times[-1] - times[0])  # between the first and the last send
    return (
        f"| fixed rate_limit=40, {seconds:.0f} s | {rate:.2f} req/s ({rate / 40:.1%} of 40) "
        f"| {ok} ok, {transport.statuses[429]} x 429 |"
    )


async def adaptive_rate(base_url: str, seconds: float, warmup: float = 2.0) -> str:
    transport = RecordingTransport()
    async with AsyncRetell(
        api_key=API_KEY, base_url=base_url, transport=transport, max_retries=5
    ) as client:
        started = time.monotonic()
        await _hammer(client, seconds, workers=16)
        final_rate = client._shared.pacer.requests.rate
    await transport.aclose()

    def share(since: float) -> tuple[float, int, int]:
        window = [status for t, status in transport.answers if t >= started + since]
        span = transport.answers[-1][0] - (started + since)
        ok = sum(1 for status in window if status < 400)
        return ok / span, window.count(429), len(window)

    whole, whole_429, whole_n = share(0.0)
    steady, steady_429, steady_n = share(warmup)
    return (
        f"| adaptive, server limit 50/s, {seconds:.0f} s | whole run {whole:.2f} ok/s "
        f"({whole / 50:.1%} of 50), {whole_429} of {whole_n} answered 429 "
        f"({whole_429 / whole_n:.2%}) | after {warmup:.0f} s: {steady:.2f} ok/s "
        f"({steady / 50:.1%}), {steady_429} of {steady_n} answered 429 "
        f"({steady_429 / steady_n:.2%}); rate settled at {final_rate or 0:.1f}/s |"
    )


async def shared_pause() -> str:
    from aioretell.emulator import Emulator, EmulatorConfig, Fault

    async with Emulator(EmulatorConfig(api_key=API_KEY, concurrency_limit=10**6)) as emu:
        emu.faults.script(
            "createPhoneCall", [Fault.ok()] * 20 + [Fault.status(429, retry_after=1.0)]
        )
        transport = RecordingTransport()
        limited_at: list[float] = []
        async with AsyncRetell(
            api_key=API_KEY,
            base_url=emu.base_url,
            create_rate_limit=50,
            transport=transport,
        ) as client:
            pacer = client._shared.pacer
            original = pacer.on_response

            def spy(op: object, turn: float, status: int, headers: object) -> None:
                if status == 429:
                    limited_at.append(time.monotonic())
                original(op, turn, status, headers)  # type: ignore[arg-type]

            pacer.on_response = spy  # type: ignore[method-assign]
            await asyncio.gather(
                *(
                    client.call.create_phone_call(from_number=FROM, to_number=f"+1415555{i:04d}")
                    for i in range(100)
                )
            )
        await transport.aclose()
    t429 = limited_at[0]
    during = sum(1 for t, op in transport.sends if op == "createPhoneCall" and t429 < t < t429 + 1)
    return (
        "| scripted 429 + Retry-After: 1, 100 creates queued | creates sent in the next second: "
        f"{during} | {len(transport.sends)} requests for 100 creates |"
    )


async def faults_at_scale(calls: int) -> str:
    from aioretell.emulator import Emulator, EmulatorConfig

    async with Emulator(EmulatorConfig(api_key=API_KEY, concurrency_limit=10**6)) as emu:
        emu.faults.set_probability(
            status_429=0.01,
            status_500=0.01,
            status_503=0.01,
            reset_before=0.01,
            reset_after=0.01,
            retry_after=0.2,
        )
        # A dialer knows its account's calls per second; random 429s then only pause it.
        async with AsyncRetell(
            api_key=API_KEY, base_url=emu.base_url, create_rate_limit=500
        ) as client:

            async def place(i: int) -> str:
                call = await client.call.create_phone_call(
                    from_number=FROM, to_number=f"+1415{i:07d}", metadata={"row": i}
                )
                return call.call_id

            errors: Counter[str] = Counter()
            seen: set[int] = set()
            started = time.monotonic()
            async with fan_out(place, range(calls), concurrency=100) as outcomes:
                async for outcome in outcomes:
                    seen.add(outcome.index)
                    if outcome.error is not None:
                        errors[type(outcome.error).__name__] += 1
            elapsed = time.monotonic() - started
        dialed = emu.state.dialed_numbers()
    twice = sum(1 for n in Counter(dialed).values() if n > 1)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none"
    return (
        f"| {calls:,} creates via fan_out, 5% faults | {len(seen):,} outcomes for {calls:,} "
        f"inputs in {elapsed:.1f} s; failed: {summary} | numbers dialed twice: {twice} "
        f"({len(dialed):,} dials) |"
    )


async def run(quick: bool) -> str:
    seconds = 3.0 if quick else 10.0
    lines = ["| scenario | result | detail |", "| --- | --- | --- |"]
    with emulator_process() as url:
        lines.append(await fixed_rate(url, seconds))
    with emulator_process("--rate-limit", "50") as url:
        lines.append(await adaptive_rate(url, seconds * 3))  # sustained: 30 s
    lines.append(await shared_pause())
    lines.append(await faults_at_scale(1_000 if quick else 10_000))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pacing", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.quick)))


if __name__ == "__main__":
    main()
