"""The chaos run's checks on synthetic emulator records: each one can fail, and says so."""

from __future__ import annotations

import math

import pytest

from aioretell.emulator import EmulatorConfig, ManualClock
from aioretell.emulator.state import EmulatorState
from benchmarks.chaos_checks import (
    CallSpan,
    Limits,
    answer_gaps,
    binding_rate,
    busiest_second,
    create_answers,
    dialing,
    mean_hold,
    peak_live_calls,
    slot_time,
    stretch_table,
    stretches,
    table,
    throughput,
    verdict,
)


def span(start: float, end: float, number: str = "+1", admitted: bool = True) -> CallSpan:
    return CallSpan(number, start, end, admitted)


def test_dialing_names_missing_repeated_and_stranger_numbers() -> None:
    good = dialing(["+1", "+2", "+3"], ["+3", "+1", "+2"])
    assert good.exactly_once and good.dialed_once == 3
    bad = dialing(["+1", "+2", "+3"], ["+1", "+1", "+2", "+9"])
    assert not bad.exactly_once
    assert bad.missing == ("+3",)
    assert bad.repeated == {"+1": 2}
    assert bad.strangers == ("+9",)
    assert bad.dialed_once == 1


def test_peak_live_calls_from_overlapping_intervals() -> None:
    assert peak_live_calls([]) == 0
    assert peak_live_calls([span(0, 1), span(2, 3)]) == 1
    assert peak_live_calls([span(0, 10), span(1, 3), span(2, 4), span(3.5, 5)]) == 3
    # A call ending at the instant another starts has freed its slot.
    assert peak_live_calls([span(0, 1), span(1, 2), span(2, 3)]) == 1
    # Unordered input.
    assert peak_live_calls([span(5, 6), span(0, 10), span(5.5, 7)]) == 3


def test_a_create_refused_a_line_counts_as_one_over_what_was_live() -> None:
    live = [span(0, 10), span(0, 10)]
    assert peak_live_calls([*live, span(5, 5, admitted=False)]) == 3
    # ...but holds no slot afterwards.
    assert peak_live_calls([span(0, 1, admitted=False), span(0.5, 2), span(0.6, 2)]) == 2


def test_call_spans_read_the_emulator_record() -> None:
    clock = ManualClock(100.0)
    config = EmulatorConfig(
        api_key="k", clock=clock, concurrency_limit=1, call_duration_s=2.0, ring_duration_s=0.5
    )
    state = EmulatorState(config)
    first = state.create_call("phone_call", "agent_emulator_default", to_number="+1", dial=True)
    clock.advance(1.0)
    second = state.create_call("phone_call", "agent_emulator_default", to_number="+2", dial=True)
    one, two = CallSpan.of(first), CallSpan.of(second)
    assert (one.to_number, one.start, one.end, one.admitted) == ("+1", 100.0, 102.5, True)
    assert (two.to_number, two.start, two.end, two.admitted) == ("+2", 101.0, 101.0, False)
    assert peak_live_calls([one, two]) == 2  # the emulator's limit is 1: the fleet overshot


def test_busiest_second_uses_half_open_windows() -> None:
    assert busiest_second([]) == 0
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert busiest_second([0.0, 1.0, 2.0]) == 1
    assert busiest_second([3.0, 0.1, 0.2, 0.3]) == 3


def test_create_answers_count_only_creates() -> None:
    timeline = [
        (0.0, "createPhoneCall", 201),
        (0.1, "createPhoneCall", 429),
        (0.2, "listCalls", 429),
        (0.3, "createPhoneCall", 201),
        (0.4, "createPhoneCall", 500),
    ]
    answers = create_answers(timeline)
    assert (answers.accepted, answers.rate_limited, answers.other) == (2, 1, 1)
    assert answers.rate_limited_share == pytest.approx(0.25)
    assert create_answers([]).rate_limited_share == 0.0


def test_throughput_and_the_binding_limit() -> None:
    assert throughput([0.0, 1.0, 2.0, 3.0, 4.0]) == pytest.approx(1.0)
    assert math.isnan(throughput([1.0]))
    assert mean_hold([span(0, 1), span(0, 3), span(0, 0, admitted=False)]) == pytest.approx(2.0)
    assert binding_rate(25, 50, 2.5) == pytest.approx(20.0)  # concurrency binds
    assert binding_rate(25, 50, 1.5) == pytest.approx(25.0)  # the rate binds


def _verdict(
    spans: list[CallSpan], timeline: list[tuple[float, str, int]], **kw: int
) -> dict[str, bool | None]:
    leads = sorted({s.to_number for s in spans})
    checks = verdict(
        leads=leads,
        spans=spans,
        timeline=timeline,
        unfinished=kw.get("unfinished", 0),
        limits=Limits(concurrency=2, cps=2),
    )
    return {c.name.split(" (")[0]: c.ok for c in checks}


def test_verdict_passes_a_clean_run_and_fails_each_breach() -> None:
    clean = [span(i * 0.5, i * 0.5 + 1.0, f"+{i}") for i in range(10)]
    timeline = [(s.start, "createPhoneCall", 201) for s in clean]
    assert all(_verdict(clean, timeline).values())

    twice = [*clean, span(6.0, 6.5, "+3")]
    assert _verdict(twice, timeline)["leads dialled exactly once"] is False

    crowded = [span(i * 0.6, i * 0.6 + 2.0, f"+{i}") for i in range(10)]
    result = _verdict(crowded, [(s.start, "createPhoneCall", 201) for s in crowded])
    assert result["most live calls at once"] is False

    bursty = [span(i * 0.3, i * 0.3 + 0.1, f"+{i}") for i in range(10)]
    result = _verdict(bursty, [(s.start, "createPhoneCall", 201) for s in bursty])
    assert result["most calls created in any 1 s window"] is False
    # A create held before it was handled counts when it arrived, as the account's window did.
    pair = [span(2.0, 2.1, "+1"), span(2.5, 2.6, "+2")]
    held = CallSpan("+3", start=2.2, end=2.3, counted_at=1.0)  # arrived at 1.0, held 1.2 s
    assert _verdict([*pair, held], timeline)["most calls created in any 1 s window"] is True
    not_held = CallSpan("+3", start=2.2, end=2.3)
    assert _verdict([*pair, not_held], timeline)["most calls created in any 1 s window"] is False

    refused = [*timeline, (9.0, "createPhoneCall", 429)]
    assert _verdict(clean, refused)["creates answered 429"] is False

    assert _verdict(clean, timeline, unfinished=1)["leads not in a final state"] is False

    slow = [span(i * 5.0, i * 5.0 + 1.0, f"+{i}") for i in range(10)]
    result = _verdict(slow, [(s.start, "createPhoneCall", 201) for s in slow])
    assert result["throughput, first create to last"] is False


def test_table_marks_failures() -> None:
    checks = verdict(
        leads=["+1"], spans=[], timeline=[], unfinished=0, limits=Limits(1, 1, 0.01, None)
    )
    text = table(checks)
    assert "| leads dialled exactly once | 0 of 1; never: 1 | 1 of 1 | FAILED |" in text
    assert text.count("| ok |") == len(checks) - 1
    shown = verdict(
        leads=[], spans=[], timeline=[], unfinished=0, limits=Limits(1, 1, 0.01, None),
        requests=[0.0, 0.1, 0.2],
    )  # fmt: skip
    assert shown[-1].ok is None
    assert "| most create requests in any 1 s window, accepted or refused | 3 |  |  |" in table(
        shown
    )


def test_stretches_count_creates_refusals_and_mean_live_calls() -> None:
    spans = [span(0.0, 10.0, "+1"), span(5.0, 15.0, "+2"), span(12.0, 12.0, "+3", admitted=False)]
    timeline = [(1.0, "createPhoneCall", 429), (11.0, "createPhoneCall", 429), (11.5, "x", 429)]
    rows = stretches(spans, timeline, every=10.0)
    assert [(r.start, r.created, r.rate_limited) for r in rows] == [(0.0, 2, 1), (10.0, 1, 1)]
    # 0-10: one call all along, another for 5 s; 10-20: one call for 5 s.
    assert [r.mean_live for r in rows] == [pytest.approx(1.5), pytest.approx(0.5)]
    assert stretches([], []) == []
    assert "| 0-10 | 2 | 0.2 | 1 | 1.5 |" in stretch_table(rows)


def test_slot_time_splits_claim_to_recorded_end() -> None:
    """Claimed at 0, created at 0.1, ended at 2.1, recorded at 2.4 (and a second lead): the
    three parts are means over the leads the journal and the emulator both know."""
    spans = [
        span(0.1, 2.1, "+1"),
        span(1.2, 2.2, "+2"),
        span(3.0, 3.0, "+3", admitted=False),  # refused a line: held no slot
        span(4.0, 5.0, "+4"),  # not in the journal's ended rows
    ]
    journal = {"+1": (0.0, 2.4), "+2": (1.0, 2.3), "+3": (2.9, 3.5)}
    got = slot_time(spans, journal)
    assert got is not None and got.leads == 2
    assert got.to_account == pytest.approx(0.15)
    assert got.on_line == pytest.approx(1.5)
    assert got.to_journal == pytest.approx(0.2)
    assert got.to_journal_p90 == pytest.approx(0.3)
    assert got.held == pytest.approx(1.85)
    assert slot_time(spans, {}) is None


def test_answer_gaps_between_answers_to_one_operation() -> None:
    timeline = [(3.0, "getConcurrency", 200), (1.0, "getConcurrency", 200), (2.0, "x", 200)]
    timeline.append((3.5, "getConcurrency", 500))
    assert answer_gaps(timeline, "getConcurrency") == [2.0, 0.5]
    assert answer_gaps(timeline, "listCalls") == []
