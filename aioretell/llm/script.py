"""What the caller does in a played conversation: the script of the Retell side.

A script is a list of turns, each either something the user says or a stretch of silence::

    reminder_trigger_ms: 10000   # optional; Retell's agent settings for reminders
    reminder_max_count: 1
    hang_up_after: 0.5           # seconds of silence after the last answer, then the user hangs up
    turns:
      - "Hi, I'd like to book a table."          # shorthand for {user: ...}
      - user: "For four people, tonight."
        pause: 0.3                               # silence before speaking (seconds)
      - user: "Actually, make it five."
        interrupt_after_chunks: 1                # barge in once the agent's answer has
                                                 # streamed this many chunks
      - silence: 12                              # say nothing (reminders may follow)
      - user: "Thanks, bye."

A bare list is taken as ``turns``. :func:`parse_script` checks every field and raises
:class:`ScriptError` naming the first bad one; :func:`load_script` reads a JSON or YAML file
(YAML needs PyYAML: the ``aioretell[llm-test]`` extra).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_SCRIPT",
    "ConversationScript",
    "ScriptError",
    "Silence",
    "UserTurn",
    "load_script",
    "parse_script",
]

#: Limits that keep a mistyped script from running for days or holding gigabytes.
MAX_TURNS = 1000
MAX_SECONDS = 3600.0
MAX_TEXT = 10_000
MAX_FILE_BYTES = 1_000_000
DEFAULT_PAUSE_S = 0.2
YAML_EXTRA_HINT = (
    "reading a YAML script needs PyYAML: pip install 'aioretell[llm-test]' "
    "(or write the script as JSON)"
)


class ScriptError(ValueError):
    """A script that cannot be played; the message names the bad field."""


@dataclass(frozen=True)
class UserTurn:
    """The user says ``text`` after ``pause_s`` seconds of silence.

    ``interrupt_after_chunks``: instead of waiting for the agent to finish, the user starts
    talking once the agent's current answer has streamed that many chunks (a barge-in); the
    rest of that answer is superseded.
    """

    text: str
    pause_s: float = DEFAULT_PAUSE_S
    interrupt_after_chunks: int | None = None


@dataclass(frozen=True)
class Silence:
    """The user says nothing for ``seconds`` (the agent may be asked for reminders)."""

    seconds: float


Turn = UserTurn | Silence


@dataclass(frozen=True)
class ConversationScript:
    """A whole conversation as the caller plays it; see the module docstring for the format."""

    turns: tuple[Turn, ...]
    #: Silence after the last answer before the user hangs up.
    hang_up_after_s: float = 0.5
    #: Silence after which Retell asks the agent for a reminder (agent setting).
    reminder_trigger_s: float = 10.0
    #: Reminders per stretch of silence at most (agent setting).
    reminder_max_count: int = 1

    @property
    def user_turns(self) -> int:
        return sum(isinstance(turn, UserTurn) for turn in self.turns)


DEFAULT_SCRIPT = ConversationScript(
    turns=(
        UserTurn("Hi, who is this?"),
        UserTurn("I'd like to check on my order, number 4 4 1 7."),
        UserTurn("Sorry, one more thing: can it come on Friday?", interrupt_after_chunks=1),
        UserTurn("Great, thanks. That's all."),
    )
)


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScriptError(f"{where} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or seconds > MAX_SECONDS:
        raise ScriptError(f"{where} must be between 0 and {MAX_SECONDS:g} seconds, got {value!r}")
    return seconds


def _count(value: Any, where: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScriptError(f"{where} must be a whole number, got {value!r}")
    if not minimum <= value <= maximum:
        raise ScriptError(f"{where} must be between {minimum} and {maximum}, got {value}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScriptError(f"{where} must be a non-empty string, got {value!r}")
    if len(value) > MAX_TEXT:
        raise ScriptError(f"{where} is longer than {MAX_TEXT} characters")
    return value.strip()


def _only(item: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in item if key not in allowed)
    if unknown:
        raise ScriptError(
            f"{where} has unknown key {unknown[0]!r} (expected one of {', '.join(sorted(allowed))})"
        )


_USER_KEYS = frozenset({"user", "pause", "interrupt_after_chunks"})
_SILENCE_KEYS = frozenset({"silence"})
_TOP_KEYS = frozenset({"turns", "hang_up_after", "reminder_trigger_ms", "reminder_max_count"})


def _turn(item: Any, where: str) -> Turn:
    if isinstance(item, str):
        return UserTurn(_text(item, where))
    if not isinstance(item, Mapping):
        raise ScriptError(f"{where} must be a string or a mapping, got {type(item).__name__}")
    if "silence" in item:
        _only(item, _SILENCE_KEYS, where)
        return Silence(_seconds(item["silence"], f"{where}.silence"))
    if "user" not in item:
        raise ScriptError(f"{where} needs 'user' (what the user says) or 'silence' (seconds)")
    _only(item, _USER_KEYS, where)
    interrupt = item.get("interrupt_after_chunks")
    return UserTurn(
        _text(item["user"], f"{where}.user"),
        pause_s=_seconds(item.get("pause", DEFAULT_PAUSE_S), f"{where}.pause"),
        interrupt_after_chunks=None
        if interrupt is None
        else _count(interrupt, f"{where}.interrupt_after_chunks", minimum=1, maximum=100_000),
    )


def parse_script(data: Any) -> ConversationScript:
    """A :class:`ConversationScript` from decoded JSON/YAML (a mapping, or a list of turns)."""
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        data = {"turns": data}
    if not isinstance(data, Mapping):
        raise ScriptError(
            f"a script is a mapping with 'turns' or a list, got {type(data).__name__}"
        )
    _only(data, _TOP_KEYS, "the script")
    turns = data.get("turns")
    if not isinstance(turns, Sequence) or isinstance(turns, str | bytes) or not turns:
        raise ScriptError("the script's 'turns' must be a non-empty list")
    if len(turns) > MAX_TURNS:
        raise ScriptError(f"the script has {len(turns)} turns; at most {MAX_TURNS} are allowed")
    trigger_ms = data.get("reminder_trigger_ms", 10_000)
    if isinstance(trigger_ms, bool) or not isinstance(trigger_ms, int | float):
        raise ScriptError(f"reminder_trigger_ms must be a number, got {trigger_ms!r}")
    trigger_s = _seconds(trigger_ms / 1000, "reminder_trigger_ms / 1000")
    if trigger_s == 0:
        raise ScriptError("reminder_trigger_ms must be more than 0")
    return ConversationScript(
        turns=tuple(_turn(item, f"turns[{index}]") for index, item in enumerate(turns)),
        hang_up_after_s=_seconds(data.get("hang_up_after", 0.5), "hang_up_after"),
        reminder_trigger_s=trigger_s,
        reminder_max_count=_count(
            data.get("reminder_max_count", 1), "reminder_max_count", minimum=0, maximum=1000
        ),
    )


def _decode_yaml(text: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise ScriptError(YAML_EXTRA_HINT) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScriptError(f"not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None


def load_script(path: Path) -> ConversationScript:
    """Read a script file: ``.json`` as JSON, anything else as YAML (JSON is valid YAML too).

    Without PyYAML a non-``.json`` file is still read if it holds JSON.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScriptError(f"{path} is {size} bytes; a script may have {MAX_FILE_BYTES} at most")
        text = path.read_text(encoding="utf-8")
    except ScriptError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return parse_script(_decode(text, json_only=path.suffix.lower() == ".json"))
    except ScriptError as exc:
        raise ScriptError(f"{path}: {exc}") from None


def _decode(text: str, *, json_only: bool) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        if json_only:
            raise ScriptError(f"not valid JSON: {exc}") from None
    return _decode_yaml(text)
