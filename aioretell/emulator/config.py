"""Settings of one emulator instance."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulated Retell account behaves.

    ``clock`` returns wall-clock seconds; every timestamp, call lifecycle and the rate limiter
    read it, so a test can drive time with a mutable fake instead of sleeping.
    """

    api_key: str = field(repr=False)  # never shown
    host: str = "127.0.0.1"
    port: int = 0
    #: Seconds a call stays ``ongoing`` once it has connected.
    call_duration_s: float = 5.0
    #: Seconds a call stays ``registered`` (ringing) before it connects.
    ring_duration_s: float = 0.5
    concurrency_limit: int = 20
    #: Slots of ``concurrency_limit`` that outbound calls may not use.
    reserved_inbound_concurrency: int = 0
    #: Requests per second per API key; ``None`` disables rate limiting.
    rate_limit_rps: float | None = None
    #: Seeds ids, call outcomes and random faults, so runs are reproducible.
    seed: int = 0
    clock: Callable[[], float] = time.time
