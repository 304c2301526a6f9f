"""``aioretell demo``: an agent, a chat with two completions, then 100 concurrent phone calls.

With no ``RETELL_API_KEY`` and no ``--base-url`` it runs against an emulator started in-process,
so it places no real calls. Against a real account it only reads the account's concurrency: the
demo never dials real numbers.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from contextlib import AsyncExitStack

from ._client import AsyncRetell

DEMO_KEY = "key_demo_emulator"
FROM_NUMBER = "+14155550100"


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def run_demo(*, api_key: str | None, base_url: str | None, calls: int) -> None:
    key = api_key or os.environ.get("RETELL_API_KEY")
    async with AsyncExitStack() as stack:
        if key is None and base_url is None:
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
                f"{limits.concurrency_limit} concurrent calls in use. The demo places no real "
                "calls; unset RETELL_API_KEY to run it against the emulator."
            )
            return
        await _chat_demo(client)
        await _dial_demo(client, calls)


async def _chat_demo(client: AsyncRetell) -> None:
    agent = await client.chat_agent.create(
        response_engine={"type": "retell-llm", "llm_id": "llm_emulator_default"},
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
