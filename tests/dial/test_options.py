"""The dialer's checks before it starts: which server, and what it asks before dialling one."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from aioretell._cli_args import UsageError
from aioretell.dial.confirm import Plan, confirm
from aioretell.dial.options import IN_PROCESS, Server, choose_server


def _args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**{"api_key": None, "base_url": None, **values})


@pytest.mark.parametrize(
    ("values", "environ", "server"),
    [
        ({}, {}, Server(None, None)),
        ({}, {"RETELL_API_KEY": ""}, Server(None, None)),  # empty counts as unset
        ({}, {"RETELL_API_KEY": "k"}, Server("k", "https://api.retellai.com")),
        (
            {},
            {"RETELL_API_KEY": "k", "RETELL_BASE_URL": "http://127.0.0.1:8080/"},
            Server("k", "http://127.0.0.1:8080"),
        ),
        (
            {"api_key": "a", "base_url": "http://h:1"},
            {"RETELL_API_KEY": "k", "RETELL_BASE_URL": "http://e:2"},
            Server("a", "http://h:1"),
        ),
    ],
)
def test_choose_server(values: dict[str, str], environ: dict[str, str], server: Server) -> None:
    assert choose_server(_args(**values), environ) == server


def test_target_is_the_url_dialled() -> None:
    assert Server(None, None).target == IN_PROCESS
    assert Server("k", "http://127.0.0.1:8080").target == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("values", "environ", "message"),
    [
        ({"base_url": "http://h:1"}, {}, "--base-url needs --api-key"),
        ({}, {"RETELL_BASE_URL": "http://h:1"}, "$RETELL_BASE_URL is set but no key"),
        ({}, {"RETELL_API_KEY": "k", "RETELL_BASE_URL": "h:1"}, "must start with http://"),
    ],
)
def test_server_refusals(values: dict[str, str], environ: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("$", r"\$")):
        choose_server(_args(**values), environ)


PLAN = Plan("https://api.retellai.com", 1000, "leads.csv", "+14155550100", None, 0)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Interrupted(_Terminal):
    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_plan_says_server_leads_number_and_agent() -> None:
    assert PLAN.describe() == (
        "About to place real calls through https://api.retellai.com: 1,000 leads of leads.csv, "
        "from +14155550100, agent the from-number's outbound agent."
    )
    plan = Plan("http://h", 1, "l.csv", "+1", "agent_1", 2, resuming=Path("l.journal.db"))
    assert plan.describe() == (
        "About to place real calls through http://h: 1 lead of l.csv (up to 3 calls each with "
        "--redial 2), resuming l.journal.db (finished leads are not dialled again), from +1, "
        "agent agent_1."
    )


@pytest.mark.parametrize(
    ("stdin", "yes", "outcome", "last"),
    [
        (io.StringIO(""), True, None, PLAN.describe()),
        (io.StringIO("y\n"), False, 2, "no terminal to confirm on; pass --yes"),
        (_Terminal("y\n"), False, None, "Dial them? [y/N]"),
        (_Terminal("YES\n"), False, None, "Dial them? [y/N]"),
        (_Terminal("\n"), False, 1, "Not confirmed: nothing was dialled."),
        (_Terminal(""), False, 1, "Not confirmed: nothing was dialled."),
        (_Interrupted(), False, 130, "Interrupted: nothing was dialled."),
    ],
)
def test_confirm(stdin: io.StringIO, yes: bool, outcome: int | None, last: str) -> None:
    stream = io.StringIO()
    assert confirm(PLAN, yes=yes, stdin=stdin, stream=stream) == outcome
    shown = stream.getvalue().strip().splitlines()
    assert shown[0] == PLAN.describe()
    assert last in shown[-1]
