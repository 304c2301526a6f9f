"""Retell's webhook signature: ``v=<unix ms>,d=<hex HMAC-SHA256>``.

The digest is HMAC-SHA256, keyed with the API key, over the raw body bytes immediately followed
by the decimal timestamp (no separator). This is what the official SDK computes over
``body + str(timestamp)`` encoded as UTF-8, so a body sent as UTF-8 JSON verifies the same way
whether it is handled as bytes or as text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

__all__ = ["SIGNATURE_HEADER", "parse_signature", "sign", "verify"]

#: The request header that carries the signature.
SIGNATURE_HEADER = "X-Retell-Signature"

Body = bytes | bytearray | memoryview | str

# Strict: exactly "v=<digits>,d=<64 lowercase hex>", nothing before, after or between. No
# leading zero in the timestamp (its decimal form is part of the signed message, so it has
# exactly one spelling) and at most 15 digits (about the year 33658 in milliseconds).
_SIGNATURE = re.compile(rb"v=([1-9][0-9]{0,14}),d=([0-9a-f]{64})")


def _raw(body: Body) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _digest(key: bytes, body: bytes, timestamp_ms: int) -> str:
    mac = hmac.new(key, body, hashlib.sha256)
    mac.update(str(timestamp_ms).encode("ascii"))
    return mac.hexdigest()


def _key(api_key: str) -> bytes:
    if not api_key:
        raise ValueError("api_key must be a non-empty string")
    return api_key.encode("utf-8")


def parse_signature(signature: str | bytes) -> tuple[int, str] | None:
    """``(timestamp_ms, hex_digest)`` of a well-formed signature header, else ``None``."""
    try:
        raw = signature.encode("ascii") if isinstance(signature, str) else bytes(signature)
    except UnicodeEncodeError:
        return None
    match = _SIGNATURE.fullmatch(raw)
    if match is None:
        return None
    return int(match.group(1)), match.group(2).decode("ascii")


def sign(body: Body, *, api_key: str, timestamp_ms: int | None = None) -> str:
    """The ``X-Retell-Signature`` value Retell would send with ``body`` at ``timestamp_ms``.

    ``body`` is signed as given (a ``str`` as its UTF-8 bytes): sign the exact bytes you send.
    ``timestamp_ms`` defaults to now.
    """
    if timestamp_ms is None:
        timestamp_ms = int(time.time() * 1000)
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms <= 0:
        raise ValueError("timestamp_ms must be a positive int (unix milliseconds)")
    return f"v={timestamp_ms},d={_digest(_key(api_key), _raw(body), timestamp_ms)}"


def verify(
    body: Body,
    *,
    signature: str | bytes | None,
    api_key: str,
    tolerance_s: float = 300,
    now_ms: int | None = None,
) -> bool:
    """Whether ``signature`` is Retell's signature of exactly ``body``, made recently.

    ``body`` must be the raw request bytes (a ``str`` is taken as its UTF-8 encoding): never
    re-serialized JSON. Refused: a missing or malformed signature (see :func:`parse_signature`),
    an empty body, a timestamp more than ``tolerance_s`` seconds away from ``now_ms`` (default:
    the wall clock) in either direction, and a digest that differs. Digests are compared in
    constant time.
    """
    if tolerance_s < 0:
        raise ValueError("tolerance_s must not be negative")
    key = _key(api_key)
    if signature is None:
        return False
    parsed = parse_signature(signature)
    if parsed is None:
        return False
    timestamp_ms, digest = parsed
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    if abs(now_ms - timestamp_ms) > tolerance_s * 1000:
        return False
    try:
        raw = _raw(body)
    except UnicodeEncodeError:  # a str with lone surrogates cannot have been sent
        return False
    if not raw:
        return False
    return hmac.compare_digest(_digest(key, raw, timestamp_ms), digest)
