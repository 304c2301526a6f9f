"""``aioretell dial`` end to end in-process: messages, summary, NDJSON, resume, refusals."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from aioretell.cli import main

from .conftest import FROM, dialled, numbers, write_csv


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
