"""Time to turn one ``create-phone-call`` response body into a Python object.

* ``msgspec typed``: ``msgspec.json.Decoder(aioretell.types.PhoneCallResponse).decode``;
* ``json.loads``: untyped dicts, the baseline every typed decode is compared with;
* ``retell-sdk``: what the official SDK does by default: ``httpx.Response.json()`` (that is,
  ``json.loads`` of the bytes) then ``construct_type`` into its pydantic model, without
  validation (``_strict_response_validation`` is off unless asked for);
* ``retell-sdk strict``: ``json.loads`` then ``model_validate``, the SDK's opt-in strict path.

Each is timed with ``timeit``: ``repeat`` runs of a calibrated loop, reported as µs per decode
(median, min, max over the runs).
"""

from __future__ import annotations

import json
import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from benchmarks import bodies


@dataclass(frozen=True, slots=True)
class DecodeTiming:
    name: str
    us: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.us)


def decoders(body: bytes) -> dict[str, Callable[[], object]]:
    from retell._models import construct_type
    from retell.types import PhoneCallResponse as SDKPhoneCallResponse

    from aioretell.types import PhoneCallResponse

    typed = msgspec.json.Decoder(PhoneCallResponse)

    def sdk_default() -> object:
        return construct_type(type_=SDKPhoneCallResponse, value=json.loads(body))

    def sdk_strict() -> object:
        return SDKPhoneCallResponse.model_validate(json.loads(body))

    return {
        "msgspec typed": lambda: typed.decode(body),
        "json.loads": lambda: json.loads(body),
        "retell-sdk": sdk_default,
        "retell-sdk strict": sdk_strict,
    }


def time_one(name: str, fn: Callable[[], object], repeat: int, min_time: float) -> DecodeTiming:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    # autorange stops at >= 0.2 s; scale the loop to the asked-for time per run
    number = max(1, int(number * min_time / 0.2))
    runs = timer.repeat(repeat=repeat, number=number)
    return DecodeTiming(name, [t / number * 1e6 for t in runs])


def run(repeat: int = 7, min_time: float = 0.2) -> tuple[list[DecodeTiming], bodies.Sample]:
    sample = bodies.phone_call()
    body = sample.body
    return [time_one(name, fn, repeat, min_time) for name, fn in decoders(body).items()], sample
