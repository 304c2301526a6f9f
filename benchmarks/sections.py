"""Named sections of docs/benchmarks.md that a standalone benchmark writes and replaces.

A section sits between ``<!-- section: NAME -->`` and ``<!-- end: NAME -->``. Running one
benchmark replaces only its own section (appending it the first time), and the full run keeps
every section it does not write itself, so no measured number is lost by running another one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

_SECTION = re.compile(
    r"<!-- section: (?P<name>[\w-]+) -->\n.*?<!-- end: (?P=name) -->\n", re.DOTALL
)


def render(name: str, body: str) -> str:
    return f"<!-- section: {name} -->\n{body.rstrip()}\n<!-- end: {name} -->\n"


def sections(text: str) -> dict[str, str]:
    """Every marked section of ``text``, whole (markers included), by name."""
    return {m["name"]: m.group(0) for m in _SECTION.finditer(text)}


def replace(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` set to ``body`` (appended when it is not there yet)."""
    block = render(name, body)
    if name in sections(text):
        return _SECTION.sub(lambda m: block if m["name"] == name else m.group(0), text)
    return text.rstrip("\n") + "\n\n" + block


def write(name: str, body: str, path: Path = DOC) -> None:
    """Replace section ``name`` of ``path`` atomically (a crash leaves the old file whole)."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(replace(old, name, body), encoding="utf-8")
    os.replace(partial, path)
