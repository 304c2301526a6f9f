"""One run of a campaign: reconcile, dispatch and follow (polls or webhooks) beside the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .._client import AsyncRetell
from .capacity import CapacityGate
from .journal import Journal
from .listen import WebhookFollower, reconcile_poll
from .runner import DialOptions, Runner
from .watch import CallEnd, Watcher

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
    follower: WebhookFollower | None = None,
    reconcile_interval: float = 30.0,
    reconcile_idle_s: float = 5.0,
    watchers: list[Watcher] | None = None,
) -> Runner:
    """Run until every row is terminal or ``stop`` is set; returns the runner (its stats).

    ``gate`` defaults to one reading ``get-concurrency`` every ``poll_interval`` seconds.

    Call ends are learnt by polling list-calls every ``poll_interval`` seconds, or, given a
    started ``follower``, from its webhooks, with list-calls polled only as a safety net (see
    :func:`~aioretell.dial.listen.reconcile_poll` for ``reconcile_interval`` and
    ``reconcile_idle_s``). The :class:`Watcher` used is appended to ``watchers`` (its
    ``requests`` and ``caught`` counters).
    """
    if gate is None:
        gate = CapacityGate(client.concurrency.retrieve, interval=poll_interval)
    runner = Runner(client, journal, campaign_id, options, gate)
    unknown = runner.load()
    interval = poll_interval if follower is None else reconcile_interval
    watcher = Watcher(client, campaign_id, runner.on_end, interval=interval)
    if watchers is not None:
        watchers.append(watcher)
    runner.follow.append(watcher.watch)
    runner.unfollow.append(watcher.forget)
    open_at_start = runner.created_calls()
    for call_id in open_at_start:
        watcher.watch(call_id)
    following: Awaitable[None]
    if follower is None:
        following = watcher.run()
    else:

        def from_webhook(end: CallEnd) -> bool:
            return runner.on_end(end, via="webhook")

        runner.follow.append(follower.follow)
        for call_id in open_at_start:
            follower.follow(call_id)
        follower.attach(from_webhook)
        following = reconcile_poll(
            watcher,
            follower,
            lambda: runner.only_open_calls,
            interval=reconcile_interval,
            idle_s=reconcile_idle_s,
            # Calls left open by an earlier run may have ended while nobody listened.
            poll_first=bool(open_at_start),
        )
    background: list[Awaitable[None]] = [gate.run(), following]
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
        if follower is not None:
            follower.attach(None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return runner
