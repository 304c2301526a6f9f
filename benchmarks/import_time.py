"""Cold import time of ``aioretell`` and of the official ``retell`` SDK.

Every sample is a fresh interpreter that times the import statements with ``perf_counter`` and
prints the seconds. Bytecode caches are warmed by one discarded run per subject first, so what is
measured is module execution, not compilation. Three subjects per library: the bare package,
everything a ``create_phone_call`` needs (the call resource and its response type), and a client
with every one of its 21 resources touched (what a program using the whole API pays, at most).

Run alone: ``python -m benchmarks.import_time [runs]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aioretell._operation_table import METHODS

ROOT = Path(__file__).resolve().parent.parent

#: The official SDK's resources: the same 21 names as aioretell's.
RESOURCES = sorted({resource for resource, _ in METHODS})

SUBJECTS: dict[str, str] = {
    "import aioretell": "import aioretell",
    "import retell": "import retell",
    "aioretell + call resource": (
        "import aioretell, aioretell.resources.call; from aioretell.types import PhoneCallResponse"
    ),
    "retell + call resource": (
        "import retell, retell.resources.call; from retell.types import PhoneCallResponse"
    ),
    "aioretell + all 21 resources": (
        "import aioretell; from aioretell._operation_table import METHODS; "
        "c = aioretell.AsyncRetell(api_key='k', base_url='http://127.0.0.1:9'); "
        "[getattr(c, r) for r in {r for r, _ in METHODS}]"
    ),
    "retell + all 21 resources": (
        "import retell; c = retell.AsyncRetell(api_key='k', base_url='http://127.0.0.1:9'); "
        "[getattr(c, r) for r in " + repr(RESOURCES) + "]"
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


def main(argv: list[str] | None = None) -> int:
    runs = int((argv if argv is not None else sys.argv[1:] or ["20"])[0])
    for timing in run(runs):
        spread = f"{min(timing.ms):.0f}-{max(timing.ms):.0f}"
        print(f"{timing.name:32} median {timing.median:6.0f} ms  (range {spread}, {runs} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
