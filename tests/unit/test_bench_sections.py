"""docs/benchmarks.md keeps every standalone benchmark's section when another one writes."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import run, sections


def test_replace_appends_then_replaces_only_its_own_section() -> None:
    text = sections.replace("# Benchmarks\n", "a", "A1")
    text = sections.replace(text, "b", "B1")
    text = sections.replace(text, "a", "A2")
    assert "A1" not in text and "A2" in text and "B1" in text
    assert list(sections.sections(text)) == ["a", "b"]


def test_the_full_run_keeps_the_standalone_sections(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    sections.write("shared-pacing", "## Shared pacing\n\n42 creates/s", doc)
    args = argparse.Namespace(out=tmp_path, json=None)
    env = {"python": "x", "machine": "y", "date": "z"}
    report = run.Report()
    assert run.write_results(report, env, args) == 0
    text = doc.read_text(encoding="utf-8")
    assert "42 creates/s" in text
    assert text.count("<!-- section: shared-pacing -->") == 1
