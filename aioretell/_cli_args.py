"""What every ``aioretell`` subcommand shares on its command line: one-line usage errors and
option types that refuse wrong, empty, huge, NaN, infinite and negative values.

Each type raises :class:`argparse.ArgumentTypeError`, which argparse reports as
``argument --name: message``; :class:`OneLineParser` prints that as one line and exits 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn
from urllib.parse import urlsplit

#: The longest argument echoed back in an error, so a pasted blob stays one readable line.
_SHOWN = 40
#: Seconds options (intervals, delays, durations) are capped at a day: beyond that a value is a
#: typo, and event-loop timers overflow well before float does.
DAY_S = 86_400.0


class UsageError(Exception):
    """A command line that cannot run; the message names the option and says why."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _plain(value: float) -> str:
    """``1,000,000`` rather than ``1e+06``."""
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


def integer(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low:,} to {high:,}, got {_shown(text)}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:,} to {high:,}, got {value:,}")
        return value

    return parse


def number(low: float, high: float, *, above_low: bool = False) -> Callable[[str], float]:
    """A finite number from ``low`` (excluded when ``above_low``) to ``high``."""
    lo, hi = _plain(low), _plain(high)
    bounds = f"more than {lo} and at most {hi}" if above_low else f"from {lo} to {hi}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number {bounds}, got {_shown(text)}"
            ) from None
        too_low = value <= low if above_low else value < low
        if not math.isfinite(value) or too_low or value > high:
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {_shown(text)}")
        return value

    return parse


def seconds(*, allow_zero: bool = False, high: float = DAY_S) -> Callable[[str], float]:
    """A duration in seconds: positive (or zero when ``allow_zero``), at most ``high``."""
    return number(0.0, high, above_low=not allow_zero)


def non_empty(value: str) -> str:
    """Any non-blank string (an empty ``--api-key ""`` is a mistake, not "no key")."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"expected an http:// or https:// URL with a host, got {_shown(text)}"
        )
    return text.strip()


def text_encoding(name: str) -> str:
    """The name of a codec that decodes bytes to text (``cp1252``, ``latin-1``, ``utf-16``)."""
    try:
        b"a".decode(name)  # an empty input skips the codec lookup
    except UnicodeDecodeError:  # a codec that found a lone byte too short: it exists
        pass
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"{_shown(name)} is not a text encoding Python knows (e.g. utf-8, cp1252, latin-1)"
        ) from None
    return name
