"""Fault injection: scripted per operation, or drawn at random from a seeded generator."""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass


class FaultKind(enum.Enum):
    OK = "ok"
    STATUS = "status"
    DELAY = "delay"
    RESET_BEFORE_REQUEST = "reset_before_request"
    RESET_AFTER_REQUEST = "reset_after_request"
    MALFORMED_BODY = "malformed_body"


@dataclass(frozen=True)
class Fault:
    """What the emulator does to one request instead of (or on top of) handling it normally."""

    kind: FaultKind
    status_code: int = 0
    retry_after: float | None = None
    retry_after_ms: float | None = None
    #: Response body for ``status``; ``None`` means Retell's JSON error body.
    body: bytes | None = None
    seconds: float = 0.0

    @classmethod
    def ok(cls) -> Fault:
        """No fault: handle the request normally."""
        return cls(FaultKind.OK)

    @classmethod
    def status(
        cls,
        code: int,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        body: bytes | None = None,
    ) -> Fault:
        """Answer with ``code`` without acting; optional Retry-After / retry-after-ms headers."""
        return cls(
            FaultKind.STATUS,
            status_code=code,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            body=body,
        )

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds`` (real time), then handle the request normally."""
        return cls(FaultKind.DELAY, seconds=seconds)

    @classmethod
    def reset_before_request(cls) -> Fault:
        """Drop the connection without reading the body; nothing happens server-side."""
        return cls(FaultKind.RESET_BEFORE_REQUEST)

    @classmethod
    def reset_after_request(cls) -> Fault:
        """Perform the operation, then drop the connection without answering."""
        return cls(FaultKind.RESET_AFTER_REQUEST)

    @classmethod
    def malformed_body(cls) -> Fault:
        """Perform the operation, then answer with its status and a truncated JSON body."""
        return cls(FaultKind.MALFORMED_BODY)


_OK = Fault.ok()


@dataclass(frozen=True)
class FaultRates:
    """Probabilities of each random fault for one request; they must sum to at most 1."""

    status_429: float = 0.0
    status_500: float = 0.0
    status_503: float = 0.0
    reset_before: float = 0.0
    reset_after: float = 0.0
    #: Retry-After seconds sent with random 429 and 503 answers.
    retry_after: float | None = None

    def __post_init__(self) -> None:
        rates = [self.status_429, self.status_500, self.status_503]
        rates += [self.reset_before, self.reset_after]
        if any(r < 0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault probabilities must be >= 0 and sum to at most 1")

    def draw(self, rng: random.Random) -> Fault:
        roll = rng.random()
        for rate, fault in (
            (self.status_429, Fault.status(429, retry_after=self.retry_after)),
            (self.status_500, Fault.status(500)),
            (self.status_503, Fault.status(503, retry_after=self.retry_after)),
            (self.reset_before, Fault.reset_before_request()),
            (self.reset_after, Fault.reset_after_request()),
        ):
            if roll < rate:
                return fault
            roll -= rate
        return _OK


class FaultInjector:
    """Decides the fault for each request of an operation.

    Scripted faults come first, in order, one per request of that operation; once a script is
    used up, the random rates apply (per operation if set, else global); with no rates, ``ok``.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self._scripts: dict[str, deque[Fault]] = {}
        self._rates: dict[str | None, FaultRates] = {}

    def script(self, operation_id: str, faults: list[Fault]) -> None:
        """Apply ``faults`` to the next ``len(faults)`` requests of ``operation_id``."""
        self._scripts.setdefault(operation_id, deque()).extend(faults)

    def set_probability(
        self,
        operation_id: str | None = None,
        *,
        status_429: float = 0.0,
        status_500: float = 0.0,
        status_503: float = 0.0,
        reset_before: float = 0.0,
        reset_after: float = 0.0,
        retry_after: float | None = None,
    ) -> None:
        """Set random fault rates for one operation, or for all (``operation_id=None``)."""
        self._rates[operation_id] = FaultRates(
            status_429=status_429,
            status_500=status_500,
            status_503=status_503,
            reset_before=reset_before,
            reset_after=reset_after,
            retry_after=retry_after,
        )

    def pending(self, operation_id: str) -> int:
        """How many scripted faults are still waiting for ``operation_id``."""
        return len(self._scripts.get(operation_id, ()))

    def clear(self) -> None:
        """Forget every script and rate."""
        self._scripts.clear()
        self._rates.clear()

    def next_fault(self, operation_id: str) -> Fault:
        script = self._scripts.get(operation_id)
        if script:
            return script.popleft()
        rates = self._rates.get(operation_id) or self._rates.get(None)
        if rates is None:
            return _OK
        return rates.draw(self._rng)
