"""An aiohttp.web endpoint that verifies, deduplicates and dispatches Retell webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from .._validation import resolve_api_key
from ._events import CHAT_EVENTS, WebhookEvent, WebhookPayloadError, parse_event
from ._signature import SIGNATURE_HEADER, verify
from ._store import DedupStore, MemoryDedupStore

__all__ = [
    "ANY",
    "ONCE_PER_SESSION",
    "DeadLetter",
    "Handler",
    "WebhookReceiver",
    "default_dedup_key",
]

logger = logging.getLogger("aioretell.webhooks")

#: An event handler: ``async def handle(event) -> None``.
Handler = Callable[[Any], Awaitable[object]]
HandlerT = TypeVar("HandlerT", bound=Handler)

#: Event types Retell sends at most once per call or chat.
ONCE_PER_SESSION = frozenset({"call_started", "call_ended", "call_analyzed"}) | CHAT_EVENTS

#: Register a handler for every event type, unknown ones included: ``receiver.on(ANY)``.
ANY = "*"


def default_dedup_key(event: WebhookEvent, body: bytes) -> str | None:
    """The key under which a delivery counts as already seen.

    - ``call_started``, ``call_ended``, ``call_analyzed`` and the chat events happen once per
      call or chat: ``"<event>:<call_id or chat_id>"``. A redelivery is caught even if Retell
      re-signs it or re-renders the payload.
    - Events that may repeat for one call (``transcript_updated``, the transfer events) and
      unknown events: ``"<event>:<id>:<sha256 of the raw body>"``, so only a byte-identical
      redelivery is a duplicate.

    The signature timestamp is deliberately not part of the key: a retry signed again at a
    later time would otherwise look new.
    """
    session = event.session_id
    if event.event in ONCE_PER_SESSION and session:
        return f"{event.event}:{session}"
    return f"{event.event}:{session or ''}:{hashlib.sha256(body).hexdigest()}"


@dataclass(frozen=True)
class DeadLetter:
    """A delivery that was accepted (answered 2xx) but not handled.

    ``event`` is ``None`` when a correctly signed body could not be decoded; ``handler`` is the
    handler that raised (or was cancelled at shutdown), ``None`` for a decode failure.
    """

    event: WebhookEvent | None
    body: bytes = field(repr=False)
    handler: Handler | None
    error: BaseException
    #: ``clock()`` seconds when the failure was recorded.
    at: float


def _name(handler: Handler) -> str:
    return str(getattr(handler, "__qualname__", None) or repr(handler))


class WebhookReceiver:
    """Receives Retell webhooks in an aiohttp.web application.

    Per delivery: verify ``X-Retell-Signature`` over the raw body (401 and nothing dispatched
    when it is missing, malformed, wrong or outside ``tolerance_s``), decode the event, claim its
    deduplication key in ``store`` (a duplicate is answered 200 and not dispatched), then answer
    204 at once and run the event's handlers in a background task. At most ``max_concurrency``
    events are handled at a time; beyond ``max_pending`` accepted-but-unfinished events a
    delivery is answered 503 (and its key released) so Retell retries it later.

    A handler that raises is logged on ``aioretell.webhooks`` with its traceback; the event is
    kept as a :class:`DeadLetter` in :attr:`dead_letters` (the latest ``dead_letter_limit``) and
    passed to ``on_dead_letter``, and the event's key is released, so a redelivery of it runs
    the handlers again. Other handlers of the same event still run.

    ``api_key`` defaults to ``$RETELL_API_KEY``; it is never logged nor shown in the repr.
    ``clock`` (seconds) checks signature freshness and the TTL of the default store.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        max_concurrency: int = 16,
        store: DedupStore | None = None,
        dedup_ttl_s: float = 24 * 3600.0,
        dedup_key: Callable[[WebhookEvent, bytes], str | None] = default_dedup_key,
        tolerance_s: float = 300.0,
        max_pending: int = 10_000,
        dead_letter_limit: int = 1000,
        on_dead_letter: Callable[[DeadLetter], object] | None = None,
        shutdown_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = resolve_api_key(api_key)
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if dedup_ttl_s <= 0:
            raise ValueError("dedup_ttl_s must be positive")
        self.__api_key = key
        self.max_concurrency = max_concurrency
        self.max_pending = max_pending
        self.tolerance_s = tolerance_s
        self.dedup_ttl_s = dedup_ttl_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.store: DedupStore = store if store is not None else MemoryDedupStore(clock=clock)
        self.dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_limit)
        self._dedup_key = dedup_key
        self._on_dead_letter = on_dead_letter
        self._clock = clock
        self._handlers: dict[str, list[Handler]] = {}
        # Made in the running loop on first use (a receiver may outlive one event loop).
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def __repr__(self) -> str:
        events = sorted(self._handlers)
        return (
            f"WebhookReceiver(events={events!r}, max_concurrency={self.max_concurrency}, "
            f"pending={len(self._tasks)})"
        )

    # -- registration -------------------------------------------------------------------

    def on(self, *events: str) -> Callable[[HandlerT], HandlerT]:
        """Decorator: run the async handler for each of ``events`` (``"*"``: every event).

        A handler receives a :class:`CallEvent`, :class:`TransferEvent`, :class:`ChatEvent` or
        :class:`UnknownEvent`; handlers of one event run one after another, in registration
        order (specific ones first, then ``"*"``).
        """
        if not events:
            raise TypeError("on() needs at least one event type, or '*' for all")

        def register(handler: HandlerT) -> HandlerT:
            for event in events:
                self.add_handler(event, handler)
            return handler

        return register

    def add_handler(self, event: str, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError("a handler must be an async callable")
        self._handlers.setdefault(event, []).append(handler)

    def handlers_for(self, event: str) -> list[Handler]:
        return [*self._handlers.get(event, ()), *self._handlers.get(ANY, ())]

    # -- aiohttp integration ------------------------------------------------------------

    def add_routes(self, app: web.Application, path: str = "/retell-webhook") -> None:
        """Serve ``POST path`` on ``app``; in-flight handlers finish (or are cancelled after
        ``shutdown_timeout_s``) when ``app`` cleans up."""
        app.router.add_post(path, self.handle)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)

    def app(
        self, path: str = "/retell-webhook", *, client_max_size: int = 32 * 1024**2
    ) -> web.Application:
        """A new application serving only the webhook route (bodies up to ``client_max_size``)."""
        application = web.Application(client_max_size=client_max_size)
        self.add_routes(application, path)
        return application

    async def _on_startup(self, _: web.Application) -> None:
        self._closing = False

    async def _on_cleanup(self, _: web.Application) -> None:
        await self.aclose()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The request handler (also usable directly in your own route)."""
        if self._closing:
            return web.Response(status=503, text="shutting down")
        body = await request.read()
        ok = verify(
            body,
            signature=request.headers.get(SIGNATURE_HEADER),
            api_key=self.__api_key,
            tolerance_s=self.tolerance_s,
            now_ms=int(self._clock() * 1000),
        )
        if not ok:
            logger.warning(
                "rejected a webhook from %s: missing, malformed, stale or wrong signature",
                request.remote,
            )
            return web.Response(status=401, text="invalid signature")
        try:
            event = parse_event(body)
        except WebhookPayloadError as exc:
            logger.error("a signed webhook could not be decoded: %s", exc)
            self._dead(DeadLetter(None, body, None, exc, self._clock()))
            return web.Response(status=400, text="undecodable event")
        key = self._dedup_key(event, body)
        if key is not None:
            try:
                claimed = await self.store.claim(key, self.dedup_ttl_s)
            except Exception as exc:  # noqa: BLE001 - whatever the store raised
                # A shared store that is down must not drop the event: 503 makes Retell retry.
                logger.error("webhook deduplication store failed (%s); answering 503", exc)
                return web.Response(status=503, text="deduplication store unavailable")
            if not claimed:
                logger.debug("duplicate %s for %s ignored", event.event, event.session_id)
                return web.Response(status=200)
        handlers = self.handlers_for(event.event)
        if not handlers:
            return web.Response(status=204)
        if len(self._tasks) >= self.max_pending:
            if key is not None:
                await self.store.release(key)
            logger.warning("%d webhook events pending; answering 503", len(self._tasks))
            return web.Response(status=503, text="too many pending events")
        self._spawn(event, body, key, handlers)
        return web.Response(status=204)

    # -- running handlers ---------------------------------------------------------------

    def _spawn(
        self, event: WebhookEvent, body: bytes, key: str | None, handlers: list[Handler]
    ) -> None:
        task = asyncio.create_task(
            self._run(event, body, key, handlers), name=f"aioretell-webhook-{event.event}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._loop = loop
        return self._semaphore

    async def _run(
        self, event: WebhookEvent, body: bytes, key: str | None, handlers: list[Handler]
    ) -> None:
        failed = False
        done = 0  # handlers finished, successfully or not
        try:
            async with self._slots():
                for handler in handlers:
                    try:
                        await handler(event)
                    except Exception as exc:
                        failed = True
                        logger.error(
                            "webhook handler %s failed on %s for %s; kept as a dead letter",
                            _name(handler),
                            event.event,
                            event.session_id,
                            exc_info=exc,
                        )
                        self._dead(DeadLetter(event, body, handler, exc, self._clock()))
                    done += 1
        except asyncio.CancelledError as exc:
            failed = True
            logger.warning(
                "webhook handling of %s for %s cancelled at shutdown; kept as a dead letter",
                event.event,
                event.session_id,
            )
            for handler in handlers[done:]:
                self._dead(DeadLetter(event, body, handler, exc, self._clock()))
            raise
        finally:
            if failed and key is not None:
                await self._release(key)

    async def _release(self, key: str) -> None:
        try:
            await self.store.release(key)
        except Exception:
            logger.exception("could not release a webhook deduplication key")

    def _dead(self, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)
        if self._on_dead_letter is not None:
            try:
                self._on_dead_letter(letter)
            except Exception:
                logger.exception("on_dead_letter callback failed")

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events accepted whose handlers have not finished."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every accepted event has been handled (including ones accepted meanwhile).

        Cancelling ``drain`` does not cancel the handlers.
        """
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self, timeout_s: float | None = None) -> None:
        """Stop accepting (503), wait up to ``timeout_s`` (default ``shutdown_timeout_s``) for
        in-flight handlers, then cancel the rest; cancelled events become dead letters."""
        self._closing = True
        if not self._tasks:
            return
        timeout = self.shutdown_timeout_s if timeout_s is None else timeout_s
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def replay(self, letter: DeadLetter) -> bool:
        """Run the handler of ``letter`` on its event again, in the background (see
        :meth:`drain`). No signature check, no deduplication; a new failure is a new dead
        letter. ``False`` (nothing run) for a letter without an event or handler.
        """
        if letter.event is None or letter.handler is None:
            return False
        self._spawn(letter.event, letter.body, None, [letter.handler])
        return True
