"""The real CLI in subprocesses: interrupted and killed runs, a second dialer, wrong keys.

Every test runs ``python -m aioretell dial`` as a user would and checks, from the emulator's
own record, that every lead was dialled exactly once. With ``--base-url`` the emulator runs in
its own process, so its records outlive the dialer, and they are read back through the API
(list-calls filtered on the campaign). Without a key the dialer starts its in-process emulator,
whose calls are recorded in a file beside the journal; the tests read that file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from .conftest import API_KEY, FROM, calls_per_number, dialled, numbers, write_csv

LEADS = 200
ENV = {k: v for k, v in os.environ.items() if k not in ("RETELL_API_KEY", "RETELL_BASE_URL")}
DIAL = (sys.executable, "-m", "aioretell", "dial")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _journal_counts(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM leads GROUP BY state").fetchall())
    except sqlite3.OperationalError:  # the dialer is still creating its tables
        return {}
    finally:
        db.close()


def _campaign_id(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT value FROM campaign WHERE key = 'campaign_id'").fetchone()
        return str(row[0])
    finally:
        db.close()


@asynccontextmanager
async def emulator_process(call_duration: str = "0.3") -> AsyncIterator[str]:
    """``aioretell emulator`` in its own process; yields its base URL."""
    port = _free_port()
    emulator = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aioretell", "emulator", "--port", str(port)),
        *("--api-key", API_KEY, "--call-duration", call_duration, "--concurrency-limit", "1000"),
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    try:
        assert emulator.stderr is not None
        line = (await asyncio.wait_for(emulator.stderr.readline(), timeout=30)).decode()
        assert f":{port}" in line
        yield f"http://127.0.0.1:{port}"
    finally:
        emulator.terminate()
        await emulator.wait()


async def _start(*args: str, cwd: Path | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *DIAL,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
        cwd=cwd,
    )


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    return await _finish(await _start(*args, cwd=cwd))


async def _until_progress(journal: Path, process: asyncio.subprocess.Process, calls: int) -> None:
    for _ in range(600):  # up to 60 s
        counts = _journal_counts(journal)
        if counts.get("created", 0) + counts.get("ended", 0) >= calls:
            return
        if process.returncode is not None:
            break
        await asyncio.sleep(0.1)
    raise AssertionError(f"the dialer made no progress: {_journal_counts(journal)}")


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("aioretell dial:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("interrupt", ["SIGINT", "SIGINT twice", "SIGKILL"])
async def test_the_readme_command_resumes_after_an_interruption(
    tmp_path: Path, interrupt: str
) -> None:
    """No key: the in-process emulator. Interrupted mid-campaign, the same command again
    finishes the campaign, and the emulator's record shows every lead dialled once."""
    wanted = numbers(LEADS // 2, "212") + numbers(LEADS // 2, "415")
    write_csv(tmp_path / "leads.csv", wanted)
    command = ("leads.csv", "--from-number", FROM, "--concurrency", "10", "--cps", "80")
    journal = tmp_path / "leads.journal.db"
    first = await _start(*command, cwd=tmp_path)
    try:
        await _until_progress(journal, first, 30)
    except BaseException:
        first.kill()
        await first.wait()
        raise
    else:
        if interrupt == "SIGKILL":
            first.send_signal(signal.SIGKILL)
        else:
            first.send_signal(signal.SIGINT)
            if interrupt == "SIGINT twice":
                await asyncio.sleep(0.05)
                first.send_signal(signal.SIGINT)
    code, _, err = await _finish(first)
    assert code == (-9 if interrupt == "SIGKILL" else 130), err
    at_stop = _journal_counts(journal)
    assert at_stop.get("pending", 0) > 0, at_stop  # stopped mid-campaign, not after it

    code, out, err = await _run(*command, cwd=tmp_path)
    assert code == 0, err
    assert "Resuming campaign" in err and "Traceback" not in err
    if interrupt == "SIGKILL":
        assert "Took the journal over from a dialer that stopped without releasing it" in err
    assert _journal_counts(journal) == {"ended": LEADS}
    assert dialled(tmp_path / "leads.journal.emulator.ndjson") == dict.fromkeys(wanted, 1)
    # And once more: a finished campaign places nothing.
    code, out, err = await _run(*command, cwd=tmp_path)
    assert code == 0 and "0 calls placed" in out, err


async def test_sigkill_then_resume_against_a_server(tmp_path: Path) -> None:
    async with emulator_process() as base_url:
        wanted = numbers(LEADS // 2, "212") + numbers(LEADS // 2, "415")
        csv = write_csv(tmp_path / "leads.csv", wanted)
        journal = tmp_path / "campaign.db"
        command = (
            *(str(csv), "--from-number", FROM),
            *("--base-url", base_url, "--api-key", API_KEY, "--journal", str(journal)),
            *("--cps", "50", "--concurrency", "10", "--poll-interval", "0.2", "--yes"),
            # This emulator's list-calls is current; Retell's may lag (60 s by default).
            *("--lookup-grace", "1"),
        )
        first = await _start(*command)
        try:
            await _until_progress(journal, first, 30)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        at_kill = _journal_counts(journal)
        assert at_kill.get("pending", 0) > 0, at_kill

        code, _, err = await _run(*command)
        assert code == 0, err
        assert "Resuming campaign" in err
        assert _journal_counts(journal) == {"ended": LEADS}
        counts_by_number = await calls_per_number(base_url, _campaign_id(journal))
        assert counts_by_number == dict.fromkeys(wanted, 1)


async def test_a_second_dialer_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    async with emulator_process() as base_url:
        wanted = numbers(LEADS)
        csv = write_csv(tmp_path / "leads.csv", wanted)
        journal = tmp_path / "campaign.db"
        command = (
            *(str(csv), "--from-number", FROM, "--journal", str(journal)),
            *("--base-url", base_url, "--api-key", API_KEY, "--cps", "40", "--yes"),
        )
        first = await _start(*command)
        try:
            await _until_progress(journal, first, 10)
            code, _, err = await _run(*command)
            assert code == 1, err
            line = _one_line_error(err)
            host = socket.gethostname()
            assert f"is in use by another dialer (pid {first.pid} on {host}" in line
            code, _, err = await _finish(first)
            assert code == 0, err
        finally:
            if first.returncode is None:
                first.kill()
                await first.wait()
        assert _journal_counts(journal) == {"ended": LEADS}
        assert await calls_per_number(base_url, _campaign_id(journal)) == dict.fromkeys(wanted, 1)


async def test_a_wrong_key_stops_at_once_and_the_right_key_resumes(tmp_path: Path) -> None:
    async with emulator_process() as base_url:
        wanted = numbers(50)
        csv = write_csv(tmp_path / "leads.csv", wanted)
        journal = tmp_path / "campaign.db"
        command = (
            str(csv),
            "--from-number",
            FROM,
            "--journal",
            str(journal),
            "--yes",
            "--base-url",
        )
        code, _, err = await _run(*command, base_url, "--api-key", "key_wrong")
        assert code == 1, err
        line = _one_line_error(err)
        assert "Retell refused the API key (401" in line and "50 leads are not finished" in line
        assert "key_wrong" not in err
        assert _journal_counts(journal) == {"pending": 50}

        code, out, err = await _run(*command, base_url, "--api-key", API_KEY)
        assert code == 0, err
        assert "50 calls placed" in out
        assert await calls_per_number(base_url, _campaign_id(journal)) == dict.fromkeys(wanted, 1)


async def test_an_unknown_agent_stops_before_any_call(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(5))
    code, _, err = await _run(str(csv), "--from-number", FROM, "--agent-id", "agent_nobody")
    assert code == 1, err
    assert "--agent-id agent_nobody is not an agent of this account" in _one_line_error(err)
    assert _journal_counts(tmp_path / "leads.journal.db") == {"pending": 5}


async def test_an_unreachable_server_fails_fast(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(5))
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    code, _, err = await _run(
        str(csv), "--from-number", FROM, "--base-url", url, "--api-key", "k", "--yes"
    )
    assert code == 1, err
    assert f"cannot reach {url}" in _one_line_error(err)
    assert _journal_counts(tmp_path / "leads.journal.db") == {"pending": 5}
