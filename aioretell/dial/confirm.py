"""Saying what a campaign against a real server is about to do, and asking before it does.

A key left in ``$RETELL_API_KEY`` should never dial a real account by surprise: before the first
create against anything but the in-process emulator the dialer prints the server, the leads, the
from-number and the agent, and on a terminal waits for a yes. Without a terminal nobody can
answer, so the run is refused unless ``--yes`` was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

#: Exit statuses: refused for want of ``--yes`` (a usage error), declined at the prompt.
NEEDS_YES = 2
DECLINED = 1
INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Plan:
    server: str
    leads: int
    csv_name: str
    from_number: str
    agent_id: str | None
    redial: int
    #: the journal to resume, when it exists already (finished leads are not dialled again)
    resuming: Path | None = None

    def describe(self) -> str:
        calls = f"{self.leads:,} lead{'s' if self.leads != 1 else ''} of {self.csv_name}"
        if self.redial:
            calls += f" (up to {self.redial + 1} calls each with --redial {self.redial})"
        if self.resuming is not None:
            calls += f", resuming {self.resuming} (finished leads are not dialled again)"
        agent = self.agent_id or "the from-number's outbound agent"
        return (
            f"About to place real calls through {self.server}: {calls}, from {self.from_number}, "
            f"agent {agent}."
        )


def confirm(plan: Plan, *, yes: bool, stdin: TextIO, stream: TextIO) -> int | None:
    """``None`` to go ahead, or the exit status to stop with (nothing was dialled)."""
    print(plan.describe(), file=stream, flush=True)
    if yes:
        return None
    if not stdin.isatty():
        print(
            "aioretell dial: no terminal to confirm on; pass --yes to dial without asking",
            file=stream,
        )
        return NEEDS_YES
    try:  # from the question on: whoever saw it may answer with Ctrl-C
        print("Dial them? [y/N] ", end="", file=stream, flush=True)
        answer = stdin.readline()
    except KeyboardInterrupt:
        print("\nInterrupted: nothing was dialled.", file=stream)
        return INTERRUPTED
    if answer.strip().lower() in ("y", "yes"):
        return None
    if not answer:  # end of input (Ctrl-D)
        print(file=stream)
    print("Not confirmed: nothing was dialled.", file=stream)
    return DECLINED
