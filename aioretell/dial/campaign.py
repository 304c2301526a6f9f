"""One run of a campaign: reconcile, dispatch and follow, with the pollers beside the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .._client import AsyncRetell
from .capacity import CapacityGate
from .journal import Journal
from .runner import DialOptions, Runner
from .watch import Watcher

#: Something to run beside the loop while it lasts (the live view), given the runner.
Sidecar = Callable[[Runner], Awaitable[None]]


async def run_campaign(
    client: AsyncRetell,
    journal: Journal,
    campaign_id: str,
    options: DialOptions,
    *,
    stop: asyncio.Event | None = None,
    poll_interval: float = 1.0,
    sidecar: Sidecar | None = None,
    gate: CapacityGate | None = None,
    on_reconcile: Callable[[int], None] | None = None,
) -> Runner:
    """Run until every row is terminal or ``stop`` is set; returns the runner (its stats).

    ``gate`` defaults to one reading ``get-concurrency`` every ``poll_interval`` seconds.
    """
    if gate is None:
        gate = CapacityGate(client.concurrency.retrieve, interval=poll_interval)
    runner = Runner(client, journal, campaign_id, options, gate)
    unknown = runner.load()
    watcher = Watcher(client, campaign_id, runner.on_end, interval=poll_interval)
    runner.follow.append(watcher.watch)
    for call_id in runner.created_calls():
        watcher.watch(call_id)
    background: list[Awaitable[None]] = [gate.run(), watcher.run()]
    if sidecar is not None:
        background.append(sidecar(runner))
    tasks = [asyncio.ensure_future(job) for job in background]
    try:
        if unknown:
            if on_reconcile is not None:
                on_reconcile(len(unknown))
            await runner.reconcile(unknown)
        await runner.run(stop or asyncio.Event())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return runner
