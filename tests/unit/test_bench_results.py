"""``python -m benchmarks`` writes every number before it draws the chart, so a plotting
failure (say matplotlib missing after minutes of measuring) costs the picture, not the run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.client_cpu import Comparison, Sample
from benchmarks.run import Report, parse_args, write_results

ENV = {"python": "CPython 3.x", "machine": "test box", "date": "today"}


def _report() -> Report:
    report = Report()
    comparison = Comparison("canned", "chat.retrieve", 16)
    for client, cpu in (("aioretell", 0.012), ("floor", 0.010), ("retell-sdk", 0.2)):
        comparison.requests[client] = 1000
        comparison.samples[client] = [Sample(1000, cpu, 0.1), Sample(1000, cpu * 1.1, 0.11)]
    report.comparisons.append(comparison)
    return report


def _args(tmp_path: Path) -> argparse.Namespace:
    out, raw = str(tmp_path / "out"), str(tmp_path / "raw.json")
    return parse_args(["--only", "fanout", "--out", out, "--json", raw])  # needs no extra


def test_numbers_are_on_disk_before_the_chart_is_drawn(tmp_path: Path) -> None:
    args = _args(tmp_path)
    drawn: list[Path] = []

    def draw(comparisons: Sequence[Comparison], path: Path, title: str) -> None:
        markdown = (tmp_path / "out" / "benchmarks.md").read_text(encoding="utf-8")
        assert "| chat.retrieve | 16 |" in markdown
        assert json.loads((tmp_path / "raw.json").read_text())["client_cpu"]
        assert "test box" in title
        path.write_bytes(b"png")
        drawn.append(path)

    assert write_results(_report(), ENV, args, draw) == 0
    assert drawn == [tmp_path / "out" / "benchmarks.png"]
    markdown = (tmp_path / "out" / "benchmarks.md").read_text(encoding="utf-8")
    assert "![requests per second against concurrency](benchmarks.png)" in markdown


def test_a_chart_that_fails_keeps_every_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(tmp_path)

    def draw(comparisons: Sequence[Comparison], path: Path, title: str) -> None:
        raise ModuleNotFoundError("No module named 'matplotlib'")

    assert write_results(_report(), ENV, args, draw) == 1
    markdown = (tmp_path / "out" / "benchmarks.md").read_text(encoding="utf-8")
    assert "| chat.retrieve | 16 |" in markdown
    assert "benchmarks.png" not in markdown  # no link to a picture that is not there
    assert json.loads((tmp_path / "raw.json").read_text())["client_cpu"]
    assert "the chart was not drawn (ModuleNotFoundError" in capsys.readouterr().err


def test_no_throughput_section_means_no_chart(tmp_path: Path) -> None:
    def draw(comparisons: Sequence[Comparison], path: Path, title: str) -> None:
        raise AssertionError("nothing to draw")

    assert write_results(Report(), ENV, _args(tmp_path), draw) == 0
    assert (tmp_path / "out" / "benchmarks.md").is_file()
