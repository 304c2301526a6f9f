"""``aioretell demo``: an agent, a chat with two completions, then 100 concurrent phone calls.

With no API key it runs against an emulator started in-process, so it places no real calls. With
a key it runs the same tour against an ``aioretell emulator`` (``--base-url``), recognised by the
built-in LLM every emulator has; against any other server (the real API) it only reads the
account's concurrency: the demo never dials real numbers.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from contextlib import AsyncExitStack

from ._client import AsyncRetell
from ._exceptions import BadRequestError, NotFoundError, UnprocessableEntityError

DEMO_KEY = "key_demo_emulator"
FROM_NUMBER = "+14155550100"
#: The LLM every aioretell emulator starts with (``aioretell.emulator.state.DEFAULT_LLM_ID``);
#: the tour's chat agent uses it, and a server without it is not an emulator.
EMULATOR_LLM_ID = "llm_emulator_default"


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def run_demo(*, api_key: str | None, base_url: str | None, calls: int) -> None:
    """The tour. ``api_key`` defaults to ``$RETELL_API_KEY``; with neither, ``base_url`` must
    be ``None`` too and an emulator is started in-process."""
    key = api_key or os.environ.get("RETELL_API_KEY") or None
    if key is None and base_url is not None:
        raise ValueError("base_url needs an api_key (or $RETELL_API_KEY)")
    async with AsyncExitStack() as stack:
        if key is None:
            from .emulator import Emulator, EmulatorConfig

            emulator = await stack.enter_async_context(
                Emulator(EmulatorConfig(api_key=DEMO_KEY, concurrency_limit=max(20, calls)))
            )
            key, base_url = DEMO_KEY, emulator.base_url
            print(f"No RETELL_API_KEY: using a Retell emulator started in-process at {base_url}")
        client = await stack.enter_async_context(
            AsyncRetell(api_key=key, base_url=base_url, connection_limit=max(100, calls))
        )
        if key != DEMO_KEY:
            limits = await client.concurrency.retrieve()
            print(
                f"Connected to {client.base_url}: {limits.current_concurrency} of "
                f"{limits.concurrency_limit} concurrent calls in use."
            )
            if not await _is_emulator(client):
                print(
                    "This server is not an aioretell emulator (it has no "
                    f"{EMULATOR_LLM_ID}), so the demo stops here: it never places real calls. "
                    "Run it with no key for an in-process emulator, or with --base-url of an "
                    "'aioretell emulator' and its --api-key, for the whole tour."
                )
                return
            print("It is an aioretell emulator: running the tour there.")
        await _chat_demo(client)
        await _dial_demo(client, calls)


async def _is_emulator(client: AsyncRetell) -> bool:
    """Whether the server has the emulator's built-in LLM (one read; nothing is created)."""
    try:
        await client.llm.retrieve(EMULATOR_LLM_ID)
    except (NotFoundError, BadRequestError, UnprocessableEntityError):
        return False
    return True


async def _chat_demo(client: AsyncRetell) -> None:
    agent = await client.chat_agent.create(
        response_engine={"type": "retell-llm", "llm_id": EMULATOR_LLM_ID},
        agent_name="Jarvis",
    )
    print(f"Created chat agent {agent.agent_id} ({agent.agent_name})")
    chat = await client.chat.create(agent_id=agent.agent_id)
    for text in ("Hi, I'd like to book a table.", "Tomorrow at seven, please."):
        reply = await client.chat.create_chat_completion(chat_id=chat.chat_id, content=text)
        answer = " ".join(m.content or "" for m in reply.messages)
        print(f"  user:  {text}\n  agent: {answer}")
    await client.chat.end(chat.chat_id)
    ended = await client.chat.retrieve(chat.chat_id)
    print(f"Chat {ended.chat_id} is {ended.chat_status}")


async def _dial_demo(client: AsyncRetell, calls: int) -> None:
    latencies: list[float] = []

    async def dial(i: int) -> str:
        started = time.perf_counter()
        call = await client.call.create_phone_call(
            from_number=FROM_NUMBER,
            to_number=f"+1415555{i:04d}",
            metadata={"demo_row": i},
            retell_llm_dynamic_variables={"customer_name": f"Customer {i}"},
        )
        latencies.append(time.perf_counter() - started)
        return call.call_id

    started = time.perf_counter()
    call_ids = await asyncio.gather(*(dial(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"Placed {len(set(call_ids))} calls concurrently in {elapsed:.2f} s "
        f"({len(call_ids) / elapsed:.0f} calls/s)"
    )
    print(
        "create_phone_call latency: "
        f"p50 {statistics.median(ms):.1f} ms, p90 {_percentile(ms, 0.9):.1f} ms, "
        f"p99 {_percentile(ms, 0.99):.1f} ms, max {ms[-1]:.1f} ms"
    )
    limits = await client.concurrency.retrieve()
    print(f"Account concurrency now: {limits.current_concurrency} of {limits.concurrency_limit}")
