"""benchmarks/hot_path's arithmetic and verdicts, on made-up rounds (no benchmark is run)."""

from __future__ import annotations

from benchmarks import hot_path
from benchmarks.rss import RssResult, RssSample


def cell(concurrency: int = 64, scheme: str = "http") -> hot_path.Cell:
    c = hot_path.Cell(scheme, "asyncio", concurrency)
    rounds = {
        # A machine that drifts: each round slower than the one before, for every variant.
        "bare protocol": [10.0, 20.0, 30.0],
        "FastTransport alone": [11.0, 22.0, 33.0],
        "aioretell fast": [14.0, 28.0, 42.0],
        "AiohttpTransport alone": [45.0, 90.0, 135.0],
        "aioretell aiohttp": [60.0, 120.0, 180.0],
        "aiohttp tuned": [58.0, 112.0, 180.0],
        "retell-sdk aiohttp": [300.0, 600.0, 900.0],
    }
    for name, values in rounds.items():
        c.cpu_us[name] = values
        c.rps[name] = [1000.0] * 3
        c.requests[name] = 100
        c.errors[name] = 0
    return c


def test_ratios_and_differences_are_medians_of_round_by_round_pairs() -> None:
    c = cell()
    # Drift cancels within each round: the ratio is 1.4 in every round.
    assert c.ratio("aioretell fast", "bare protocol") == 1.4
    assert c.difference("aioretell fast", "bare protocol") == 8.0  # 4, 8, 12
    assert c.median("bare protocol") == 20.0


def test_targets_say_which_are_met() -> None:
    rss = [
        RssResult("aioretell", 10_000, [RssSample(0, 100 * 1024, 1.0, 1, 1, 0, [])]),
        RssResult("aioretell fast", 10_000, [RssSample(0, 60 * 1024, 1.0, 1, 1, 0, [])]),
    ]
    rss_mib = {r.client: r.delta_mib()[0] for r in rss}
    verdicts = {t.text.split(" (")[0]: t for t in hot_path.targets([cell()], rss_mib)}
    assert verdicts["aioretell fast ÷ bare protocol"].met  # 1.4 <= 1.5
    assert verdicts["aioretell aiohttp ÷ aioretell fast"].measured == 60 / 14
    assert verdicts["aioretell aiohttp ÷ aioretell fast"].met  # 4.29 >= 4
    assert verdicts["retell-sdk aiohttp ÷ aioretell fast"].met  # 21.4 >= 20
    # Round by round 1.034, 1.071 and 1.0: their median is within 1.05.
    within = verdicts["aioretell aiohttp ÷ aiohttp tuned"]
    assert within.measured == 60 / 58 and within.met
    # 60 MiB against 100: more than half.
    assert not verdicts["peak memory, 10,000 in flight: aioretell fast ÷ aioretell aiohttp"].met


def test_the_report_marks_a_missed_target() -> None:
    slow = cell()
    slow.cpu_us["aioretell fast"] = [20.0, 40.0, 60.0]  # 2x the bare client: missed
    text = hot_path.render([slow], [], {"machine": "test"})
    assert (
        "| aioretell fast ÷ bare protocol (http, asyncio, c=64) | 2.00 | ≤ 1.5 | **no** |" in text
    )
    assert (
        "| FastTransport alone ÷ bare protocol (http, asyncio, c=64) | 1.10 | ≤ 1.5 | yes |" in text
    )
    assert "### http, asyncio, c = 64" in text


def test_aiohttp_against_tuned_aiohttp_at_every_concurrency_over_http() -> None:
    cells = [cell(1), cell(64), cell(1024), cell(64, "https")]
    cells[2].cpu_us["aioretell aiohttp"] = [70.0, 140.0, 210.0]  # 1.2x in every round
    rows = {t.text: t for t in hot_path.targets(cells, {})}
    assert rows["aioretell aiohttp ÷ aiohttp tuned (http, asyncio, c=1)"].met
    assert rows["aioretell aiohttp ÷ aiohttp tuned (http, asyncio, c=64)"].met
    slow = rows["aioretell aiohttp ÷ aiohttp tuned (http, asyncio, c=1,024)"]
    assert not slow.met and slow.measured > 1.05
    assert not [text for text in rows if "tuned (https" in text]


def test_batches_hold_at_least_the_concurrency() -> None:
    assert hot_path._batch_size(rate=100.0, concurrency=64, seconds=0.1) == 64
    assert hot_path._batch_size(rate=12_345.0, concurrency=64, seconds=0.1) == 1_200
