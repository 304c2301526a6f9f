"""Helpers for campaigns shared by many dialers: workers in this process or as subprocesses
of ``python -m aioretell dial --journal postgresql://...``, and what the campaign ended as.

For the multi-worker tests here and the chaos run (``tests/scale``, ``benchmarks``):

- :func:`start_worker` starts one worker process against a campaign of a PostgreSQL schema
  (``tests.dial.conftest.postgres_dsn`` gives a schema of a test's own);
- :func:`campaign_status` reads the campaign as ``aioretell campaign --json`` prints it;
- :func:`leader_of` names the worker holding the lead.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import msgspec

ENV = {k: v for k, v in os.environ.items() if k not in ("RETELL_API_KEY", "RETELL_BASE_URL")}
DIAL = (sys.executable, "-m", "aioretell", "dial")


async def start_worker(
    csv: Path,
    dsn: str,
    campaign: str,
    worker_id: str,
    *,
    base_url: str,
    api_key: str,
    from_number: str,
    extra: tuple[str, ...] = (),
) -> asyncio.subprocess.Process:
    """``aioretell dial CSV --journal DSN --campaign NAME --worker-id ID`` in a process of its
    own (stdout and stderr piped), with short polls and a 2 s lease for tests."""
    return await asyncio.create_subprocess_exec(
        *DIAL,
        *(str(csv), "--from-number", from_number, "--journal", dsn, "--campaign", campaign),
        "--yes",
        *("--worker-id", worker_id, "--base-url", base_url, "--api-key", api_key),
        *("--poll-interval", "0.1", "--lease-ttl", "2", "--lookup-grace", "0.5"),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float = 180) -> tuple[int, str]:
    """Wait for a worker; its exit code and stderr. One still running at ``timeout`` is
    killed (and the test fails with the timeout)."""
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except asyncio.TimeoutError:  # not yet the built-in TimeoutError on Python 3.10
        process.kill()
        await process.communicate()
        raise
    assert process.returncode is not None
    return process.returncode, err.decode()


async def campaign_status(dsn: str, campaign: str) -> dict[str, Any]:
    """``aioretell campaign --journal DSN --campaign NAME --json``, decoded."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aioretell", "campaign", "--journal", dsn),
        *("--campaign", campaign, "--json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    status: dict[str, Any] = msgspec.json.decode(out)
    return status


async def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one statement run in the schema of ``dsn``."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(sql.encode(), params)
        return list(await cursor.fetchall()) if cursor.description else []


async def leader_of(dsn: str, campaign: str) -> str | None:
    found = await query(dsn, "SELECT leader FROM aioretell_campaigns WHERE name = %s", campaign)
    return None if not found else found[0][0]


async def campaign_id(dsn: str, campaign: str) -> str:
    found = await query(
        dsn, "SELECT campaign_id FROM aioretell_campaigns WHERE name = %s", campaign
    )
    return str(found[0][0])


async def states(dsn: str, campaign: str) -> dict[str, int]:
    found = await query(
        dsn,
        "SELECT state, COUNT(*) FROM aioretell_leads WHERE campaign = %s GROUP BY state",
        campaign,
    )
    return {state: int(n) for state, n in found}


class Proxy:
    """A TCP relay to the test PostgreSQL: :meth:`stop` is the database going down (every
    connection cut, new ones refused), :meth:`start` it coming back on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
