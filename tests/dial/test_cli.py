"""``aioretell dial`` end to end: messages, summary, NDJSON, resume, refusals, bad options,
the server recorded, and the confirmation before a real server is dialled."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aioretell.cli import main
from aioretell.emulator import Emulator

from .conftest import API_KEY, FROM, dialled, numbers, write_csv


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    monkeypatch.delenv("RETELL_BASE_URL", raising=False)


def test_in_process_campaign_then_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Numbers ending 13 are busy on the in-process emulator.
    csv = write_csv(tmp_path / "leads.csv", [*numbers(15), "415-555-0100", "+12125550100"])
    journal, out = tmp_path / "c.db", tmp_path / "r.ndjson"
    args = ["dial", str(csv), "--from-number", FROM, "--journal", str(journal)]
    args += ["--out", str(out), "--cps", "200", "--concurrency", "20", "--poll-interval", "0.1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "emulator started in-process" in captured.err
    assert "Following calls by polling list-calls every 0.1 s" in captured.err
    assert "line 17: '415-555-0100' is not an E.164 number" in captured.err
    assert "line 18: duplicate of line 2" in captured.err
    assert "Outcome by lead" in captured.out
    assert "dial_busy" in captured.out
    assert "create latency: p50" in captured.out
    records = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert [r["line"] for r in records] == list(range(2, 19))
    assert {r["state"] for r in records[:15]} == {"ended"}
    assert [r["state"] for r in records[15:]] == ["rejected", "rejected"]
    busy = next(r for r in records if r["to_number"] == "+12125550113")
    assert busy["disconnection_reason"] == "dial_busy"

    # The same command again: nothing is dialled twice.
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "Resuming campaign" in captured.err
    assert "0 calls placed" in captured.out

    # Another number with that journal is refused, without suggesting a step that redials.
    other = ["dial", str(csv), "--from-number", "+14155550199", "--journal", str(journal)]
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "its --from-number was '+14155550100', now '+14155550199'" in err
    assert "a new --journal would start a new campaign that dials again the 15 leads" in err


def test_a_csv_with_added_leads_dials_only_those(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, added = numbers(10), numbers(5, "646")
    csv = write_csv(tmp_path / "leads.csv", first)
    args = ["dial", str(csv), "--from-number", FROM, "--cps", "200", "--poll-interval", "0.1"]
    assert main(args) == 0
    capsys.readouterr()
    write_csv(tmp_path / "leads.csv", [*added[:2], *first, *added[2:]])  # lines move too
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "leads.csv is not the file of the last run: 5 new leads added" in captured.err
    assert "10 it already had are left as they are (none is dialled again)" in captured.err
    assert "5 calls placed" in captured.out
    assert dialled(tmp_path / "leads.journal.emulator.ndjson") == dict.fromkeys(first + added, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"name\nAda\n", "no phone_number (or to_number) column"),
        ("phone_number\n+1415555".encode("utf-16"), "UTF-16"),
    ],
)
def test_unusable_files_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    csv = tmp_path / "leads.csv"
    csv.write_bytes(content)
    assert main(["dial", str(csv), "--from-number", FROM]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "leads.journal.db").exists()


def test_bad_from_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(1))
    assert main(["dial", str(csv), "--from-number", "4155550100"]) == 2
    assert "is not E.164" in capsys.readouterr().err


def test_bad_from_number_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(1))
    assert main(["dial", str(csv), "--from-number", ""]) == 2
    err = capsys.readouterr().err
    assert "--from-number" in err
    assert len(err.strip().splitlines()) == 1


# -- bad options: one line naming the option, exit 2, and nothing touched --------------------

BAD_OPTIONS = [
    (["--cps", "nan"], "--cps"),
    (["--cps", "inf"], "--cps"),
    (["--cps", "-1"], "--cps"),
    (["--cps", "0"], "--cps"),
    (["--cps", ""], "--cps"),
    (["--cps", "1e12"], "--cps"),
    (["--concurrency", "0"], "--concurrency"),
    (["--concurrency", "abc"], "--concurrency"),
    (["--concurrency", "9" * 30], "--concurrency"),
    (["--redial", "-1"], "--redial"),
    (["--redial", "2.5"], "--redial"),
    (["--redial-delay", "-5"], "--redial-delay"),
    (["--redial-delay", "inf"], "--redial-delay"),
    (["--redial-delay", "1e400"], "--redial-delay"),
    (["--poll-interval", "0"], "--poll-interval"),
    (["--poll-interval", "-1"], "--poll-interval"),
    (["--poll-interval", "nan"], "--poll-interval"),
    (["--poll-interval", "1e9"], "--poll-interval"),
    (["--reconcile-interval", "0"], "--reconcile-interval"),
    (["--reconcile-interval", "nan"], "--reconcile-interval"),
    (["--encoding", "no-such-codec"], "--encoding"),
    (["--encoding", "base64"], "--encoding"),
    (["--base-url", "ftp://example.com", "--api-key", API_KEY], "--base-url"),
    (["--base-url", "", "--api-key", API_KEY], "--base-url"),
    (["--base-url", "http://127.0.0.1:9"], "--base-url"),  # a URL with no key to use it
    (["--api-key", ""], "--api-key"),
    (["--agent-id", " "], "--agent-id"),
    (["--listen", "8765"], "--listen"),
]


@pytest.mark.parametrize(("extra", "option"), BAD_OPTIONS)
def test_bad_option_is_one_line_exit_2_before_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], option: str
) -> None:
    csv = write_csv(tmp_path / "leads.csv", numbers(2))
    journal = tmp_path / "c.db"
    command = ["dial", str(csv), "--from-number", FROM, "--journal", str(journal), *extra]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert option in err
    assert "Traceback" not in err
    assert not journal.exists()


def _paths(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "folder").mkdir()
    return {
        "folder": tmp_path / "folder",
        "missing": tmp_path / "no-such-dir" / "x",
        "leads": tmp_path / "leads.csv",
        "journal": tmp_path / "c.db",
    }


@pytest.mark.parametrize(
    ("option", "where", "message"),
    [
        ("--out", "folder", "is a directory"),
        ("--out", "missing", "does not exist"),
        ("--out", "leads", "is the leads file"),
        ("--out", "journal", "is the journal"),
        ("--journal", "folder", "is a directory"),
        ("--journal", "missing", "does not exist"),
        ("--journal", "leads", "is the leads file"),
    ],
)
def test_unusable_paths_are_refused_before_dialling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, where: str, message: str
) -> None:
    paths = _paths(tmp_path)
    csv = write_csv(paths["leads"], numbers(2))
    before = csv.read_bytes()
    command = ["dial", str(csv), "--from-number", FROM]
    if option == "--out":
        command += ["--journal", str(paths["journal"])]
    command += [option, str(paths[where])]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert option in err and message in err
    assert not paths["journal"].exists()
    assert not (tmp_path / "leads.journal.db").exists()
    assert csv.read_bytes() == before
    # --out on a folder used to leave FOLDER.partial beside it after the whole campaign.
    assert not (tmp_path / "folder.partial").exists()


# -- encodings and files that are not text --------------------------------------------------


def test_cp1252_file_is_refused_with_the_fix_then_read_with_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "leads.csv"
    csv.write_bytes("phone_number,name\n+12125550101,Ana\n+12125550102,José\n".encode("cp1252"))
    journal, out = tmp_path / "c.db", tmp_path / "r.ndjson"
    command = ["dial", str(csv), "--from-number", FROM, "--journal", str(journal)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "leads.csv:3: byte 0xe9 is not UTF-8" in err
    assert "--encoding cp1252" in err
    assert not journal.exists()

    command += ["--encoding", "cp1252", "--out", str(out), "--poll-interval", "0.1"]
    assert main(command) == 0
    records = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert [(r["state"], r["variables"]["name"]) for r in records] == [
        ("ended", "Ana"),
        ("ended", "José"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x1f\x8b\x08\x00" + bytes(range(256)), "not a text CSV (gzip-compressed"),
        (b"PK\x03\x04" + bytes(64), "not a text CSV (a ZIP archive or an Excel .xlsx"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(64), "not a text CSV (it holds NUL bytes"),
    ],
)
def test_binary_files_are_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    csv = tmp_path / "leads.csv"
    csv.write_bytes(content)
    assert main(["dial", str(csv), "--from-number", FROM]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "leads.journal.db").exists()


# -- a real server: the URL actually used, and a confirmation first -------------------------


def _default_sigint() -> None:
    # A shell running the tests in the background may ignore SIGINT; the child must not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def _dial_process(
    *args: str, env: dict[str, str], stdin: Any = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aioretell", "dial", *args),
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        preexec_fn=_default_sigint,
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RETELL_API_KEY", "RETELL_BASE_URL")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _journal_target(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT value FROM campaign WHERE key = 'target'").fetchone()[0])
    finally:
        db.close()


async def test_retell_base_url_is_dialled_recorded_and_printed(
    tmp_path: Path, make_emulator: Callable[..., Any]
) -> None:
    emu: Emulator = await make_emulator()
    csv = write_csv(tmp_path / "leads.csv", numbers(3))
    journal = tmp_path / "c.db"
    env = _env(RETELL_API_KEY=API_KEY, RETELL_BASE_URL=emu.base_url + "/")
    args = (str(csv), "--from-number", FROM, "--journal", str(journal), "--poll-interval", "0.1")
    proc = await _dial_process(*args, "--yes", env=env)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert f"About to place real calls through {emu.base_url}: 3 leads" in err.decode()
    assert _journal_target(journal) == emu.base_url
    assert sorted(emu.state.dialed_numbers()) == numbers(3)

    # The same journal with $RETELL_BASE_URL gone (the production API) is another server.
    proc = await _dial_process(*args, "--yes", env=_env(RETELL_API_KEY=API_KEY))
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    assert f"its server was '{emu.base_url}', now 'https://api.retellai.com'" in err.decode()
    assert len(emu.state.dialed_numbers()) == 3


async def test_no_terminal_and_no_yes_dials_nobody(
    tmp_path: Path, make_emulator: Callable[..., Any]
) -> None:
    emu: Emulator = await make_emulator()
    csv = write_csv(tmp_path / "leads.csv", numbers(2))
    journal = tmp_path / "c.db"
    env = _env(RETELL_API_KEY=API_KEY)
    args = (str(csv), "--from-number", FROM, "--journal", str(journal))
    proc = await _dial_process(*args, "--base-url", emu.base_url, "--agent-id", "agent_x", env=env)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2
    assert lines == [
        f"About to place real calls through {emu.base_url}: 2 leads of leads.csv, from {FROM}, "
        "agent agent_x.",
        "aioretell dial: no terminal to confirm on; pass --yes to dial without asking",
    ]
    assert not journal.exists()
    assert emu.requests == []


async def _prompted(tmp_path: Path, emu: Emulator) -> tuple[asyncio.subprocess.Process, int]:
    """A dialer against ``emu`` whose stdin is a terminal, stopped at its question."""
    csv = write_csv(tmp_path / "leads.csv", numbers(2))
    args = (str(csv), "--from-number", FROM, "--journal", str(tmp_path / "c.db"))
    args += ("--base-url", emu.base_url, "--poll-interval", "0.1")
    controller, terminal = os.openpty()
    try:
        proc = await _dial_process(*args, env=_env(RETELL_API_KEY=API_KEY), stdin=terminal)
    finally:
        os.close(terminal)
    assert proc.stderr is not None
    shown = await asyncio.wait_for(proc.stderr.readuntil(b"Dial them? [y/N] "), timeout=60)
    assert b"About to place real calls through" in shown
    assert emu.requests == []
    return proc, controller


async def test_terminal_yes_dials(tmp_path: Path, make_emulator: Callable[..., Any]) -> None:
    emu: Emulator = await make_emulator()
    proc, controller = await _prompted(tmp_path, emu)
    try:
        os.write(controller, b"y\n")
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        os.close(controller)
    assert proc.returncode == 0, err.decode()
    assert sorted(emu.state.dialed_numbers()) == numbers(2)


@pytest.mark.parametrize("answer", [b"\n", b"no\n", b"\x04"])
async def test_terminal_no_dials_nobody(
    tmp_path: Path, make_emulator: Callable[..., Any], answer: bytes
) -> None:
    emu: Emulator = await make_emulator()
    proc, controller = await _prompted(tmp_path, emu)
    try:
        os.write(controller, answer)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        os.close(controller)
    assert proc.returncode == 1
    assert err.decode().strip() == "Not confirmed: nothing was dialled."
    assert emu.requests == []
    assert not (tmp_path / "c.db").exists()


async def test_ctrl_c_at_the_prompt(tmp_path: Path, make_emulator: Callable[..., Any]) -> None:
    emu: Emulator = await make_emulator()
    proc, controller = await _prompted(tmp_path, emu)
    try:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        os.close(controller)
    assert proc.returncode == 130
    assert err.decode().strip() == "Interrupted: nothing was dialled."
    assert emu.requests == []
