"""What ``aioretell.llm`` adds per event on top of a bare aiohttp WebSocket, over loopback.

``python -m benchmarks.llm_overhead`` (a few seconds; ``--quick`` for a smoke run).

Two servers on 127.0.0.1 in this process answer the same client, which sends one frame, waits
for the answer and sends the next:

* **bare aiohttp**: an ``aiohttp.web`` WebSocket handler that answers each frame with the same
  reply frames, pre-encoded: no decoding, no state, no tasks. The floor any server pays.
* **aioretell.llm**: :class:`~aioretell.llm.LLMServer` on aiohttp: decoding into typed events,
  the call state, the user's handler (for requests), the bounded send queue and writer task.

Events: ``ping_pong`` (one reply) and ``response_required`` answered by a handler yielding one
chunk (two replies: the chunk and the completing frame; timed to the second). Rounds alternate
between the servers so both see the same machine conditions; the report gives the p50 round
trip of each and their difference, the library's overhead per event (target: under 50 µs), plus
the sans-I/O part alone (decode, state, encode) timed without any socket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from aioretell.llm import (
    CallState,
    LLMConfig,
    LLMServer,
    LLMSession,
    PingPong,
    Response,
    ResponseRequired,
    Utterance,
    encode_retell_event,
    encode_server_event,
)
from benchmarks import sections

TARGET_US = 50.0
TRANSCRIPT = [
    Utterance(role="agent", content="Hi, this is Ada from the clinic. How can I help?"),
    Utterance(role="user", content="I'd like to move my appointment to Friday afternoon."),
]
CHUNK = "Sure, let me check Friday afternoon for you."


def ping_frame(i: int) -> str:
    return encode_retell_event(PingPong(timestamp=1_700_000_000_000 + i)).decode()


def request_frame(i: int) -> str:
    return encode_retell_event(ResponseRequired(response_id=i, transcript=TRANSCRIPT)).decode()


EVENTS: dict[str, tuple[Callable[[int], str], list[bytes]]] = {
    # event -> (the i-th frame the client sends, what the bare server answers each with)
    "ping_pong": (
        ping_frame,
        [b'{"response_type":"ping_pong","timestamp":1700000000000}'],
    ),
    "response_required": (
        request_frame,
        [
            encode_server_event(Response(response_id=1, content=CHUNK)),
            encode_server_event(Response(response_id=1, content="", content_complete=True)),
        ],
    ),
}


def bare_app() -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        replies = EVENTS[request.match_info["event"]][1]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                for reply in replies:
                    await ws.send_frame(reply, WSMsgType.TEXT)
        return ws

    app = web.Application()
    app.router.add_get("/bare/{event}/{call_id}", handler)
    return app


def llm_app() -> web.Application:
    # auto_reconnect off: the client sends the pings here, as fast as it can.
    llm = LLMServer(config=LLMConfig(auto_reconnect=False))

    @llm.on_response
    async def respond(request: ResponseRequired, session: LLMSession) -> AsyncIterator[str]:
        yield CHUNK

    return llm.app("/llm")


async def round_trips(
    ws: aiohttp.ClientWebSocketResponse,
    frame: Callable[[int], str],
    replies: int,
    start: int,
    n: int,
) -> list[float]:
    """``n`` sequential round trips; µs each, to the last reply."""
    out = []
    clock = time.perf_counter_ns
    for i in range(start, start + n):
        text = frame(i)
        t0 = clock()
        await ws.send_str(text)
        for _ in range(replies):
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                raise RuntimeError(f"server closed the socket: {msg.type!r} {msg.data!r}")
        out.append((clock() - t0) / 1000)
    return out


async def measure(rounds: int, per_round: int) -> dict[tuple[str, str], list[float]]:
    samples: dict[tuple[str, str], list[float]] = {}
    bare, lib = TestServer(bare_app(), host="127.0.0.1"), TestServer(llm_app(), host="127.0.0.1")
    await bare.start_server()
    await lib.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            for event, (frame, bare_replies) in EVENTS.items():
                async with (
                    http.ws_connect(bare.make_url(f"/bare/{event}/call_b")) as bare_ws,
                    http.ws_connect(lib.make_url("/llm/call_l")) as lib_ws,
                ):
                    for _ in range(2):  # config + begin message
                        await lib_ws.receive()
                    sides = [
                        ("bare aiohttp", bare_ws, len(bare_replies)),
                        ("aioretell.llm", lib_ws, len(EVENTS[event][1])),
                    ]
                    # Warm up both, then alternate rounds.
                    next_id = 1
                    for _name, ws, replies in sides:
                        await round_trips(ws, frame, replies, next_id, 200)
                        next_id += 200
                    for r in range(rounds):
                        for name, ws, replies in sides if r % 2 == 0 else sides[::-1]:
                            got = await round_trips(ws, frame, replies, next_id, per_round)
                            next_id += per_round
                            samples.setdefault((event, name), []).extend(got)
    finally:
        await lib.close()
        await bare.close()
    return samples


def sans_io_us() -> dict[str, float]:
    """µs per event of the protocol state alone: decode Retell's frame, encode the answer."""
    ping = encode_retell_event(PingPong(timestamp=1))
    request = encode_retell_event(ResponseRequired(response_id=1, transcript=TRANSCRIPT))
    state = CallState("call_bench")

    def one_ping() -> None:
        event = state.receive(ping)
        assert isinstance(event, PingPong)
        CallState.pong(event)

    counter = iter(range(2, 10**9))

    def one_request() -> None:
        rid = next(counter)
        state.receive(
            request.replace(b'"response_id":1,', b'"response_id":%d,' % rid)  # a new id each time
        )
        state.response(rid, CHUNK)
        state.response(rid, "", complete=True)

    out = {}
    for name, func in (("ping_pong", one_ping), ("response_required", one_request)):
        timer = timeit.Timer(func)
        loops, _ = timer.autorange()
        out[name] = min(timer.repeat(repeat=5, number=loops)) / loops * 1e6
    return out


def report(
    samples: dict[tuple[str, str], list[float]], sans_io: dict[str, float]
) -> tuple[bool, str]:
    """Whether the target is met, and the markdown table (also printed)."""
    lines = [
        "| event | bare aiohttp, µs | aioretell.llm, µs | overhead, µs | sans-I/O alone, µs |",
        "| --- | --- | --- | --- | --- |",
    ]
    ok = True
    for event in EVENTS:
        bare = statistics.median(samples[(event, "bare aiohttp")])
        lib = statistics.median(samples[(event, "aioretell.llm")])
        overhead = lib - bare
        ok = ok and overhead < TARGET_US
        lines.append(
            f"| {event} | {bare:.1f} | {lib:.1f} | {overhead:.1f} | {sans_io[event]:.1f} |"
        )
    n = len(next(iter(samples.values())))
    verdict = "met" if ok else "NOT met"
    lines += [
        "",
        f"p50 of loopback round trips, n={n} per cell; response_required = 1 chunk + the "
        f"completing frame. Target (overhead under {TARGET_US:g} µs at p50): {verdict}.",
    ]
    text = "\n".join(lines)
    print(text)
    return ok, text


def llm_test_200(calls: int) -> str:
    """``aioretell llm-test --calls N`` against the README's example server, as printed."""
    root = Path(__file__).resolve().parent.parent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(root / "examples" / "llm_echo_server.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"ws://127.0.0.1:{port}/llm-websocket"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.connect(("127.0.0.1", port))
                break
            time.sleep(0.1)
        run = subprocess.run(
            [sys.executable, "-m", "aioretell", "llm-test", url, "--calls", str(calls)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.terminate()
        server.wait()
    return (
        f"`aioretell llm-test ws://127.0.0.1:PORT/llm-websocket --calls {calls}` against "
        f"`examples/llm_echo_server.py` (exit status {run.returncode}):\n\n```\n"
        + run.stdout.strip()
        + "\n```"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.llm_overhead", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per server")
    parser.add_argument("--per-round", type=int, default=1500, help="round trips per round")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds of 200")
    args = parser.parse_args(argv)
    rounds, per_round = (2, 200) if args.quick else (args.rounds, args.per_round)
    if rounds < 1 or per_round < 1:
        parser.error("--rounds and --per-round must be at least 1")
    samples = asyncio.run(measure(rounds, per_round))
    ok, table = report(samples, sans_io_us())
    if not args.quick:
        conversations = llm_test_200(200)
        print(conversations)
        sections.write(
            "llm-overhead",
            "## Custom-LLM server: aioretell.llm\n\n`python -m benchmarks.llm_overhead`: the "
            "library's own cost per event against a bare aiohttp WebSocket echo of the same "
            "frames, side by side, on a machine shared with other work.\n\n"
            + table
            + "\n\n"
            + conversations,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
