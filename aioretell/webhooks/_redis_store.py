"""A :class:`DedupStore` on Redis, so several receiver processes handle each event once."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from .._redis import LuaScript, OwnConnections, check_namespace, connect

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisDedupStore"]

# Delete the key only while it still holds this store's token: a release that comes after the
# TTL ran out must not drop a claim another process has taken since.
_RELEASE = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
""")


class RedisDedupStore:
    """Claims as ``SET key token NX PX ttl`` under ``namespace``; release deletes only our own.

    ``redis`` is a URL (``redis://host:6379/0``) or a ``redis.asyncio.Redis`` you own. A store
    built from a URL owns its connection pool: close it with :meth:`aclose` (or ``async with``).
    Needs ``pip install "aioretell[redis]"``. When Redis cannot be reached, ``claim`` raises and
    the receiver answers 503, so Retell delivers the event again later.
    """

    def __init__(self, redis: str | Redis, *, namespace: str = "aioretell") -> None:
        check_namespace(namespace)
        self._redis, self._owns = connect(redis, owner="RedisDedupStore")
        self._prefix = f"{namespace}:webhook-dedup:"
        # One token per store: a release deletes only what this store claimed.
        self._token = secrets.token_hex(8)
        self._connections = OwnConnections(self._redis)

    def __repr__(self) -> str:
        return f"RedisDedupStore(prefix={self._prefix!r})"

    async def claim(self, key: str, ttl_s: float) -> bool:
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        ttl_ms = max(1, round(ttl_s * 1000))
        claimed = await self._connections.run(
            "SET", self._prefix + key, self._token, "NX", "PX", ttl_ms
        )
        return claimed is not None

    async def release(self, key: str) -> None:
        await self._connections.run_script(_RELEASE, [self._prefix + key], [self._token])

    async def aclose(self) -> None:
        """Close this store's connections, and the connection pool if this store created it."""
        await self._connections.aclose()
        if self._owns:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisDedupStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
