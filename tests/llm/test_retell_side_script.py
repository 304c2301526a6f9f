"""Conversation scripts: the format, every check with the field it names, JSON and YAML files."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from aioretell.llm.script import (
    DEFAULT_SCRIPT,
    MAX_TURNS,
    ConversationScript,
    ScriptError,
    Silence,
    UserTurn,
    load_script,
    parse_script,
)

YAML = """\
reminder_trigger_ms: 2500
reminder_max_count: 2
hang_up_after: 1
turns:
  - Hi, I'd like to book a table.
  - user: For four people.
    pause: 0.3
  - user: Actually five.
    interrupt_after_chunks: 2
  - silence: 12
"""


def test_every_field_of_the_format() -> None:
    script = parse_script(
        {
            "reminder_trigger_ms": 2500,
            "reminder_max_count": 2,
            "hang_up_after": 1,
            "turns": [
                "Hi, I'd like to book a table.",
                {"user": "For four people.", "pause": 0.3},
                {"user": "Actually five.", "interrupt_after_chunks": 2},
                {"silence": 12},
            ],
        }
    )
    assert script == ConversationScript(
        turns=(
            UserTurn("Hi, I'd like to book a table."),
            UserTurn("For four people.", pause_s=0.3),
            UserTurn("Actually five.", interrupt_after_chunks=2),
            Silence(12.0),
        ),
        hang_up_after_s=1.0,
        reminder_trigger_s=2.5,
        reminder_max_count=2,
    )
    assert script.user_turns == 3


def test_a_bare_list_is_the_turns() -> None:
    assert parse_script(["Hello", {"silence": 1}]).turns == (UserTurn("Hello"), Silence(1.0))


def test_the_default_script_has_a_barge_in() -> None:
    assert any(isinstance(t, UserTurn) and t.interrupt_after_chunks for t in DEFAULT_SCRIPT.turns)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "'turns' must be a non-empty list"),
        ({"turns": []}, "'turns' must be a non-empty list"),
        ({"turns": "hello"}, "'turns' must be a non-empty list"),
        ("hello", "a script is a mapping"),
        (42, "a script is a mapping"),
        ({"turns": ["hi"], "bogus": 1}, "the script has unknown key 'bogus'"),
        ({"turns": [""]}, r"turns\[0\] must be a non-empty string"),
        ({"turns": ["   "]}, r"turns\[0\] must be a non-empty string"),
        ({"turns": [7]}, r"turns\[0\] must be a string or a mapping"),
        ({"turns": [{"pause": 1}]}, r"turns\[0\] needs 'user'"),
        ({"turns": [{"user": "hi", "paws": 1}]}, r"turns\[0\] has unknown key 'paws'"),
        ({"turns": [{"user": "hi", "pause": -1}]}, r"turns\[0\]\.pause must be between 0"),
        ({"turns": [{"user": "hi", "pause": float("nan")}]}, r"turns\[0\]\.pause"),
        ({"turns": [{"user": "hi", "pause": float("inf")}]}, r"turns\[0\]\.pause"),
        ({"turns": [{"user": "hi", "pause": 1e9}]}, r"turns\[0\]\.pause must be between"),
        ({"turns": [{"user": "hi", "pause": "1"}]}, r"turns\[0\]\.pause must be a number"),
        ({"turns": [{"user": "hi", "pause": True}]}, r"turns\[0\]\.pause must be a number"),
        ({"turns": [{"silence": -2}]}, r"turns\[0\]\.silence must be between"),
        ({"turns": [{"silence": 1, "user": "x"}]}, r"turns\[0\] has unknown key 'user'"),
        (
            {"turns": [{"user": "hi", "interrupt_after_chunks": 0}]},
            r"interrupt_after_chunks must be between 1",
        ),
        (
            {"turns": [{"user": "hi", "interrupt_after_chunks": 1.5}]},
            r"interrupt_after_chunks must be a whole number",
        ),
        ({"turns": ["x" * 10_001]}, r"turns\[0\] is longer than 10000 characters"),
        ({"turns": ["hi"] * (MAX_TURNS + 1)}, f"at most {MAX_TURNS} are allowed"),
        ({"turns": ["hi"], "reminder_trigger_ms": 0}, "reminder_trigger_ms must be more than 0"),
        ({"turns": ["hi"], "reminder_trigger_ms": "soon"}, "reminder_trigger_ms must be a number"),
        ({"turns": ["hi"], "reminder_trigger_ms": float("nan")}, "reminder_trigger_ms"),
        ({"turns": ["hi"], "reminder_max_count": -1}, "reminder_max_count must be between 0"),
        ({"turns": ["hi"], "hang_up_after": -1}, "hang_up_after must be between 0"),
    ],
)
def test_bad_scripts_name_the_bad_field(data: Any, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse_script(data)


def test_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "conversation.yaml"
    path.write_text(YAML)
    script = load_script(path)
    assert script.reminder_trigger_s == 2.5
    assert script.turns[2] == UserTurn("Actually five.", interrupt_after_chunks=2)


def test_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps({"turns": ["Hi", {"silence": 2}]}))
    assert load_script(path).turns == (UserTurn("Hi"), Silence(2.0))


def test_json_in_a_yaml_named_file_needs_no_pyyaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_pyyaml(monkeypatch)
    path = tmp_path / "conversation.yaml"
    path.write_text(json.dumps(["Hi"]))
    assert load_script(path).turns == (UserTurn("Hi"),)


def test_yaml_without_pyyaml_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_pyyaml(monkeypatch)
    path = tmp_path / "conversation.yaml"
    path.write_text(YAML)
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    assert str(caught.value) == (
        f"{path}: reading a YAML script needs PyYAML: pip install 'aioretell[llm-test]' "
        "(or write the script as JSON)"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", "{not json", "bad.json: not valid JSON"),
        ("bad.yaml", "turns: [unclosed", "not valid YAML at line"),
        ("bad.yaml", "turns:\n  - user: hi\n    pause: -3\n", r"turns\[0\]\.pause"),
        ("empty.yaml", "", "a script is a mapping"),
        ("binary.yaml", b"\xff\xfe\x00", "cannot read"),
    ],
)
def test_bad_files_give_one_line(
    name: str, content: str | bytes, message: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ScriptError, match=message) as caught:
        load_script(path)
    assert "\n" not in str(caught.value)


def test_missing_directory_and_huge_files(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"cannot read .*missing\.yaml"):
        load_script(tmp_path / "missing.yaml")
    with pytest.raises(ScriptError, match="cannot read"):
        load_script(tmp_path)
    huge = tmp_path / "huge.json"
    huge.write_text(" " * 1_000_001)
    with pytest.raises(ScriptError, match="a script may have 1000000 at most"):
        load_script(huge)


def _without_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "yaml":
            raise ImportError("No module named 'yaml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
