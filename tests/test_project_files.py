"""Project metadata: the licence file, ignored journals, and lint/type tools pinned exactly."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
nox_project = pytest.importorskip("nox.project")  # nox is in the dev extra


def pyproject() -> dict[str, Any]:
    data: dict[str, Any] = nox_project.load_toml(REPO / "pyproject.toml")
    return data


def dev_requirements() -> list[str]:
    return [r.strip() for r in pyproject()["project"]["optional-dependencies"]["dev"]]


def test_the_licence_pyproject_names_is_there_in_full() -> None:
    assert pyproject()["project"]["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    for landmark in (
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "2. Grant of Copyright License.",
        "9. Accepting Warranty or Additional Liability.",
        "END OF TERMS AND CONDITIONS",
        "APPENDIX: How to apply the Apache License to your work.",
    ):
        assert landmark in text, landmark
    assert len(text.splitlines()) > 190  # the full text, not a notice


def test_dialer_journals_are_ignored_wherever_they_are() -> None:
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [
        "leads.journal.db",
        "examples/leads.journal.db",
        "examples/leads.journal.db-wal",
        "examples/leads.journal.db-shm",
    ]
    done = subprocess.run(
        [git, "check-ignore", "--no-index", *paths],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sorted(done.stdout.split()) == sorted(paths)
    kept = subprocess.run(
        [git, "check-ignore", "--no-index", "-q", "examples/leads.csv"], cwd=REPO, check=False
    )
    assert kept.returncode == 1  # the leads themselves stay tracked


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_lint_and_type_tools_are_pinned_exactly(tool: str) -> None:
    pins = [r for r in dev_requirements() if r.split("==")[0] == tool]
    assert len(pins) == 1, f"{tool} must be pinned with == in the dev extra: {dev_requirements()}"
    version = pins[0].split("==")[1]
    # The environment running the tests was installed from the dev extra: the same tool.
    assert importlib.metadata.version(tool) == version


def _noxfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aioretell_noxfile", REPO / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _RecordingSession:
    def __init__(self) -> None:
        self.installed: list[str] = []
        self.ran: list[tuple[str, ...]] = []

    def install(self, *args: str) -> None:
        self.installed.extend(args)

    def run(self, *args: str) -> None:
        self.ran.append(args)


def test_nox_lint_session_installs_the_pinned_ruff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # nox runs sessions from the noxfile's directory
    noxfile = _noxfile()
    session = _RecordingSession()
    noxfile.lint(session)
    ruff_pin = next(r for r in dev_requirements() if r.startswith("ruff=="))
    assert session.installed == [ruff_pin]
    assert session.ran == [("ruff", "check", "."), ("ruff", "format", "--check", ".")]
