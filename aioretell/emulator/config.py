"""Settings of one emulator instance."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aioretell.llm.retell_side import RetellTimings
from aioretell.llm.script import ConversationScript


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
    #: ``(low, high)``: each call stays ``ongoing`` for a duration drawn uniformly from this
    #: range (seeded by ``seed``) instead of ``call_duration_s``; ``None`` keeps the fixed one.
    call_duration_range_s: tuple[float, float] | None = None
    #: Seconds a call stays ``registered`` (ringing) before it connects.
    ring_duration_s: float = 0.5
    concurrency_limit: int = 20
    #: Slots of ``concurrency_limit`` that outbound calls may not use.
    reserved_inbound_concurrency: int = 0
    #: Requests per second per API key; ``None`` disables rate limiting.
    rate_limit_rps: float | None = None
    #: Retell's calls-per-second limit: at most this many operations that place a call or
    #: open a conversation in any one-second window, else 429; ``None`` disables it.
    create_rate_limit_cps: int | None = None
    #: Deterministic outcomes for dialled numbers: ``(suffix, disconnection_reason)`` pairs.
    #: A create-phone-call whose ``to_number`` ends with ``suffix`` never connects and ends at
    #: once as ``not_connected`` with that reason (e.g. ``("13", "dial_busy")``); the first
    #: matching pair wins.
    outcomes_by_suffix: tuple[tuple[str, str], ...] = ()
    #: Seeds ids, call outcomes and random faults, so runs are reproducible.
    seed: int = 0
    clock: Callable[[], float] = time.time
    # -- webhooks (delivered by a running :class:`Emulator`, see ``emulator.webhooks``) ----
    #: Account-level webhook URL, used for agents without their own ``webhook_url``.
    webhook_url: str | None = None
    #: Seconds to wait for a 2xx before an attempt counts as failed (an agent's
    #: ``webhook_timeout_ms`` overrides it).
    webhook_timeout_s: float = 10.0
    #: Further attempts after a non-2xx answer, a timeout or a connection error.
    webhook_max_retries: int = 3
    #: Wait before the first retry, doubling for each further one (real seconds).
    webhook_retry_backoff_s: float = 1.0
    #: Extra copies of every webhook, each signed again, to test deduplication.
    webhook_duplicates: int = 0
    #: Clock seconds between a call or chat ending and its ``*_analyzed`` webhook.
    analysis_delay_s: float = 1.0
    #: Real seconds between two checks of the clock for due webhooks.
    webhook_tick_s: float = 0.05
    # -- custom-LLM agents (played by a running :class:`Emulator`, see ``emulator.custom_llm``)
    #: What the caller says in calls to agents whose ``response_engine`` is ``custom-llm``;
    #: ``None`` plays ``aioretell.llm.script.DEFAULT_SCRIPT``. A call's
    #: ``metadata["aioretell_llm_script"]`` (the same format, as JSON) replaces it.
    llm_script: ConversationScript | None = None
    #: Ping interval and timeouts of the emulated Retell side of the LLM WebSocket.
    llm_timings: RetellTimings = field(default_factory=RetellTimings)

    def __post_init__(self) -> None:
        span = self.call_duration_range_s
        if span is not None:
            low, high = span
            # ``not <=`` refuses NaN too.
            if not (0.0 <= low <= high < math.inf):
                raise ValueError(
                    "call_duration_range_s must be (low, high) with 0 <= low <= high, finite; "
                    f"got {span!r}"
                )
