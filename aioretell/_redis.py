"""What the Redis-backed classes (the shared pacer, the webhook dedup store) share: their
``namespace`` and ``redis`` arguments. redis-py is the optional ``redis`` extra, imported only
here and only when such a class is built."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["check_namespace", "connect"]


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
        return Redis.from_url(redis), True
    if isinstance(redis, Redis):
        return redis, False
    raise TypeError(f"redis must be a URL or a redis.asyncio.Redis, not {type(redis).__name__}")
