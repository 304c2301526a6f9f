"""One run of a campaign: check the account, then dispatch with its helpers beside the loop.

Every helper task (the capacity poller, the call follower, the lease heartbeat, the live view)
is owned by the run: if one dies, the run stops at once with its error
(:class:`~aioretell.dial.errors.BackgroundTaskError`, or the helper's own
:class:`~aioretell.dial.errors.CampaignError`); creates in flight are cancelled and their rows
stay ``dispatching``, to be looked up by the next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio

from .._client import AsyncRetell
from .._exceptions import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
)
from .._transport import Timeout
from ..redis_pacer import PacerUnavailableError
from ..types.concurrency import ConcurrencyRetrieveResponse
from .capacity import CapacityGate
from .errors import AccountError, BackgroundTaskError, CampaignError, UnreachableError
from .journal import Journal, JournalError
from .listen import WebhookFollower, reconcile_poll
from .runner import DialOptions, Runner, Stats
from .watch import CallEnd, Watcher

#: Something to run beside the loop while it lasts (the live view), given the runner.
Sidecar = Callable[[Runner], Awaitable[None]]

#: Seconds between two lease heartbeats (the lease is taken over ``LEASE_TTL_S`` after the
#: last one, or at once on this host when the holder's process is gone).
HEARTBEAT_S = 5.0
LEASE_TTL_S = 30.0
#: The start-up check: one quick retry, and an answer within seconds or a clear error.
PREFLIGHT_TIMEOUT = Timeout(connect=5.0, read=6.0, total=6.0)


async def preflight(client: AsyncRetell, agent_id: str | None) -> ConcurrencyRetrieveResponse:
    """Before the first create: the API answers, takes the key, and knows the agent.

    Returns the get-concurrency reading. Raises :class:`UnreachableError` or
    :class:`AccountError` with one line to show.
    """
    quick = client.with_options(timeout=PREFLIGHT_TIMEOUT, max_retries=1)
    try:
        reading = await quick.concurrency.retrieve()
    except (AuthenticationError, PermissionDeniedError) as exc:
        raise AccountError(f"Retell refused the API key ({exc})") from None
    except APIConnectionError as exc:
        raise UnreachableError(f"cannot reach {client.base_url}: {exc}") from None
    except PacerUnavailableError as exc:
        raise UnreachableError(str(exc)) from None
    except APIError as exc:
        raise UnreachableError(
            f"{client.base_url} did not answer get-concurrency as the Retell API does ({exc})"
        ) from None
    if agent_id:
        try:
            await quick.agent.retrieve(agent_id)
        except NotFoundError:
            raise AccountError(f"--agent-id {agent_id} is not an agent of this account") from None
        except APIError as exc:
            raise AccountError(f"could not check --agent-id {agent_id}: {exc}") from None
    return reading


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
    check_first: bool = True,
    heartbeat_s: float = HEARTBEAT_S,
) -> Runner:
    """Run until every row is terminal or ``stop`` is set; returns the runner (its stats).

    ``check_first``: :func:`preflight` before anything else. ``gate`` defaults to one reading
    ``get-concurrency`` every ``poll_interval`` seconds. The journal's lease (if this process
    holds it) is renewed every ``heartbeat_s`` seconds.

    Call ends are learnt by polling list-calls every ``poll_interval`` seconds, or, given a
    started ``follower``, from its webhooks, with list-calls polled only as a safety net (see
    :func:`~aioretell.dial.listen.reconcile_poll` for ``reconcile_interval`` and
    ``reconcile_idle_s``). The :class:`Watcher` used is appended to ``watchers`` (its
    ``requests`` and ``caught`` counters).

    Raises :class:`CampaignError` (the API unreachable or refusing the account, a helper task
    dead) or :class:`JournalError` (the lease lost), the journal consistent either way.
    """
    first_reading = await preflight(client, options.agent_id) if check_first else None
    stats = Stats()
    if gate is None:
        gate = CapacityGate(
            client.concurrency.retrieve, interval=poll_interval, on_error=stats.note_error
        )
    else:
        first_reading = None  # a gate of the caller's reads what it likes
    runner = Runner(client, journal, campaign_id, options, gate, stats=stats)
    unknown = await runner.load()
    if first_reading is not None:
        gate.apply(first_reading)
    interval = poll_interval if follower is None else reconcile_interval
    watcher = Watcher(
        client, campaign_id, runner.on_end, interval=interval, on_error=stats.note_error
    )
    if watchers is not None:
        watchers.append(watcher)

    async def watch(call_id: str) -> None:
        watcher.watch(call_id)

    runner.follow.append(watch)
    runner.unfollow.append(watcher.forget)
    open_at_start = runner.created_calls()
    for call_id in open_at_start:
        watcher.watch(call_id)
    following: Callable[[], Awaitable[None]]
    if follower is None:
        following = watcher.run
    else:

        async def from_webhook(end: CallEnd) -> bool:
            return await runner.on_end(end, via="webhook")

        runner.follow.append(follower.follow)
        for call_id in open_at_start:
            await follower.follow(call_id)
        follower.attach(from_webhook)

        async def following() -> None:
            await reconcile_poll(
                watcher,
                follower,
                lambda: runner.only_open_calls,
                interval=reconcile_interval,
                idle_s=reconcile_idle_s,
                # Calls left open by an earlier run may have ended while nobody listened.
                poll_first=bool(open_at_start),
            )

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(heartbeat_s)
            await journal.heartbeat()

    background: dict[str, Callable[[], Awaitable[None]]] = {
        "capacity poller (get-concurrency)": gate.run,
        "call follower": following,
        "journal lease heartbeat": heartbeat,
    }
    if sidecar is not None:
        background["live view"] = lambda: sidecar(runner)

    async def main() -> None:
        if unknown and on_reconcile is not None:
            on_reconcile(unknown)
        await runner.run(stop or asyncio.Event())

    try:
        await owned(main, background)
    finally:
        if follower is not None:
            follower.attach(None)
    return runner


async def owned(
    main: Callable[[], Awaitable[None]], background: dict[str, Callable[[], Awaitable[None]]]
) -> None:
    """Run ``main`` with ``background`` tasks beside it, until ``main`` returns.

    The first of them to raise ends all the others and is raised here: ``main``'s own error, a
    background task's :class:`CampaignError` or :class:`JournalError` as it is, anything else
    as :class:`BackgroundTaskError` naming the task. A background task that returns is done.
    """
    failures: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def guard(name: str, job: Callable[[], Awaitable[None]]) -> None:
            try:
                await job()
            except (CampaignError, JournalError) as exc:
                failures.append(exc)
                group.cancel_scope.cancel()
            except Exception as exc:  # noqa: BLE001 - any death ends the run, named
                error = BackgroundTaskError(name, exc)
                error.__cause__ = exc
                failures.append(error)
                group.cancel_scope.cancel()

        for name, job in background.items():
            group.start_soon(guard, name, job, name=f"dial: {name}")
        try:
            await main()
        except Exception as exc:  # noqa: BLE001 - raised below, after the helpers stop
            failures.append(exc)
        finally:
            group.cancel_scope.cancel()
    if failures:
        raise failures[0]
