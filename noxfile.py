"""Developer sessions: ``nox -s tests lint typecheck bench``."""

from __future__ import annotations

import re

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


def dev_pin(name: str) -> str:
    """The exact requirement for ``name`` in pyproject's dev extra (``ruff==X.Y.Z``)."""
    dev = nox.project.load_toml("pyproject.toml")["project"]["optional-dependencies"]["dev"]
    for requirement in dev:
        if re.fullmatch(rf"{re.escape(name)}==[\w.]+", requirement.strip()):
            return str(requirement).strip()
    raise ValueError(f"pyproject.toml's dev extra does not pin {name} to an exact version")


@nox.session
def lint(session: nox.Session) -> None:
    session.install(dev_pin("ruff"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict")


@nox.session
def bench(session: nox.Session) -> None:
    """Measure aioretell against raw aiohttp + msgspec and the official SDK, side by side.

    Writes docs/benchmarks.md and docs/benchmarks.png; ``nox -s bench -- --quick`` for a smoke run.
    """
    session.install("-e", ".[dev,bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)
