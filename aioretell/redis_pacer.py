"""Pacing shared by every process that names the same Redis namespace.

``AsyncRetell(pacer=RedisPacer("redis://host:6379/0", namespace="acct-1", create_rate_limit=20))``
in each process, and together they keep to one request bucket and one create bucket, pause
together on a 429 (one worker's 429 holds them all until Retry-After), adapt one shared rate
when none is set, and optionally share a cap on requests in flight.

Every decision is one Lua script on the Redis server, timed by the server's clock alone
(:mod:`aioretell._redis_scripts`). Within a process, only one task at a time asks Redis for a
turn that was refused, so a queue of thousands of local tasks costs Redis one caller, and a
cancelled task holds nothing: a refused turn is never reserved.

When Redis cannot be reached the pacer fails closed by default: the request raises
:class:`PacerUnavailableError` and nothing is sent. ``on_unavailable="local"`` paces with the
same limits inside this process instead until Redis answers again. Needs
``pip install "aioretell[redis]"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Literal

from . import _redis_scripts as scripts
from ._exceptions import RetellError
from ._operation import Operation
from ._pacing import Pacer
from ._redis import LuaScript, OwnConnections, check_namespace, connect
from ._sansio import parse_retry_after

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["PacerUnavailableError", "RedisPacer", "RedisTurn"]

logger = logging.getLogger("aioretell.pacing")

#: Pause after a 429 that carried no Retry-After (as the in-process pacer).
DEFAULT_PAUSE_S = 1.0
#: A request may take its turn this fraction of an interval early, which absorbs the wake-up
#: lag of the process that waited for it without letting a 1 s window exceed rate + 1.
TOLERANCE = 0.5
#: Bucket hashes expire after this much idleness.
BUCKET_TTL_MS = 3_600_000
#: With ``on_unavailable="local"``, how long to pace locally before asking Redis again.
RETRY_REDIS_S = 5.0
#: Longest sleep between two asks for a concurrency lease.
LEASE_POLL_S = 0.05

_TAKE = LuaScript(scripts.TAKE)
_RATE_LIMITED = LuaScript(scripts.RATE_LIMITED)
_LEASE_ACQUIRE = LuaScript(scripts.LEASE_ACQUIRE)
_LEASE_HEARTBEAT = LuaScript(scripts.LEASE_HEARTBEAT)


class PacerUnavailableError(RetellError):
    """The shared pacer could not be reached; the request was not sent."""

    request_sent = False


class RedisTurn:
    """One request's turn: when Redis granted it (server ms) and its lease, if any."""

    __slots__ = ("granted_ms", "lease", "local")

    def __init__(self, granted_ms: float, lease: str | None, local: Any = None) -> None:
        self.granted_ms = granted_ms
        self.lease = lease
        #: the in-process pacer's turn, when Redis was down and ``on_unavailable="local"``
        self.local = local


def _rate(name: str, value: float | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of requests per second or None")
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive, finite number of requests/s, got {value}")
    return float(value)


class RedisPacer:
    """A pacer whose buckets, 429 pauses and concurrency cap live in Redis."""

    def __init__(
        self,
        redis: str | Redis,
        *,
        namespace: str,
        rate_limit: float | None = None,
        create_rate_limit: float | None = None,
        max_concurrency: int | None = None,
        lease_ttl_s: float = 30.0,
        on_unavailable: Literal["fail", "local"] = "fail",
    ) -> None:
        check_namespace(namespace)
        self._fixed = {
            "requests": _rate("rate_limit", rate_limit),
            "creates": _rate("create_rate_limit", create_rate_limit),
        }
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be a positive int, got {max_concurrency!r}")
        if isinstance(lease_ttl_s, bool) or not isinstance(lease_ttl_s, (int, float)):
            raise TypeError("lease_ttl_s must be a number of seconds")
        if not 1 <= lease_ttl_s < math.inf:
            raise ValueError(f"lease_ttl_s must be at least 1 second, got {lease_ttl_s}")
        if on_unavailable not in ("fail", "local"):
            raise ValueError(f"on_unavailable must be 'fail' or 'local', got {on_unavailable!r}")
        self._redis, self._owns = connect(redis, owner="RedisPacer")
        self.namespace = namespace
        self.max_concurrency = max_concurrency
        self.on_unavailable = on_unavailable
        self._keys = {name: f"{namespace}:pace:{name}" for name in self._fixed}
        self._lease_key = f"{namespace}:pace:leases"
        self._lease_ttl_ms = round(lease_ttl_s * 1000)
        self._connections = OwnConnections(self._redis)
        from redis.exceptions import RedisError

        self._redis_error = RedisError
        #: successes seen since the last script call, per bucket; sent with the next one
        self._ok = dict.fromkeys(self._fixed, 0)
        #: one task per process asks again for a refused turn; the others queue here
        self._queues: dict[tuple[str, ...], asyncio.Lock] = {}
        self._leases: set[str] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._heartbeat_error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused_until = -math.inf  # monotonic: this process's own latest 429
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._fallback: Pacer | None = None  # in-process pacing while Redis is down ("local")
        self._down_until = -math.inf  # monotonic: pace locally until then ("local")
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisPacer(namespace={self.namespace!r}, on_unavailable={self.on_unavailable!r})"

    # -- taking a turn -----------------------------------------------------------------------

    def _buckets(self, op: Operation) -> tuple[str, ...]:
        return ("requests", "creates") if op.starts_conversation else ("requests",)

    #: Never idle: whether another process drew a 429 is only known by asking Redis.
    idle = False

    def on_unpaced_response(self, op: Operation, status: int, headers: Mapping[str, str]) -> None:
        """Not called while :attr:`idle` is false; handled as an answer on a turn of no time."""
        self.on_response(op, RedisTurn(-math.inf, None), status, headers)

    def try_reserve(self, op: Operation) -> RedisTurn | None:
        """Always ``None``: every turn is decided by Redis, so it takes an await."""
        return None

    async def reserve(self, op: Operation) -> RedisTurn:
        """Wait for ``op``'s turn in the shared buckets (and a lease, with a concurrency cap)."""
        paused = self._paused_until - time.monotonic()
        if paused > 0:  # this process's own 429, before Redis has been told of it
            await self._sleep(paused)
        if self.on_unavailable == "fail":
            return await self._reserve_shared(op)
        if time.monotonic() < self._down_until:
            return await self._reserve_local(op)
        try:
            turn = await self._reserve_shared(op)
        except PacerUnavailableError as exc:
            reason = str(exc).removesuffix("; nothing was sent")
            logger.warning("%s; pacing inside this process for %g s", reason, RETRY_REDIS_S)
            self._down_until = time.monotonic() + RETRY_REDIS_S
            return await self._reserve_local(op)
        return turn

    async def _reserve_local(self, op: Operation) -> RedisTurn:
        fallback = self._fallback
        if fallback is None:
            fallback = self._fallback = Pacer(
                rate_limit=self._fixed["requests"] or None,
                create_rate_limit=self._fixed["creates"] or None,
                max_concurrency=self.max_concurrency,
            )
        local = fallback.try_reserve(op)
        if local is None:
            local = await fallback.reserve(op)
        return RedisTurn(-math.inf, None, local)

    async def _reserve_shared(self, op: Operation) -> RedisTurn:
        if self._closed:
            raise PacerUnavailableError("this RedisPacer is closed")
        if self._heartbeat_error is not None:
            raise PacerUnavailableError(
                f"the lease heartbeat failed: {self._heartbeat_error}"
            ) from None
        buckets = self._buckets(op)
        lease = await self._take_lease() if self.max_concurrency is not None else None
        try:
            queue = self._queues.get(buckets)
            granted = None
            if queue is None or not queue.locked():
                granted = await self._try(buckets)
            if granted is None:
                queue = self._queues.setdefault(buckets, asyncio.Lock())
                async with queue:
                    granted = await self._wait_for_turn(buckets)
        except BaseException:
            if lease is not None:
                self._leases.discard(lease)
                self._spawn(self._drop_lease(lease))
            raise
        return RedisTurn(granted, lease)

    async def _wait_for_turn(self, buckets: tuple[str, ...]) -> float:
        while True:
            granted = await self._try(buckets)
            if granted is not None:
                return granted

    async def _try(self, buckets: tuple[str, ...]) -> float | None:
        """One ask: the server time of the granted turn, or ``None`` after sleeping the wait."""
        args: list[Any] = [BUCKET_TTL_MS, TOLERANCE]
        for name in buckets:
            args += [self._fixed[name], self._ok[name]]
        sent = {name: self._ok[name] for name in buckets}
        for name in buckets:
            self._ok[name] = 0
        try:
            wait_ms, now_ms = await self._call(_TAKE, [self._keys[n] for n in buckets], args)
        except BaseException:
            for name, count in sent.items():  # not counted: report them next time
                self._ok[name] += count
            raise
        wait = float(wait_ms)
        if wait <= 0:
            return float(now_ms)
        await self._sleep(wait / 1000)
        return None

    # -- responses ---------------------------------------------------------------------------

    def on_response(
        self, op: Operation, turn: RedisTurn, status: int, headers: Mapping[str, str]
    ) -> None:
        """Count a success for the next ask, or share a 429's pause with every process."""
        if turn.local is not None:
            assert self._fallback is not None
            self._fallback.on_response(op, turn.local, status, headers)
            return
        if status == 429:
            bucket = "creates" if op.starts_conversation else "requests"
            retry_after = parse_retry_after(headers, now=time.time)
            pause = DEFAULT_PAUSE_S if retry_after is None else retry_after
            self._paused_until = max(self._paused_until, time.monotonic() + pause)
            self._spawn(self._rate_limited(bucket, pause, turn.granted_ms))
        elif status < 400:
            for name in self._buckets(op):
                if not self._fixed[name]:
                    self._ok[name] += 1
        self._end(turn)

    def release(self, op: Operation, turn: RedisTurn, *, sent: bool) -> None:
        """The request ended without a response. A refused turn was never reserved in Redis,
        so there is nothing to give back but the concurrency lease."""
        if turn.local is not None:
            assert self._fallback is not None
            self._fallback.release(op, turn.local, sent=sent)
            return
        self._end(turn)

    def set_time(
        self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        """Tests: sleep through ``sleep``. The clock stays Redis's own."""
        self._sleep = sleep

    def _end(self, turn: RedisTurn) -> None:
        if turn.lease is not None:
            lease, turn.lease = turn.lease, None
            self._leases.discard(lease)
            self._spawn(self._drop_lease(lease))

    async def _rate_limited(self, bucket: str, pause_s: float, granted_ms: float) -> None:
        adaptive = 0 if self._fixed[bucket] else 1
        args = [BUCKET_TTL_MS, round(pause_s * 1000), granted_ms, adaptive]
        await self._call(_RATE_LIMITED, [self._keys[bucket]], args)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Tell Redis without holding up the request; the pacer owns the task until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Retell's own 429 stays the backstop; a lease left behind expires with its TTL.
            logger.warning("could not update the shared pacer in Redis: %s", exc)

    # -- concurrency leases ------------------------------------------------------------------

    async def _take_lease(self) -> str:
        token = secrets.token_hex(8)
        args = [self.max_concurrency, self._lease_ttl_ms, token]
        while True:
            wait_ms = float(await self._call(_LEASE_ACQUIRE, [self._lease_key], args))
            if wait_ms <= 0:
                break
            await self._sleep(min(wait_ms / 1000, LEASE_POLL_S))
        self._leases.add(token)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(
                self._beat(), name=f"aioretell-redis-pacer-heartbeat-{self.namespace}"
            )
        return token

    async def _drop_lease(self, token: str) -> None:
        self._leases.discard(token)
        await self._connections.run("ZREM", self._lease_key, token)

    async def _beat(self) -> None:
        """Extend this process's leases every third of their TTL while it holds any."""
        interval = self._lease_ttl_ms / 3000
        try:
            while self._leases:
                await asyncio.sleep(interval)
                if not self._leases:
                    break
                try:
                    lost = await self._connections.run_script(
                        _LEASE_HEARTBEAT, [self._lease_key], [self._lease_ttl_ms, *self._leases]
                    )
                except Exception as exc:  # noqa: BLE001 - Redis down: try again next beat
                    logger.warning("could not extend concurrency leases: %s", exc)
                    continue
                if lost:
                    logger.error(
                        "%d concurrency lease(s) expired in Redis while their requests were "
                        "in flight (Redis restarted, or this process was frozen)",
                        len(lost),
                    )
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug here must not pass unnoticed: acquire raises it
            self._heartbeat_error = exc
            raise

    # -- Redis calls and failure -------------------------------------------------------------

    async def _call(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        return await self._asked(self._connections.run_script(script, keys, args))

    async def _asked(self, ask: Awaitable[Any]) -> Any:
        """``ask``'s reply; Redis's failures as :class:`PacerUnavailableError`."""
        try:
            return await ask
        except (self._redis_error, OSError) as exc:
            raise PacerUnavailableError(
                f"the shared pacer's Redis ({self.namespace!r}) is unavailable: "
                f"{type(exc).__name__}: {exc}; nothing was sent"
            ) from None

    async def check(self) -> None:
        """Ask Redis once, to learn at start-up whether it answers: raises
        :class:`PacerUnavailableError` if not (with ``on_unavailable="local"`` requests would
        otherwise be paced inside the process without a word)."""
        await self._asked(self._connections.run("PING"))

    async def aclose(self) -> None:
        """Stop the heartbeat, close this pacer's connections and, if this pacer made the
        Redis client, its connection pool."""
        self._closed = True
        if self._tasks:  # let the last 429s and lease releases reach Redis
            await asyncio.wait(set(self._tasks), timeout=5)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await self._connections.aclose()
        if self._owns:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisPacer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
