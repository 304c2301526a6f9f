"""A short chaos run: four real ``aioretell dial`` worker processes on one PostgreSQL
campaign, one emulated account with a concurrency and a calls-per-second limit, and the faults
of ``python -m benchmarks.scale_out``: a worker ``kill -9``-ed while the emulator holds its
create, another ``SIGSTOP``-ped the same way past its lease then ``SIGCONT``-ed, and (Redis
variant) the workers' Redis killed and restarted empty. Everything is checked from the
emulator's own record; no throughput or wall-clock threshold (shared, noisy machine).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.scale_out import Plan, Result, render_run, run
from tests.services import POSTGRES_URL, require

PLAN = Plan(
    leads=300,
    workers=4,
    concurrency=20,
    cps=50,
    durations=(0.2, 0.6),
    lease_ttl_s=3.0,
    freeze_beyond_lease_s=2.0,
    hold_s=1.0,
    redis_down_s=0.5,
    kill_at=0.1,
    freeze_at=0.25,
    redis_restart_at=0.5,
    poll_interval_s=0.2,
    lookup_grace_s=0.5,
    timeout_s=120.0,
    min_throughput_share=None,
)


def _explain(result: Result) -> str:
    """The run's table, and the end of each worker's output, for a failure message."""
    text = [render_run(result)]
    if result.logs is not None:
        for err in sorted(result.logs.glob("worker-*.err")):
            tail = err.read_text(encoding="utf-8", errors="replace").splitlines()[-4:]
            text += [f"--- {err.name}", *tail]
    return "\n".join(text)


@pytest.mark.parametrize("redis", [False, True], ids=["postgres", "redis"])
async def test_workers_survive_kill_freeze_and_redis_restart(redis: bool, tmp_path: Path) -> None:
    postgres = require("PostgreSQL", POSTGRES_URL, 5432, "AIORETELL_TEST_POSTGRES")
    if redis and shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (the Redis variant restarts one of its own)")
    plan = Plan(**{**PLAN.__dict__, "redis": redis})
    result = await run(plan, postgres, keep=tmp_path)
    failed = {c.name: c.value for c in result.checks if c.ok is False}
    assert not failed, _explain(result)
    assert result.worker_problems() == [], _explain(result)
    # The create held when a worker died was made, and its lead was not dialled again.
    assert result.killed is not None and result.killed.create.status == 201, _explain(result)
    assert result.killed_number_calls == 1, _explain(result)
    # The create held when a worker was stopped was made while it was stopped; its claim was
    # taken over before it woke (a check above), and its lead was dialled once.
    assert result.frozen is not None and result.frozen.create.status == 201, _explain(result)
    assert result.frozen_number_calls == 1, _explain(result)
    names = [c.name for c in result.checks]
    assert names[:5] == [
        "leads dialled exactly once",
        "most live calls at once (creates refused a line count as one more)",
        "most calls created in any 1 s window (by when their create arrived)",
        "creates answered 429",
        "leads not in a final state (journal)",
    ]
