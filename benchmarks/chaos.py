"""The moving parts of a chaos run: worker processes, a Redis of its own, and a way to catch a
worker in the middle of a create.

Every signal goes to a process this harness started, by its pid; nothing is looked up or
killed by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from aioretell.emulator import Emulator
from aioretell.emulator.faults import Fault

CREATE_PATH = "/v2/create-phone-call"


def spare_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _wait_until(
    ready: Callable[[], Awaitable[bool]], timeout: float, what: str, step: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not await ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g} s")
        await asyncio.sleep(step)


# -- a Redis of our own ---------------------------------------------------------------------


class PrivateRedis:
    """A ``redis-server`` on a spare loopback port, memory only (no RDB, no AOF), so a restart
    comes back empty. Never the shared one: it is started, killed and restarted here alone."""

    def __init__(self, port: int | None = None, executable: str = "redis-server") -> None:
        self.port = port or spare_port()
        self.executable = executable
        self._proc: asyncio.subprocess.Process | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            raise RuntimeError("this redis-server is already running")
        self._proc = await asyncio.create_subprocess_exec(
            self.executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        proc = self._proc

        async def answers() -> bool:
            if proc.returncode is not None:
                raise RuntimeError(
                    f"redis-server exited with {proc.returncode} on port {self.port}"
                )
            return await self.ping()

        await _wait_until(answers, timeout, f"redis-server did not answer on port {self.port}")

    async def ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            return await reader.readline() == b"+PONG\r\n"
        except OSError:
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def kill(self) -> None:
        """``kill -9`` it: everything it held is gone."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()

    async def restart(self, down_s: float = 0.0) -> None:
        """Kill it, stay down ``down_s`` seconds, and start it again, empty."""
        await self.kill()
        await asyncio.sleep(down_s)
        await self.start()
        self.restarts += 1

    async def __aenter__(self) -> PrivateRedis:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()


# -- worker processes -----------------------------------------------------------------------


class Fleet:
    """``n`` worker processes, each running the command ``argv(i)``; output to files in
    ``logs``. Signals go to the pids this fleet started, never to a name."""

    def __init__(
        self,
        argv: Callable[[int], Sequence[str]],
        n: int,
        logs: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._argv = argv
        self.n = n
        self.logs = logs
        self._env = dict(os.environ if env is None else env)
        self.procs: list[asyncio.subprocess.Process] = []
        #: what was done to each worker, in order: ``(monotonic time, index, signal name)``
        self.signals: list[tuple[float, int, str]] = []

    async def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for i in range(self.n):
            out, err = self._log_files(i)
            with out, err:  # the child has its own copies
                proc = await asyncio.create_subprocess_exec(
                    *self._argv(i), stdout=out, stderr=err, env=self._env
                )
            self.procs.append(proc)

    def _log_files(self, i: int) -> tuple[BinaryIO, BinaryIO]:
        out = open(self.logs / f"worker-{i}.out", "wb")  # noqa: SIM115 (closed by the caller)
        try:
            return out, open(self.logs / f"worker-{i}.err", "wb")
        except BaseException:
            out.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> list[int]:
        """Indexes of the workers still running."""
        return [i for i, p in enumerate(self.procs) if p.returncode is None]

    def signal(self, i: int, signum: signal.Signals) -> None:
        proc = self.procs[i]
        if proc.returncode is None:
            proc.send_signal(signum)
            self.signals.append((time.monotonic(), i, signum.name))

    def kill(self, i: int) -> None:
        self.signal(i, signal.SIGKILL)

    def freeze(self, i: int) -> None:
        self.signal(i, signal.SIGSTOP)

    def thaw(self, i: int) -> None:
        self.signal(i, signal.SIGCONT)

    async def wait(self, timeout: float) -> list[int]:
        """Every worker's exit status (negative: the signal that ended it)."""

        async def every() -> list[int]:
            return [await p.wait() for p in self.procs]

        return await asyncio.wait_for(every(), timeout=timeout)

    def stderr(self, i: int) -> str:
        return (self.logs / f"worker-{i}.err").read_text(encoding="utf-8", errors="replace")

    def stdout(self, i: int) -> str:
        return (self.logs / f"worker-{i}.out").read_text(encoding="utf-8", errors="replace")

    async def aclose(self) -> None:
        """Kill (by pid) any worker still running, thawing a frozen one first, and reap all."""
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            await proc.wait()


# -- how late this process's event loop runs ------------------------------------------------


class LoopLag:
    """Samples how late this event loop wakes from a short sleep (a busy loop delays every
    request it serves, the emulator's included): ``async with LoopLag() as lag: ...``."""

    def __init__(self, every: float = 0.01) -> None:
        self.every = every
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.every)
            self.samples.append(max(0.0, time.perf_counter() - before - self.every))

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


# -- which process sent a request -----------------------------------------------------------


def _socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of this host's TCP socket from ``local_port`` to ``remote_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if (
                int(local.rsplit(":", 1)[1], 16) == local_port
                and int(remote.rsplit(":", 1)[1], 16) == remote_port
                and inode
            ):
                return inode
    return None


def owner_of_connection(local_port: int, remote_port: int, pids: Sequence[int]) -> int | None:
    """Which of ``pids`` holds the TCP connection from ``local_port`` to ``remote_port``."""
    inode = _socket_inode(local_port, remote_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fds.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    return None


@dataclass
class OpenCreate:
    """A create-phone-call the emulator is handling: who sent it, since when, what it made."""

    client_port: int
    since: float
    #: when it arrived, on the emulator's clock
    arrived: float = 0.0
    #: the answer's ``call_id`` and ``to_number`` once it is handled (after its client died)
    answer: dict[str, str] = field(default_factory=dict)
    status: int | None = None


class CreateTracker:
    """An emulator middleware noting every create-phone-call while it is handled, with the
    client's port, so a worker can be caught with a create in flight.

    It reads each create's body as it arrives: a create whose client dies while the emulator
    holds it (a delay fault) is then made anyway, as Retell would make a request it had
    received, and nobody hears the answer.
    """

    def __init__(self) -> None:
        self.open: dict[int, OpenCreate] = {}
        self.finished: list[OpenCreate] = []
        self._clock: Callable[[], float] = time.time

    def install(self, emulator: Emulator) -> None:
        """Add to ``emulator`` before it starts (its middlewares freeze when it does)."""
        self._clock = emulator.clock
        emulator.app.middlewares.append(self._middleware)

    def arrivals(self) -> dict[str, float]:
        """When the create of each call answered arrived (the first, for a call that an
        idempotent create returned again)."""
        found: dict[str, float] = {}
        for create in self.finished:
            call_id = create.answer.get("call_id")
            if call_id is not None:
                found[call_id] = min(found.get(call_id, create.arrived), create.arrived)
        return found

    def requests(self) -> list[float]:
        """When every create request arrived, whatever its answer."""
        return [create.arrived for create in self.finished]

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != CREATE_PATH or request.transport is None:
            return await handler(request)
        peer = request.transport.get_extra_info("peername")
        entry = OpenCreate(int(peer[1]) if peer else 0, time.monotonic(), self._clock())
        # The whole request has arrived, as a server would have it: read it now (aiohttp keeps
        # it for the handler), so a create held by a fault is still made if its client dies.
        await request.read()
        self.open[id(entry)] = entry
        try:
            response = await handler(request)
            entry.status = response.status
            if isinstance(response, web.Response) and isinstance(response.body, bytes):
                with contextlib.suppress(ValueError):
                    body = json.loads(response.body)
                    if isinstance(body, dict):
                        entry.answer = {
                            k: str(body[k]) for k in ("call_id", "to_number") if k in body
                        }
            return response
        finally:
            del self.open[id(entry)]
            self.finished.append(entry)

    def held_longer_than(self, seconds: float) -> list[OpenCreate]:
        now = time.monotonic()
        return [c for c in self.open.values() if now - c.since > seconds]


@dataclass
class CaughtMidCreate:
    """A worker signalled (``kill -9`` or ``SIGSTOP``) while the emulator held its create."""

    index: int
    pid: int
    create: OpenCreate


async def catch_mid_create(
    emulator: Emulator,
    tracker: CreateTracker,
    fleet: Fleet,
    act: Callable[[int], None],
    *,
    candidates: Sequence[int],
    hold_s: float = 2.0,
    timeout: float = 30.0,
) -> CaughtMidCreate:
    """Hold the next create-phone-call ``hold_s`` seconds in the emulator (a scripted delay
    fault); when the worker that sent it is one of ``candidates``, ``act`` on it (by index)
    while the create is held. The emulator then makes the call anyway and answers a client
    that is gone or stopped: the call exists, and its worker has not seen the answer."""
    port = int(emulator.base_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        emulator.faults.script("createPhoneCall", [Fault.delay(hold_s)])
        await _wait_until(
            _now(lambda: emulator.faults.pending("createPhoneCall") == 0),
            timeout,
            "no create-phone-call reached the emulator",
        )
        await asyncio.sleep(min(0.3, hold_s / 4))
        for held in tracker.held_longer_than(min(0.25, hold_s / 5)):
            pid = owner_of_connection(held.client_port, port, fleet.pids)
            if pid is None:
                continue
            index = fleet.pids.index(pid)
            if index in candidates and fleet.procs[index].returncode is None:
                act(index)
                return CaughtMidCreate(index, pid, held)
        await asyncio.sleep(hold_s)  # another worker's create: let it go, try again
    raise TimeoutError(f"no create of workers {list(candidates)} was caught within {timeout:g} s")


async def kill_mid_create(
    emulator: Emulator,
    tracker: CreateTracker,
    fleet: Fleet,
    *,
    candidates: Sequence[int],
    hold_s: float = 2.0,
    timeout: float = 30.0,
) -> CaughtMidCreate:
    """``kill -9`` a worker while the emulator holds its create (:func:`catch_mid_create`)."""
    return await catch_mid_create(
        emulator, tracker, fleet, fleet.kill, candidates=candidates, hold_s=hold_s, timeout=timeout
    )


async def freeze_mid_create(
    emulator: Emulator,
    tracker: CreateTracker,
    fleet: Fleet,
    *,
    candidates: Sequence[int],
    hold_s: float = 2.0,
    timeout: float = 30.0,
) -> CaughtMidCreate:
    """``SIGSTOP`` a worker while the emulator holds its create (:func:`catch_mid_create`):
    the create is made while the worker is stopped, so it wakes up holding a claim it may
    have lost."""
    return await catch_mid_create(
        emulator,
        tracker,
        fleet,
        fleet.freeze,
        candidates=candidates,
        hold_s=hold_s,
        timeout=timeout,
    )


def _now(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def ready() -> bool:
        return check()

    return ready
