"""Following a campaign's calls from Retell's webhooks instead of polling list-calls.

``aioretell dial --listen HOST:PORT`` serves a :class:`~aioretell.webhooks.WebhookReceiver` at
``http://HOST:PORT/retell-webhook``. Each signed ``call_ended`` (or ``call_analyzed``) event
about a call of this campaign (its metadata names the campaign) is applied to the journal the
way a poll would apply it: ended, requeued or redialled. The receiver drops redeliveries of an
event, and the runner ignores an end it has already applied, so duplicates change nothing.

Webhooks can be lost (a deploy, a network fault, Retell giving up its retries), so the
:class:`~aioretell.dial.watch.Watcher` still runs, slowly: a list-calls poll every
``interval`` seconds, one at start when an earlier run left calls open, and, once nothing is
left to dial and no call has ended or been created for ``idle_s`` seconds, polls that back off
from ``idle_s`` to ``interval``. Whatever a poll finds, a webhook did not deliver.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from .._exceptions import APIError
from .._serving import StartStop, http_url, serve_app
from ..redis_pacer import PacerUnavailableError
from ..webhooks import CallEvent, WebhookReceiver
from .reconcile import CAMPAIGN_KEY
from .watch import CallEnd, Watcher, call_end

WEBHOOK_PATH = "/retell-webhook"
#: Ends of calls not known yet (the event beat the create's answer), kept at most.
EARLY_LIMIT = 10_000


class ListenAddressError(ValueError):
    """``--listen`` is not ``HOST:PORT``."""


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:8765"``, ``"[::1]:8765"`` or ``"0.0.0.0:8765"`` into ``(host, port)``."""
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ListenAddressError(
            f"--listen {value!r} is not HOST:PORT (e.g. 127.0.0.1:8765 or 0.0.0.0:8765)"
        )
    return host, int(port_text)


class WebhookFollower(StartStop):
    """Serves the webhook endpoint and turns the campaign's call ends into ``sink`` calls.

    ``sink(end)`` answers whether the end was applied (see
    :meth:`aioretell.dial.runner.Runner.on_end`); it is attached by
    :func:`~aioretell.dial.campaign.run_campaign`. Counters: :attr:`received` (signed events
    about this campaign's calls, after deduplication), :attr:`applied` (ends they applied),
    :attr:`foreign` (events about other calls, ignored).
    """

    def __init__(
        self,
        api_key: str,
        campaign_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str = WEBHOOK_PATH,
    ) -> None:
        self.campaign_id = campaign_id
        self.host = host
        self.port = port
        self.path = path
        self.receiver = WebhookReceiver(api_key=api_key, shutdown_timeout_s=2.0)
        self.receiver.on("call_ended", "call_analyzed")(self._on_event)
        self.received = 0
        self.applied = 0
        self.foreign = 0
        #: ``time.monotonic()`` of the latest event received or call followed
        self.last_activity = time.monotonic()
        self._sink: Callable[[CallEnd], Awaitable[bool]] | None = None
        #: the first error applying an end raised (the run ends with it)
        self.failure: Exception | None = None
        self._followed: set[str] = set()
        #: hand every end of the campaign to the sink, followed or not (a shared campaign:
        #: the sink finds the call in the journal, whichever worker created it)
        self.follow_all = False
        self._early: OrderedDict[str, CallEnd] = OrderedDict()
        self._runner: web.AppRunner | None = None
        self._bound: tuple[str, int] | None = None

    # -- serving -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve; raises :class:`OSError` when the address cannot be used."""
        if self._runner is not None:
            raise RuntimeError("already listening")
        runner, host, port = await serve_app(self.receiver.app(self.path), self.host, self.port)
        self._runner = runner
        self._bound = (host, port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def url(self) -> str:
        """The endpoint as bound: ``http://HOST:PORT/retell-webhook`` (port 0 resolved)."""
        return self._url(local=False)

    @property
    def local_url(self) -> str:
        """:attr:`url` with a wildcard host (``0.0.0.0``, ``::``) replaced by loopback."""
        return self._url(local=True)

    def _url(self, *, local: bool) -> str:
        if self._bound is None:
            raise RuntimeError("not listening; start() first")
        host, port = self._bound
        if local and host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif local and host == "::":
            host = "::1"
        return http_url(host, port, self.path)

    # -- following ---------------------------------------------------------------------

    def attach(self, sink: Callable[[CallEnd], Awaitable[bool]] | None) -> None:
        """Send ends to ``sink`` from now on (``None``: keep them for a later sink)."""
        self._sink = sink

    async def follow(self, call_id: str) -> None:
        """``call_id`` was created: apply its end at once if its event came first."""
        self._followed.add(call_id)
        self.last_activity = time.monotonic()
        early = self._early.pop(call_id, None)
        if early is not None:
            await self._apply(early)

    async def _on_event(self, event: CallEvent) -> None:
        call = event.call
        metadata = call.metadata if isinstance(call.metadata, dict) else {}
        if metadata.get(CAMPAIGN_KEY) != self.campaign_id:
            self.foreign += 1
            return
        self.received += 1
        self.last_activity = time.monotonic()
        end = call_end(call)
        if end is None:
            return
        if (end.call_id not in self._followed and not self.follow_all) or self._sink is None:
            # The create's answer has not come back yet (or no run is attached): keep the
            # end until the call is followed.
            self._early[end.call_id] = end
            while len(self._early) > EARLY_LIMIT:
                self._early.popitem(last=False)
            return
        await self._apply(end)

    async def _apply(self, end: CallEnd) -> None:
        if self._sink is None:
            return
        try:
            applied = await self._sink(end)
        except Exception as exc:
            # Raised in the receiver's handler, where nobody owns it: kept for
            # reconcile_poll, the task that does, to end the run with it.
            if self.failure is None:
                self.failure = exc
            raise
        if applied:
            self.applied += 1


async def reconcile_poll(
    watcher: Watcher,
    follower: WebhookFollower,
    only_open_calls: Callable[[], bool],
    *,
    interval: float = 30.0,
    idle_s: float = 5.0,
    poll_first: bool = False,
) -> None:
    """The safety net beside the webhooks: list-calls polls for the ends that never came.

    A poll every ``interval`` seconds while calls are open; at once when ``poll_first``; and
    while ``only_open_calls()`` holds, one after ``idle_s`` seconds without activity (an event,
    a call created, a poll that found something), the wait doubling up to ``interval`` while
    polls find nothing. Runs until cancelled, or until applying an end from a webhook failed
    (that error is raised here, where the run owns it).
    """
    last_poll = time.monotonic() if not poll_first else float("-inf")
    quiet = 0  # idle polls in a row that found nothing
    tick = max(0.01, min(0.25, idle_s / 4, interval / 4))
    while True:
        if follower.failure is not None:
            raise follower.failure
        now = time.monotonic()
        due = False
        if watcher.watching:
            if now - last_poll >= interval:
                due = True
            elif only_open_calls():
                since = max(last_poll, follower.last_activity)
                due = now - since >= min(interval, idle_s * 2**quiet)
        if due:
            caught = watcher.caught
            try:
                await watcher.poll_once()
            except (APIError, PacerUnavailableError) as exc:
                watcher.failed(exc)
            last_poll = time.monotonic()
            quiet = 0 if watcher.caught > caught else min(quiet + 1, 16)
        if follower.last_activity > last_poll:
            quiet = 0
        await asyncio.sleep(tick)
