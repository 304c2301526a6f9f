"""The response bodies the canned server sends and the decode benchmark parses.

A body comes from the recorded API reference page in ``shared/seeds`` when that file is there
(its example response is the JSON object that starts on a line of its own), and otherwise from
the synthetic sample of the same shape in ``benchmarks/fixtures``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"


def _seed_dirs() -> list[Path]:
    """Where the recorded reference pages may be: ``$AIORETELL_SEEDS``, then ``shared/seeds``."""
    dirs: list[Path] = []
    env = os.environ.get("AIORETELL_SEEDS")
    if env:
        dirs.append(Path(env))
    dirs.append(HERE.parent.parent / "shared" / "seeds")  # shared/ beside the repository
    return dirs


@dataclass(frozen=True, slots=True)
class Sample:
    """One JSON response body and where it came from (``seed`` or ``synthetic``)."""

    data: dict[str, Any]
    source: str

    @property
    def body(self) -> bytes:
        return json.dumps(self.data, separators=(",", ":")).encode()


def _from_seed(text: str, key: str) -> dict[str, Any] | None:
    """The first top-level JSON object in a reference page that has ``key``, if any."""
    decoder = json.JSONDecoder()
    start = 0
    while (at := text.find("\n{", start)) != -1:
        start = at + 2
        try:
            value, _ = decoder.raw_decode(text, at + 1)
        except ValueError:
            continue
        if isinstance(value, dict) and key in value:
            return value
    return None


def load(seed_name: str, fixture_name: str, key: str) -> Sample:
    """The body of ``seed_name``'s example response, else the synthetic fixture."""
    for folder in _seed_dirs():
        path = folder / seed_name
        if path.is_file():
            data = _from_seed(path.read_text(encoding="utf-8"), key)
            if data is not None:
                return Sample(data, "seed")
    data = json.loads((FIXTURES / fixture_name).read_text(encoding="utf-8"))
    return Sample(data, "synthetic")


def phone_call() -> Sample:
    """A realistic ``create-phone-call`` response (a full PhoneCallResponse)."""
    return load("create-phone-call.txt", "phone-call.json", "call_id")


def web_call() -> Sample:
    """A ``v2/create-web-call`` response (a web call with its access token)."""
    return load("create-web-call.txt", "web-call.json", "call_id")


def chat() -> Sample:
    """A realistic ``get-chat`` response."""
    return load("get-chat.txt", "chat.json", "chat_id")


def created_chat() -> Sample:
    """A ``create-chat`` response."""
    return load("create-chat.txt", "chat.json", "chat_id")


def chat_agent() -> Sample:
    """A ``create-chat-agent`` response."""
    return load("create-chat-agent.txt", "chat-agent.json", "agent_id")


def list_calls_page(size: int) -> Sample:
    """A ``/v3/list-calls`` page of ``size`` calls, each with its own ``call_id``."""
    call = phone_call()
    items = [{**call.data, "call_id": f"call_bench_{i:021d}"} for i in range(size)]
    page = {"items": items, "has_more": True, "pagination_key": f"call_bench_{size:021d}"}
    return Sample(page, call.source)
