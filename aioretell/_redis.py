"""What the Redis-backed classes (the shared pacer, the webhook dedup store) share: their
``namespace`` and ``redis`` arguments, and :class:`OwnConnections` for commands on the hot path.
redis-py is the optional ``redis`` extra, imported only here and only when such a class is
built."""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["LuaScript", "OwnConnections", "check_namespace", "check_url", "connect", "redact_url"]


def check_namespace(namespace: str) -> str:
    """``namespace`` if it can prefix keys: a non-empty string without white space."""
    if not isinstance(namespace, str) or not namespace or any(c.isspace() for c in namespace):
        raise ValueError(f"namespace must be a non-empty string without spaces, got {namespace!r}")
    return namespace


def connect(redis: str | Redis, *, owner: str) -> tuple[Redis, bool]:
    """``(client, owned)`` for ``owner``'s ``redis`` argument: a new client for a URL (owned:
    the owner closes it), or the caller's own ``redis.asyncio.Redis`` (not owned)."""
    try:
        from redis.asyncio import Redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f'{owner} needs redis-py: pip install "aioretell[redis]"') from exc
    if isinstance(redis, str):
        check_url(redis)
        return Redis.from_url(redis), True
    if isinstance(redis, Redis):
        return redis, False
    raise TypeError(f"redis must be a URL or a redis.asyncio.Redis, not {type(redis).__name__}")


def check_url(url: str) -> None:
    """Raise :class:`ValueError` naming ``redis`` (its password left out) if redis-py cannot
    make a connection pool of ``url``: a wrong scheme, port, database or option."""
    from redis.asyncio import ConnectionPool

    try:
        ConnectionPool.from_url(url)  # makes no connection
    except ValueError as exc:
        raise ValueError(f"redis {redact_url(url)!r} is not a usable Redis URL: {exc}") from None


def redact_url(url: str) -> str:
    """``url`` without its password or options, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: nothing of it is shown
        return "(unreadable URL)"
    user = parts.username
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{f'{user}@' if user else ''}{host}{parts.path}"


class LuaScript:
    """A Lua script, run by its SHA1 (``EVALSHA``) and sent whole only when Redis lacks it."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class OwnConnections:
    """Commands sent on connections kept here, made with ``client``'s pool settings (address,
    credentials, TLS, timeouts, database).

    One ask of the shared pacer per request makes redis-py's per-command layers (pool lock and
    readiness check, retry wrapper, observability hooks) most of its cost; a connection of our
    own, used by one command at a time, costs a third less CPU per command. A connection goes
    back to the idle list only after a whole reply was read; one whose command failed or was
    cancelled mid-reply is closed, since its reply could still arrive. A command that finds an
    idle connection closed by the server (Redis restarted) is sent once more on a new one.
    """

    def __init__(self, client: Redis) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import NoScriptError, ResponseError

        self._pool: Any = client.connection_pool
        self._idle: list[Any] = []
        self._closed = False
        self._lost = RedisConnectionError
        self._no_script = NoScriptError
        self._answered = ResponseError  # an error reply: read whole, the connection is fine
        self._detached: set[asyncio.Future[Any]] = set()

    async def run(self, *command: Any) -> Any:
        """``command``'s reply (raw: bytes and ints); redis-py's errors as it raises them."""
        if not self._idle:
            return await self._run_on(self._pool.make_connection(), command)
        try:
            return await self._run_on(self._idle.pop(), command)
        except self._lost:
            return await self._run_on(self._pool.make_connection(), command)

    async def run_script(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        """``script``'s reply for ``keys`` and ``args``; its source goes to a Redis that lacks
        it (restarted or flushed since it last ran), which then keeps it."""
        try:
            return await self.run("EVALSHA", script.sha, len(keys), *keys, *args)
        except self._no_script:
            return await self.run("EVAL", script.source, len(keys), *keys, *args)

    async def _run_on(self, conn: Any, command: tuple[Any, ...]) -> Any:
        # asyncio.wait_for, under redis-py's send when a socket timeout is set, can finish a
        # call whose task was cancelled meanwhile and drop the cancellation (Python 3.10 and
        # 3.11). 3.11 counts a task's cancellations: one that came and went is raised again.
        # 3.10 cannot tell, so there the command runs in a task of its own that a cancel of
        # ours does not reach: we raise at once, and it finishes (or fails) on its own.
        task = asyncio.current_task()
        if task is None or not hasattr(task, "cancelling"):
            exchange = asyncio.ensure_future(self._exchange(conn, command))
            self._detached.add(exchange)
            exchange.add_done_callback(self._forget)
            return await asyncio.shield(exchange)
        cancels = task.cancelling()
        reply = await self._exchange(conn, command)
        if task.cancelling() > cancels:
            raise asyncio.CancelledError
        return reply

    async def _exchange(self, conn: Any, command: tuple[Any, ...]) -> Any:
        try:
            await conn.send_command(*command)
            reply = await conn.read_response()
        except self._answered:
            await self._put_back(conn)
            raise
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        await self._put_back(conn)
        return reply

    def _forget(self, exchange: asyncio.Future[Any]) -> None:
        self._detached.discard(exchange)
        if not exchange.cancelled():
            exchange.exception()  # its caller was cancelled, or has it already

    async def _put_back(self, conn: Any) -> None:
        if self._closed:
            await conn.disconnect()
        else:
            self._idle.append(conn)

    async def aclose(self) -> None:
        """Close the idle connections; one still in use is closed when its command ends."""
        self._closed = True
        if self._detached:  # commands whose callers were cancelled (Python 3.10)
            await asyncio.wait(set(self._detached))
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()
