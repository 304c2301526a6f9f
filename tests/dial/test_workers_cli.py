"""``aioretell dial --journal postgresql://...`` as users run it: worker processes on one
campaign against one emulator process, killed, interrupted; every option refused clearly.

The emulator's own record (list-calls filtered on the campaign, through its API) decides that
every lead was dialled exactly once.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path

import pytest

from aioretell.cli import main

from .conftest import API_KEY, FROM, calls_per_number, dialled, numbers, write_csv
from .shared_campaign import (
    Proxy,
    campaign_id,
    campaign_status,
    finish,
    leader_of,
    query,
    start_worker,
    states,
)
from .test_crash import emulator_process

NAME = "spring"


async def _until(dsn: str, ended: int, workers: list[asyncio.subprocess.Process]) -> None:
    for _ in range(600):  # up to 60 s
        try:
            found = await states(dsn, NAME)
        except Exception:  # noqa: BLE001 - the tables are not there yet
            found = {}
        if found.get("ended", 0) >= ended:
            return
        for worker in workers:
            if worker.returncode is not None:
                _, err = await finish(worker)
                raise AssertionError(f"a worker exited ({worker.returncode}): {err}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"no progress: {found}")


async def _stop_all(workers: list[asyncio.subprocess.Process]) -> None:
    for worker in workers:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


async def test_three_worker_processes_and_the_leader_killed(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """Three workers; the leader is killed with SIGKILL mid-campaign. Another takes the lead,
    reconciles the dead one's claims once their lease expires, and the campaign finishes:
    every number dialled once."""
    wanted = numbers(40, "212") + numbers(40, "646")
    csv = write_csv(tmp_path / "leads.csv", wanted)
    async with emulator_process(call_duration="0.3") as base_url:
        extra = ("--cps", "60", "--concurrency", "12")
        workers = [
            await start_worker(
                csv,
                postgres_dsn,
                NAME,
                f"w{n}",
                base_url=base_url,
                api_key=API_KEY,
                from_number=FROM,
                extra=extra,
            )
            for n in range(3)
        ]
        try:
            await _until(postgres_dsn, 20, workers)
            leader = await leader_of(postgres_dsn, NAME)
            assert leader in ("w0", "w1", "w2")
            killed = workers[int(leader[1])]
            killed.send_signal(signal.SIGKILL)
            await killed.wait()
            results = {}
            for n, worker in enumerate(workers):
                if worker is not killed:
                    results[f"w{n}"] = await finish(worker)
        finally:
            await _stop_all(workers)
        for code, err in results.values():
            assert code == 0, err
            assert "Traceback" not in err
        assert any("leads the campaign" in err for _, err in results.values())
        status = await campaign_status(postgres_dsn, NAME)
        assert status["states"] == {"ended": 80}
        assert status["live"] == 0
        dead = next(w for w in status["workers"] if w["worker_id"] == leader)
        assert dead["stopped_at"] is None  # killed: it never signed off
        by_number = await calls_per_number(base_url, await campaign_id(postgres_dsn, NAME))
        assert by_number == dict.fromkeys(wanted, 1)


async def test_ctrl_c_exits_130_and_a_rerun_finishes(tmp_path: Path, postgres_dsn: str) -> None:
    wanted = numbers(80)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    async with emulator_process(call_duration="0.3") as base_url:
        extra = ("--cps", "40", "--concurrency", "5")
        args = (csv, postgres_dsn, NAME, "w1")
        options = {"base_url": base_url, "api_key": API_KEY, "from_number": FROM, "extra": extra}
        first = await start_worker(*args, **options)  # type: ignore[arg-type]
        try:
            await _until(postgres_dsn, 10, [first])
            first.send_signal(signal.SIGINT)
            code, err = await finish(first)
        finally:
            await _stop_all([first])
        assert code == 130, err
        assert "Traceback" not in err
        at_stop = await states(postgres_dsn, NAME)
        assert at_stop.get("pending", 0) > 0, at_stop
        # Stopped cleanly: nothing claimed is left to the reconciler.
        assert (
            await query(
                postgres_dsn,
                "SELECT ref FROM aioretell_leads WHERE state = 'dispatching'"
                " AND lease_until > clock_timestamp()",
            )
            == []
        )
        again = await start_worker(*args, **options)  # type: ignore[arg-type]
        code, err = await finish(again)
        assert code == 0, err
        assert await states(postgres_dsn, NAME) == {"ended": 80}
        by_number = await calls_per_number(base_url, await campaign_id(postgres_dsn, NAME))
        assert by_number == dict.fromkeys(wanted, 1)


async def test_a_later_csv_adds_only_new_leads(tmp_path: Path, postgres_dsn: str) -> None:
    first, added = numbers(10), numbers(5, "646")
    csv = write_csv(tmp_path / "leads.csv", first)
    async with emulator_process(call_duration="0.1") as base_url:
        options = {"base_url": base_url, "api_key": API_KEY, "from_number": FROM}
        code, err = await finish(await start_worker(csv, postgres_dsn, NAME, "w1", **options))
        assert code == 0, err
        write_csv(tmp_path / "leads.csv", [*added[:2], *first, *added[2:]])
        code, err = await finish(await start_worker(csv, postgres_dsn, NAME, "w2", **options))
        assert code == 0, err
        assert "5 new leads added to the campaign" in err
        assert await states(postgres_dsn, NAME) == {"ended": 15}
        by_number = await calls_per_number(base_url, await campaign_id(postgres_dsn, NAME))
        assert by_number == dict.fromkeys(first + added, 1)


async def test_a_rerun_with_another_key_joins_the_campaigns_account(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """A first run with a wrong key opens the campaign and is refused by the server (exit 1,
    one line, nothing dialled); the rerun with the right key (a rotated one alike) dials from
    the account the campaign was opened with and finishes it."""
    wanted = numbers(6)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    async with emulator_process(call_duration="0.1") as base_url:
        options = {"base_url": base_url, "from_number": FROM}
        wrong = await start_worker(csv, postgres_dsn, NAME, "w1", api_key="key_wrong", **options)
        code, err = await finish(wrong)
        assert code == 1, err
        assert "Traceback" not in err and "key_wrong" not in err
        assert await states(postgres_dsn, NAME) == {"pending": 6}
        right = await start_worker(csv, postgres_dsn, NAME, "w1", api_key=API_KEY, **options)
        code, err = await finish(right)
        assert code == 0, err
        assert await states(postgres_dsn, NAME) == {"ended": 6}
        accounts = await query(postgres_dsn, "SELECT account FROM aioretell_accounts")
        assert len(accounts) == 1, accounts
        by_number = await calls_per_number(base_url, await campaign_id(postgres_dsn, NAME))
        assert by_number == dict.fromkeys(wanted, 1)


async def _worker_with_redis(
    csv: Path, dsn: str, base_url: str, redis: str, *more: str
) -> asyncio.subprocess.Process:
    """Worker ``w1`` of the campaign, dialling through ``base_url`` with ``--redis redis``."""
    return await start_worker(
        csv,
        dsn,
        NAME,
        "w1",
        base_url=base_url,
        api_key=API_KEY,
        from_number=FROM,
        extra=("--redis", redis, *more),
    )


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
async def test_redis_going_away_mid_run_does_not_stop_a_shared_campaign(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """--redis on a shared campaign: the journal decides every create on PostgreSQL, so with
    Redis killed mid-run the worker paces its requests inside the process and finishes,
    each number dialled once."""
    from psycopg.errors import UndefinedTable

    from benchmarks.chaos import PrivateRedis

    wanted = numbers(40)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    async with PrivateRedis() as redis, emulator_process(call_duration="0.1") as base_url:
        worker = await _worker_with_redis(csv, postgres_dsn, base_url, redis.url, "--cps", "20")
        for _ in range(1200):  # 20 creates a second: cut Redis after the first few
            await asyncio.sleep(0.05)
            try:
                done = await states(postgres_dsn, NAME)
            except UndefinedTable:  # the worker has not opened the journal yet
                continue
            if done.get("created", 0) + done.get("ended", 0) >= 5 or worker.returncode:
                break
        await redis.kill()
        code, err = await finish(worker, timeout=60)
        assert code == 0, err
        assert "Traceback" not in err
        by_number = await calls_per_number(base_url, await campaign_id(postgres_dsn, NAME))
    assert await states(postgres_dsn, NAME) == {"ended": 40}
    assert by_number == dict.fromkeys(wanted, 1)


async def test_redis_unreachable_at_the_start_of_a_shared_campaign_is_one_line(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """Though a shared campaign carries on without Redis, a --redis that never answered is a
    mistake to say at once: one line, exit 1, no lead claimed."""
    from .test_crash import _free_port

    csv = write_csv(tmp_path / "leads.csv", numbers(3))
    async with emulator_process(call_duration="0.1") as base_url:
        worker = await _worker_with_redis(
            csv, postgres_dsn, base_url, f"redis://127.0.0.1:{_free_port()}/0"
        )
        code, err = await finish(worker, timeout=60)
    assert code == 1, err
    line = _one_line(err)
    assert "the shared pacer's Redis" in line and "is unavailable" in line
    assert await states(postgres_dsn, NAME) == {"pending": 3}


async def test_redis_paces_the_workers_in_the_campaigns_namespace(
    tmp_path: Path, postgres_dsn: str
) -> None:
    from tests.services import REDIS_URL, require

    redis_url = require("Redis", REDIS_URL, 6379, "AIORETELL_TEST_REDIS")
    from redis.asyncio import Redis

    csv = write_csv(tmp_path / "leads.csv", numbers(6))
    async with emulator_process(call_duration="0.1") as base_url:
        worker = await _worker_with_redis(csv, postgres_dsn, base_url, redis_url, "--cps", "50")
        code, err = await finish(worker)
        assert code == 0, err
    namespace = f"aioretell:dial:{await campaign_id(postgres_dsn, NAME)}"
    redis = Redis.from_url(redis_url)
    try:
        keys = sorted([key async for key in redis.scan_iter(match=f"{namespace}:*")])
        assert f"{namespace}:pace:creates".encode() in keys, keys
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


# -- refusals ----------------------------------------------------------------------------


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "leads.csv", numbers(3))


def _dial(csv: Path, *args: str) -> list[str]:
    return ["dial", str(csv), "--from-number", FROM, "--api-key", API_KEY, "--yes", *args]


PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--journal", PG], "needs --campaign NAME"),
        (["--journal", PG, "--campaign", ""], "--campaign '' must be 1 to 64 letters"),
        (["--journal", PG, "--campaign", "a b"], "--campaign 'a b' must be"),
        (["--journal", PG, "--campaign", "x" * 65], "must be 1 to 64 letters"),
        (["--journal", PG, "--campaign", "c", "--worker-id", "w/1"], "--worker-id 'w/1' must"),
        (["--campaign", "c"], "--campaign names a campaign of a --journal postgresql://"),
        (["--worker-id", "w"], "--worker-id names one of the workers"),
        (["--journal", "mysql://x/y"], "--journal mysql://... is not supported"),
        (["--journal", "postgresql://h/db?nosuch=1", "--campaign", "c"], "not a URL libpq"),
        (["--journal", PG, "--campaign", "c", "--lease-ttl", "nan"], "--lease-ttl must be"),
        (["--journal", PG, "--campaign", "c", "--lease-ttl", "-1"], "--lease-ttl must be"),
        (["--journal", PG, "--campaign", "c", "--lease-ttl", "1e9"], "--lease-ttl must be"),
        (["--lease-ttl", "5"], "--lease-ttl applies to a --journal postgresql://"),
        (["--redis", "http://x"], "is not a redis://, rediss:// or unix:// URL"),
        (["--redis", ""], "is not a redis://"),
        (["--redis", "http://u:s3cret@x"], "'http://u@x' is not a redis://"),
        (["--redis", "redis://:s3cret@h:99999/0"], "'redis://h:99999/0' is not a usable Redis"),
        (["--redis", "redis://h/0?max_connections=-1"], "is not a usable Redis URL"),
        (["--redis", "redis://:s3cret@[::1"], "'(unreadable URL)' is not a usable Redis URL"),
        (["--redis", "http://:s3cret@[::1"], "'(unreadable URL)' is not a redis://"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    csv: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(_dial(csv, *args)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("aioretell dial: "), err
    assert message in err
    assert "s3cret" not in err
    assert not (csv.parent / "leads.journal.db").exists()


def test_a_postgresql_journal_needs_a_key(
    csv: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    args = ["dial", str(csv), "--from-number", FROM, "--journal", PG, "--campaign", "c"]
    assert main(args) == 2
    assert "set --api-key or $RETELL_API_KEY" in capsys.readouterr().err


def test_unreachable_postgresql_is_one_line_exit_1(
    csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from .test_crash import _free_port

    url = f"postgresql://someone:secret@127.0.0.1:{_free_port()}/db"
    assert main(_dial(csv, "--journal", url, "--campaign", "c")) == 1
    err = capsys.readouterr().err
    # The plan (server, leads, number, agent) is printed first, as before any real dial.
    lines = [line for line in err.splitlines() if line.startswith("aioretell dial:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(
        "aioretell dial: cannot connect to PostgreSQL at postgresql://someone@127.0.0.1:"
    )
    assert "secret" not in err


def test_without_psycopg_the_extra_is_named(
    csv: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n == "psycopg" or n.startswith("psycopg.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    assert main(_dial(csv, "--journal", PG, "--campaign", "c")) == 2
    err = capsys.readouterr().err
    assert 'needs psycopg: pip install "aioretell[postgres]"' in err


# -- aioretell campaign --------------------------------------------------------------------


async def test_campaign_status_of_both_journals(tmp_path: Path, postgres_dsn: str) -> None:
    wanted = numbers(4)
    csv = write_csv(tmp_path / "leads.csv", [*wanted, "bad"])
    async with emulator_process(call_duration="0.1") as base_url:
        options = {"base_url": base_url, "api_key": API_KEY, "from_number": FROM}
        code, err = await finish(await start_worker(csv, postgres_dsn, NAME, "w1", **options))
        assert code == 0, err
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aioretell", "campaign", "--journal", postgres_dsn),
        *("--campaign", NAME),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err_bytes = await process.communicate()
    text = out.decode()
    assert process.returncode == 0, err_bytes
    assert "Leads: 4 (4 ended, 1 rejected); the campaign is finished" in text
    assert "Live calls: 0" in text
    assert "  w1: pid " in text and "4 calls placed, stopped " in text


def test_campaign_status_of_a_sqlite_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    monkeypatch.delenv("RETELL_BASE_URL", raising=False)
    csv = write_csv(tmp_path / "leads.csv", numbers(5))  # the in-process emulator: 13 is busy
    assert main(["dial", str(csv), "--from-number", FROM, "--cps", "100"]) == 0
    capsys.readouterr()
    journal = str(tmp_path / "leads.journal.db")
    assert main(["campaign", "--journal", journal]) == 0
    out = capsys.readouterr().out
    assert "Leads: 5 (5 ended); the campaign is finished" in out
    assert "Workers: 1" in out and "5 calls placed, stopped" in out
    assert main(["campaign", "--journal", journal, "--json"]) == 0
    assert '"states":{"ended":5}' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--journal", PG], 2, "needs --campaign NAME"),
        (["--journal", "nothing.db"], 2, "nothing.db: no such journal file"),
        (["--journal", "x.db", "--campaign", "c"], 2, "--campaign names a campaign of a"),
        (["--journal", "postgresql://h/db?nosuch=1", "--campaign", "c"], 2, "not a URL libpq"),
    ],
)
def test_campaign_status_refusals(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(["campaign", *args]) == code
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err


async def test_campaign_status_of_a_campaign_that_is_not_there(postgres_dsn: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aioretell", "campaign", "--journal", postgres_dsn),
        *("--campaign", "nobody"),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 1
    assert "holds no campaign 'nobody'" in err.decode()


# -- PostgreSQL going away ---------------------------------------------------------------


async def test_postgresql_down_mid_run_then_back(tmp_path: Path, postgres_dsn: str) -> None:
    """The database goes away mid-campaign: the worker stops with one line, exit 1, no lead
    marked failed; once it is back the same command finishes, every number dialled once."""
    from urllib.parse import urlsplit

    parts = urlsplit(postgres_dsn)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    await proxy.start()
    dsn = postgres_dsn.replace(f":{parts.port or 5432}/", f":{proxy.port}/", 1)
    wanted = numbers(60)
    csv = write_csv(tmp_path / "leads.csv", wanted)
    try:
        async with emulator_process(call_duration="0.3") as base_url:
            options = {"base_url": base_url, "api_key": API_KEY, "from_number": FROM}
            extra = ("--cps", "40", "--concurrency", "5")
            worker = await start_worker(csv, dsn, NAME, "w1", extra=extra, **options)  # type: ignore[arg-type]
            try:
                await _until(postgres_dsn, 10, [worker])
                await proxy.stop()
                code, err = await finish(worker, timeout=60)
            finally:
                await _stop_all([worker])
            assert code == 1, err
            line = _one_line(err)
            assert line.startswith(
                "aioretell dial: PostgreSQL at postgresql://postgres@127.0.0.1:"
            ), err
            assert "run the same command again once this is fixed" in line
            assert "failed" not in await states(postgres_dsn, NAME)
            await proxy.start()
            again = await start_worker(csv, dsn, NAME, "w1", extra=extra, **options)  # type: ignore[arg-type]
            code, err = await finish(again)
            assert code == 0, err
            assert await states(postgres_dsn, NAME) == {"ended": 60}
            by_number = await calls_per_number(base_url, await campaign_id(postgres_dsn, NAME))
            assert by_number == dict.fromkeys(wanted, 1)
    finally:
        if proxy._server is not None and proxy._server.is_serving():
            await proxy.stop()


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("aioretell dial:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_redis_unreachable_is_one_line_exit_1(
    csv: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--redis fails closed: nothing is sent while the shared pacer cannot be asked."""
    from .test_crash import _free_port

    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    monkeypatch.delenv("RETELL_BASE_URL", raising=False)
    redis = f"redis://127.0.0.1:{_free_port()}/0"
    assert main(["dial", str(csv), "--from-number", FROM, "--redis", redis]) == 1
    err = capsys.readouterr().err
    line = _one_line(err)
    assert "the shared pacer's Redis" in line and "is unavailable" in line
    assert "3 leads are not finished" in line
    assert dialled(csv.parent / "leads.journal.emulator.ndjson") == {}
