"""The two servers the client benchmark runs against, each in a process of its own.

* ``canned``: :mod:`benchmarks.canned_server`, answers from pre-encoded bodies and does nothing
  else, so the client is the bottleneck;
* ``emulator``: ``python -m aioretell emulator``, the stateful Retell emulator. Before a run the
  benchmark creates, through the API, a chat agent and a chat (so ``chat.retrieve`` has a real
  id) and as many phone calls as a list page holds (so ``call.list`` returns a full page). Its
  concurrency limit is set far above anything the run reaches, so every create is a call that
  rings rather than one ended as ``concurrency_limit_reached``; calls ring and talk for 50 ms,
  so the listed calls have ended (the shape of a past call, full-size) before the first list.

A fresh emulator is started per operation: its list endpoint renders every stored call, so the
thousands of calls a create run leaves behind would make a later list run measure the server.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from benchmarks.canned_server import CannedServer, ChildServer

API_KEY = "key_bench"  # a dummy: the canned server only checks that a bearer token is present
CANNED_CHAT_ID = "chat_bench_000000000000000000000"
FROM_NUMBER = "+15550100001"
TO_NUMBER = "+15550100002"
TARGETS = ("canned", "emulator")
#: Far above the number of calls any run creates.
EMULATOR_CONCURRENCY_LIMIT = 1_000_000
#: How long an emulated call rings and then talks.
CALL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Target:
    """Where the clients send their requests, and the ids that exist there."""

    name: str
    base_url: str
    api_key: str
    chat_id: str


class EmulatorServer(ChildServer):
    """``python -m aioretell emulator`` on a free port, in a child process."""

    _LISTENING = re.compile(r"listening on http://[^\s:]+:(\d+)")

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "aioretell",
            "emulator",
            *("--port", "0"),
            *("--api-key", API_KEY),
            *("--concurrency-limit", str(EMULATOR_CONCURRENCY_LIMIT)),
            # Calls end at once: a listed call then has the same (ended) shape all run long.
            *("--ring-duration", str(CALL_SECONDS)),
            *("--call-duration", str(CALL_SECONDS)),
        ]

    def port_in(self, line: str) -> int | None:
        match = self._LISTENING.search(line)
        return int(match.group(1)) if match else None


async def _prepare_emulator(base_url: str, calls: int) -> str:
    """Create a chat agent, a chat and ``calls`` phone calls; return the chat's id."""
    from aioretell import AsyncRetell

    async with AsyncRetell(api_key=API_KEY, base_url=base_url) as client:
        # The emulator refuses an engine naming an LLM it does not hold: use its built-in one.
        agent = await client.chat_agent.create(
            response_engine={"type": "retell-llm", "llm_id": "llm_emulator_default"},
            agent_name="bench",
        )
        chat = await client.chat.create(agent_id=agent.agent_id)
        await asyncio.gather(
            *(
                client.call.create_phone_call(from_number=FROM_NUMBER, to_number=TO_NUMBER)
                for _ in range(calls)
            )
        )
        await asyncio.sleep(4 * CALL_SECONDS)  # every seeded call has ended
        return chat.chat_id


@contextmanager
def running(name: str, *, page_size: int) -> Iterator[Target]:
    """Start the server ``name`` (one of :data:`TARGETS`) and yield it as a :class:`Target`."""
    if name == "canned":
        with CannedServer(page_size=page_size) as canned:
            yield Target(name, canned.base_url, API_KEY, CANNED_CHAT_ID)
    elif name == "emulator":
        with EmulatorServer() as emulator:
            chat_id = asyncio.run(_prepare_emulator(emulator.base_url, page_size))
            yield Target(name, emulator.base_url, API_KEY, chat_id)
    else:
        raise ValueError(f"target must be one of {TARGETS}, got {name!r}")
