"""When to retry, and how long to wait: small pure functions plus a tenacity policy.

Retry safety is a property of the operation, never of the HTTP method:

=======================  ==========================================  ==========================
failure                  safe operation (reads, updates, deletes)     create with side effects
=======================  ==========================================  ==========================
429                      retry                                        retry (nothing was done)
never written            retry                                        retry
(refused, DNS, timeout
waiting for the pool)
408, 409, 5xx            retry                                        ambiguous
reset, read timeout      retry                                        ambiguous
other 4xx                raise                                        raise
=======================  ==========================================  ==========================

*Ambiguous* failures of a create raise :class:`AmbiguousOutcomeError` unless the client was built
with ``retry_ambiguous_creates=True``, or the client made the create's idempotency key itself
(``create_phone_call`` without a caller-given ``idempotency_key``): every attempt then carries the
same key, Retell answers a repeat with the first result, so they are retried; one that still
fails after the last retry raises :class:`AmbiguousOutcomeError` carrying that key.

``max_retries=N`` means at most N + 1 requests on the wire.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ._exceptions import APIConnectionError, APIStatusError
from ._operation import Operation
from ._sansio import backoff_delay, parse_retry_after

log = logging.getLogger("aioretell")

RETRYABLE_STATUSES = frozenset({408, 409, 429})


class Decision(enum.Enum):
    RETRY = "retry"
    AMBIGUOUS = "ambiguous"
    FAIL = "fail"


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def decide(op: Operation, error: BaseException) -> Decision:
    """What to do about one failed attempt of ``op``."""
    if isinstance(error, APIStatusError):
        if not is_retryable_status(error.status_code):
            return Decision.FAIL
        if op.is_safe or error.status_code == 429:
            return Decision.RETRY
        return Decision.AMBIGUOUS
    if isinstance(error, APIConnectionError):
        if op.is_safe or not error.request_sent:
            return Decision.RETRY
        return Decision.AMBIGUOUS
    return Decision.FAIL


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    retry_ambiguous_creates: bool = False
    initial_backoff: float = 0.5
    max_backoff: float = 8.0

    def should_retry(self, op: Operation, error: BaseException, *, keyed: bool = False) -> bool:
        """Whether to repeat ``op`` after ``error``; ``keyed``: the request carries an
        idempotency key the client made for it, so an ambiguous failure is safe to repeat."""
        decision = decide(op, error)
        return decision is Decision.RETRY or (
            decision is Decision.AMBIGUOUS and (keyed or self.retry_ambiguous_creates)
        )

    def wait_seconds(
        self, error: BaseException | None, attempt: int, *, now: Callable[[], float] = time.time
    ) -> float:
        """The server's Retry-After when it gave one, else exponential backoff with jitter."""
        if isinstance(error, APIStatusError):
            asked = parse_retry_after(error.headers, now=now)
            if asked is not None:
                return asked
        return backoff_delay(attempt, initial=self.initial_backoff, maximum=self.max_backoff)

    def retrying(
        self,
        op: Operation,
        sleep: Callable[[float], Awaitable[None]],
        *,
        after: int = 0,
        keyed: bool = False,
    ) -> AsyncRetrying:
        """A fresh tenacity controller for the attempts of ``op`` that follow ``after`` failed ones.

        The client makes the first attempt itself and only builds this on failure: tenacity's
        setup costs more per request than the whole rest of the pipeline.
        """

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(error, after + state.attempt_number)

        return AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1 - after),
            retry=retry_if_exception(lambda exc: self.should_retry(op, exc, keyed=keyed)),
            wait=wait,
            sleep=sleep,
            before_sleep=lambda state: _log_retry(op, after + state.attempt_number, state),
            reraise=True,
        )


def _log_retry(op: Operation, attempt: int, state: RetryCallState | None) -> None:
    error = state.outcome.exception() if state and state.outcome else None
    wait = state.next_action.sleep if state and state.next_action else 0.0
    log.info(
        "%s: attempt %d failed with %s; retrying in %.2f s",
        op.operation_id,
        attempt,
        type(error).__name__ if error else "?",
        wait,
    )


def log_first_retry(op: Operation, error: BaseException, wait: float) -> None:
    log.info(
        "%s: attempt 1 failed with %s; retrying in %.2f s",
        op.operation_id,
        type(error).__name__,
        wait,
    )
