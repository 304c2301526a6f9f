"""Cold import time of ``aioretell`` and of the official ``retell`` SDK.

Every sample is a fresh interpreter that times the import statements with ``perf_counter`` and
prints the seconds. Bytecode caches are warmed by one discarded run per subject first, so what is
measured is module execution, not compilation. Two subjects per library: the bare package, and
everything a ``create_phone_call`` needs (the call resource and its response type).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SUBJECTS: dict[str, str] = {
    "import aioretell": "import aioretell",
    "import retell": "import retell",
    "aioretell + call resource": (
        "import aioretell, aioretell.resources.call; from aioretell.types import PhoneCallResponse"
    ),
    "retell + call resource": (
        "import retell, retell.resources.call; from retell.types import PhoneCallResponse"
    ),
}

_PROBE = """\
import time
_t = time.perf_counter()
{statement}
print(time.perf_counter() - _t)
"""


@dataclass(frozen=True, slots=True)
class ImportTiming:
    name: str
    ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)


def once(statement: str) -> float:
    """Milliseconds to run ``statement`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return float(out.stdout.strip().splitlines()[-1]) * 1e3


def run(runs: int = 20) -> list[ImportTiming]:
    for statement in SUBJECTS.values():
        once(statement)
    samples: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    for _ in range(runs):  # interleaved, like the client rounds
        for name, statement in SUBJECTS.items():
            samples[name].append(once(statement))
    return [ImportTiming(name, ms) for name, ms in samples.items()]
