"""The journal's state machine, its persistence, and refusing someone else's journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aioretell.dial import journal as j
from aioretell.dial.journal import CampaignInfo, Journal, JournalError, TransitionError
from aioretell.dial.leads import load_leads

from .conftest import FROM, new_journal, numbers, write_csv


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    csv = write_csv(tmp_path / "leads.csv", [*numbers(3), "not-a-number"])
    with new_journal(tmp_path, csv) as opened:
        yield opened


def test_rows_start_pending_and_rejected(journal: Journal) -> None:
    assert journal.counts() == {j.PENDING: 3, j.REJECTED: 1}
    rejected = journal.get("L5")
    assert rejected.terminal
    assert "not an E.164" in (rejected.reason or "")
    assert journal.get("L2").variables == {"name": "Lead 0"}


def test_happy_path_is_committed_at_each_step(tmp_path: Path, journal: Journal) -> None:
    row = journal.get("L2")
    journal.transition(row, j.DISPATCHING)
    journal.transition(row, j.CREATED, call_id="call_1", create_ms=3.5)
    with Journal(tmp_path / "j.db") as other:  # another connection sees each commit
        assert other.get("L2").state == j.CREATED
        assert other.get("L2").call_id == "call_1"
    journal.transition(row, j.ENDED, call_status="ended", disconnection_reason="user_hangup")
    assert journal.get("L2").terminal
    assert row.disconnection_reason == "user_hangup"


@pytest.mark.parametrize(
    ("path", "forbidden"),
    [
        ([], j.CREATED),  # pending cannot skip dispatching
        ([], j.ENDED),
        ([j.DISPATCHING, j.CREATED], j.DISPATCHING),  # created is never dialled again
        ([j.DISPATCHING, j.CREATED, j.ENDED], j.PENDING),  # terminal stays terminal
        ([j.DISPATCHING, j.FAILED], j.PENDING),
    ],
)
def test_forbidden_transitions(journal: Journal, path: list[str], forbidden: str) -> None:
    row = journal.get("L2")
    for state in path:
        journal.transition(row, state)
    with pytest.raises(TransitionError, match="not allowed"):
        journal.transition(row, forbidden)
    assert journal.get("L2").state == (path[-1] if path else j.PENDING)


def test_rejected_rows_never_move(journal: Journal) -> None:
    with pytest.raises(TransitionError):
        journal.transition(journal.get("L5"), j.DISPATCHING)


def test_a_stale_row_is_refused(journal: Journal) -> None:
    first, second = journal.get("L2"), journal.get("L2")
    journal.transition(first, j.DISPATCHING)
    with pytest.raises(TransitionError, match="does not hold it as pending"):
        journal.transition(second, j.DISPATCHING)


def test_requeue_and_unknown_fields(journal: Journal) -> None:
    row = journal.get("L3")
    journal.transition(row, j.DISPATCHING)
    journal.transition(row, j.CREATED, call_id="call_1")
    journal.transition(row, j.PENDING, attempt=2, not_before=5.0)
    assert (journal.get("L3").attempt, journal.get("L3").not_before) == (2, 5.0)
    with pytest.raises(TypeError, match="not journal fields"):
        journal.transition(row, j.DISPATCHING, state="ended")


def test_wal_mode(journal: Journal) -> None:
    assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_another_csv_or_campaign_is_refused(tmp_path: Path, journal: Journal) -> None:
    found = journal.campaign()
    assert found is not None
    other_csv = write_csv(tmp_path / "other.csv", numbers(2))
    other = load_leads(other_csv)
    info = CampaignInfo("cmp_new", other.sha256, "other.csv", FROM, "", "test")
    with pytest.raises(JournalError, match="written for another CSV"):
        journal.check_campaign(info)
    same_file = CampaignInfo("cmp_new", found.csv_sha256, "leads.csv", "+14155550199", "", "test")
    with pytest.raises(JournalError, match="--from-number was"):
        journal.check_campaign(same_file)
    target = CampaignInfo("cmp_new", found.csv_sha256, "leads.csv", FROM, "", "https://x")
    with pytest.raises(JournalError, match="server was 'test'"):
        journal.check_campaign(target)
    same = CampaignInfo("cmp_new", found.csv_sha256, "renamed.csv", FROM, "", "test")
    assert journal.check_campaign(same).campaign_id == found.campaign_id


def test_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a journal"):
        Journal(path)
