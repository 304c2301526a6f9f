"""SIGKILL mid-campaign, run the same command again: every lead called exactly once.

The emulator runs in its own process so its records outlive the dialer; they are read back
through the API (list-calls filtered on the campaign), not from the emulator's memory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

from .conftest import API_KEY, FROM, calls_per_number, numbers, write_csv

LEADS = 300


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


async def test_sigkill_then_resume_calls_everyone_exactly_once(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RETELL_API_KEY", "RETELL_BASE_URL")}
    emulator = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aioretell", "emulator", "--port", str(port)),
        *("--api-key", API_KEY, "--call-duration", "0.3", "--concurrency-limit", "1000"),
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert emulator.stderr is not None
        line = (await asyncio.wait_for(emulator.stderr.readline(), timeout=30)).decode()
        assert f":{port}" in line
        base_url = f"http://127.0.0.1:{port}"
        wanted = numbers(LEADS // 2, "212") + numbers(LEADS // 2, "415")
        csv = write_csv(tmp_path / "leads.csv", wanted)
        journal = tmp_path / "campaign.db"
        command = (
            *(sys.executable, "-m", "aioretell", "dial", str(csv), "--from-number", FROM),
            *("--base-url", base_url, "--api-key", API_KEY, "--journal", str(journal)),
            *("--cps", "50", "--concurrency", "10", "--poll-interval", "0.2", "--yes"),
        )
        first = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env
        )
        try:
            for _ in range(600):  # up to 60 s for the first 30 creates
                counts = _journal_counts(journal)
                if counts.get("created", 0) + counts.get("ended", 0) >= 30:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the dialer made no progress: {counts}")
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        at_kill = _journal_counts(journal)
        print("journal at SIGKILL:", at_kill)
        assert at_kill.get("pending", 0) > 0, at_kill  # killed mid-campaign, not after it

        second = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        _, err = await asyncio.wait_for(second.communicate(), timeout=120)
        assert second.returncode == 0, err.decode()
        assert "Resuming campaign" in err.decode()

        assert _journal_counts(journal) == {"ended": LEADS}
        counts_by_number = await calls_per_number(base_url, _campaign_id(journal))
        assert counts_by_number == dict.fromkeys(wanted, 1)
    finally:
        emulator.terminate()
        await emulator.wait()
