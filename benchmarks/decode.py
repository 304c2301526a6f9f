"""Time to turn one response body into a Python object, for each recorded example response.

Bodies (see :mod:`benchmarks.bodies`): the example responses of create-phone-call,
create-web-call, create-chat, get-chat and create-chat-agent, and a ``/v3/list-calls`` page of
1,000 calls. Decoders:

* ``aioretell``: ``msgspec.json.Decoder(<aioretell.types Struct>).decode`` of the bytes, what
  the client does;
* ``json.loads``: untyped dicts, the baseline every typed decode is compared with;
* ``retell-sdk``: what the official SDK does by default: ``httpx.Response.json()`` (that is,
  ``json.loads`` of the bytes) then ``construct_type`` into its pydantic model, without
  validation (``_strict_response_validation`` is off unless asked for);
* ``retell-sdk strict``: ``json.loads`` then ``model_validate``, the SDK's opt-in strict path.

The v2 create-web-call body is a web call: aioretell reads it as ``CallResponse`` (the union of
both call kinds is one Struct there), the SDK as ``WebCallResponse``.

Each is timed with ``timeit``: a loop sized by ``autorange`` to last about ``min_time``, run
``repeat`` times with the decoders of one body taking turns, reported as µs per decode (median,
min, max over the runs).
"""

from __future__ import annotations

import json
import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from benchmarks import bodies

DECODERS = ("aioretell", "json.loads", "retell-sdk", "retell-sdk strict")
LIST_PAGE_CALLS = 1000


@dataclass(frozen=True, slots=True)
class Body:
    """One body to decode and the types each library reads it as."""

    name: str
    sample: bodies.Sample
    ours: type
    sdk: type


@dataclass(frozen=True, slots=True)
class DecodeTiming:
    body: str
    size: int
    decoder: str
    us: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.us)


def bodies_to_decode() -> list[Body]:
    import retell.types as sdk

    from aioretell import types as ours

    return [
        Body(
            "create-phone-call", bodies.phone_call(), ours.PhoneCallResponse, sdk.PhoneCallResponse
        ),
        Body("create-web-call", bodies.web_call(), ours.CallResponse, sdk.WebCallResponse),
        Body("create-chat", bodies.created_chat(), ours.ChatResponse, sdk.ChatResponse),
        Body("get-chat", bodies.chat(), ours.ChatResponse, sdk.ChatResponse),
        Body(
            "create-chat-agent", bodies.chat_agent(), ours.ChatAgentResponse, sdk.ChatAgentResponse
        ),
        Body(
            f"list-calls, {LIST_PAGE_CALLS:,} calls",
            bodies.list_calls_page(LIST_PAGE_CALLS),
            ours.CallListResponse,
            sdk.CallListResponse,
        ),
    ]


def decoders(item: Body, body: bytes) -> dict[str, Callable[[], object]]:
    from retell._models import construct_type

    typed: msgspec.json.Decoder[Any] = msgspec.json.Decoder(item.ours)
    model: Any = item.sdk

    def sdk_default() -> object:
        return construct_type(type_=model, value=json.loads(body))

    def sdk_strict() -> object:
        return model.model_validate(json.loads(body))

    return {
        "aioretell": lambda: typed.decode(body),
        "json.loads": lambda: json.loads(body),
        "retell-sdk": sdk_default,
        "retell-sdk strict": sdk_strict,
    }


def loops_for(fn: Callable[[], object], min_time: float) -> int:
    """Calls per timed run so that a run lasts about ``min_time`` seconds."""
    number, seconds = timeit.Timer(fn).autorange()
    return max(1, int(number * min_time / seconds))


def run(repeat: int = 7, min_time: float = 0.1) -> list[DecodeTiming]:
    """Every decoder on every body; within one body the decoders take turns run by run."""
    timings: list[DecodeTiming] = []
    for item in bodies_to_decode():
        body = item.sample.body
        fns = decoders(item, body)
        loops = {name: loops_for(fn, min_time) for name, fn in fns.items()}
        samples: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(repeat):
            for name, fn in fns.items():
                seconds = timeit.Timer(fn).timeit(loops[name])
                samples[name].append(seconds / loops[name] * 1e6)
        timings += [DecodeTiming(item.name, len(body), n, us) for n, us in samples.items()]
    return timings
