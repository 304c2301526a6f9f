"""The signature scheme: interop with the official SDK both ways, and every way to refuse."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import msgspec
import pytest
from retell.lib import verify as _sdk_verify_now
from retell.lib.webhook_auth import symmetric

from aioretell.webhooks import parse_signature, sign, verify

# The SDK's public helper (``retell.lib.verify(body, api_key, signature)``; reads the wall clock).
sdk_verify_now = cast(Callable[[str, str, str], bool], _sdk_verify_now)
KEY = "key_5ab1c0ffee"
NOW_MS = 1_700_000_000_000
BODY = msgspec.json.encode(
    {"event": "call_ended", "call": {"call_id": "call_1", "transcript": "Agent: Hi"}}
)
# Non-ASCII, escaped-looking sequences and whitespace, exactly as they would be sent.
UNICODE_TEXT = '{"event":"call_ended","call":{"transcript":"Grüß dich — 你好 👋 \\u00e9\\n"}}'
UNICODE_BODY = UNICODE_TEXT.encode("utf-8")


def sdk_sign(text: str, key: str, timestamp_ms: int) -> str:
    return str(symmetric["sign"](text, key, timestamp_ms))


def sdk_verify(text: str, key: str, signature: str, now_ms: int) -> bool:
    return bool(symmetric["verify"](text, key, signature, {"timestamp": now_ms}))


# -- interoperability ---------------------------------------------------------------------


@pytest.mark.parametrize("body", [BODY, UNICODE_BODY], ids=["ascii", "unicode"])
def test_sdk_signature_verifies_here(body: bytes) -> None:
    signature = sdk_sign(body.decode("utf-8"), KEY, NOW_MS)
    assert verify(body, signature=signature, api_key=KEY, now_ms=NOW_MS)
    assert verify(body.decode("utf-8"), signature=signature, api_key=KEY, now_ms=NOW_MS)


@pytest.mark.parametrize("body", [BODY, UNICODE_BODY], ids=["ascii", "unicode"])
def test_our_signature_verifies_in_sdk(body: bytes) -> None:
    signature = sign(body, api_key=KEY, timestamp_ms=NOW_MS)
    assert signature == sdk_sign(body.decode("utf-8"), KEY, NOW_MS)
    assert sdk_verify(body.decode("utf-8"), KEY, signature, NOW_MS)
    assert not sdk_verify(body.decode("utf-8") + " ", KEY, signature, NOW_MS)


def test_sdk_public_verify_accepts_a_fresh_signature() -> None:
    # retell.lib.verify reads the wall clock itself; a signature made now is well inside 5 min.
    signature = sign(UNICODE_BODY, api_key=KEY)
    assert sdk_verify_now(UNICODE_TEXT, KEY, signature)
    assert not sdk_verify_now(UNICODE_TEXT, "key_other", signature)


def test_sign_defaults_to_now() -> None:
    before = int(time.time() * 1000)
    parsed = parse_signature(sign(BODY, api_key=KEY))
    assert parsed is not None and parsed[0] >= before


def test_str_body_is_its_utf8_bytes() -> None:
    assert sign(UNICODE_TEXT, api_key=KEY, timestamp_ms=NOW_MS) == sign(
        UNICODE_BODY, api_key=KEY, timestamp_ms=NOW_MS
    )
    signature = sign(UNICODE_BODY, api_key=KEY, timestamp_ms=NOW_MS)
    for form in (bytearray(UNICODE_BODY), memoryview(UNICODE_BODY)):
        assert verify(form, signature=signature, api_key=KEY, now_ms=NOW_MS)


def test_reserialized_json_does_not_verify() -> None:
    signature = sign(UNICODE_BODY, api_key=KEY, timestamp_ms=NOW_MS)
    reencoded = msgspec.json.encode(msgspec.json.decode(UNICODE_BODY))
    assert reencoded != UNICODE_BODY
    assert not verify(reencoded, signature=signature, api_key=KEY, now_ms=NOW_MS)


# -- refusals -----------------------------------------------------------------------------


def test_tampered_body() -> None:
    signature = sign(BODY, api_key=KEY, timestamp_ms=NOW_MS)
    for tampered in (BODY + b" ", BODY[:-1], BODY.replace(b"call_1", b"call_2"), b" " + BODY):
        assert not verify(tampered, signature=signature, api_key=KEY, now_ms=NOW_MS)


def test_tampered_digest_and_timestamp() -> None:
    signature = sign(BODY, api_key=KEY, timestamp_ms=NOW_MS)
    head, digest = signature.split(",d=")
    flipped = ("0" if digest[0] != "0" else "1") + digest[1:]
    assert not verify(BODY, signature=f"{head},d={flipped}", api_key=KEY, now_ms=NOW_MS)
    other_time = f"v={NOW_MS + 1},d={digest}"
    assert not verify(BODY, signature=other_time, api_key=KEY, now_ms=NOW_MS)


def test_wrong_key() -> None:
    signature = sign(BODY, api_key=KEY, timestamp_ms=NOW_MS)
    assert not verify(BODY, signature=signature, api_key=KEY + "x", now_ms=NOW_MS)


@pytest.mark.parametrize(
    ("offset_ms", "accepted"),
    [
        (0, True),
        (300_000, True),  # exactly at the edge of the window, either side
        (-300_000, True),
        (300_001, False),  # stale
        (-300_001, False),  # from the future
        (86_400_000, False),
        (-86_400_000, False),
    ],
)
def test_timestamp_window(offset_ms: int, accepted: bool) -> None:
    signed_at = NOW_MS - offset_ms
    signature = sign(BODY, api_key=KEY, timestamp_ms=signed_at)
    assert verify(BODY, signature=signature, api_key=KEY, now_ms=NOW_MS) is accepted
    assert sdk_verify(BODY.decode(), KEY, signature, NOW_MS) is accepted


def test_tolerance_is_configurable() -> None:
    signature = sign(BODY, api_key=KEY, timestamp_ms=NOW_MS - 10_000)
    assert not verify(BODY, signature=signature, api_key=KEY, now_ms=NOW_MS, tolerance_s=5)
    assert verify(BODY, signature=signature, api_key=KEY, now_ms=NOW_MS, tolerance_s=10)
    with pytest.raises(ValueError):
        verify(BODY, signature=signature, api_key=KEY, now_ms=NOW_MS, tolerance_s=-1)


def test_empty_body_is_refused_even_when_signed() -> None:
    for empty in (b"", ""):
        signature = sign(empty, api_key=KEY, timestamp_ms=NOW_MS)
        assert not verify(empty, signature=signature, api_key=KEY, now_ms=NOW_MS)


def _malformed() -> list[str]:
    good = sign(BODY, api_key=KEY, timestamp_ms=NOW_MS)
    digest = good.split(",d=")[1]
    return [
        "",
        " ",
        "v=,d=",
        digest,
        f"v={NOW_MS}",
        f"d={digest}",
        f"d={digest},v={NOW_MS}",  # wrong order
        f"v={NOW_MS},d={digest[:-1]}",  # short digest
        f"v={NOW_MS},d={digest}0",  # long digest
        f"v={NOW_MS},d={digest.upper()}",  # upper-case hex
        f"v={NOW_MS},d={digest[:-1]}g",  # not hex
        f" {good}",
        f"{good} ",
        f"{good}\n",
        f"{good},",
        f"{good},v={NOW_MS}",
        f"v={NOW_MS}, d={digest}",
        f"v={NOW_MS};d={digest}",
        f"V={NOW_MS},D={digest}",
        f"v=0{NOW_MS},d={digest}",  # leading zero
        f"v=+{NOW_MS},d={digest}",
        f"v=-{NOW_MS},d={digest}",
        f"v={NOW_MS}.0,d={digest}",
        f"v=1e12,d={digest}",
        f"v={NOW_MS:_},d={digest}",
        "v=\u0661\u0667" + "\u0660" * 11 + f",d={digest}",  # Arabic-Indic digits
        f"v={'9' * 40},d={digest}",  # absurdly large
        f"v={NOW_MS},d={digest},x=1",
        f"t={NOW_MS},v1={digest}",  # another provider's format
        f"sha256={digest}",
        f"v={NOW_MS},d=sha256:{digest}",
        f"v={NOW_MS},d={digest}".replace("a", "\u0430"),  # Cyrillic homoglyph
    ]


@pytest.mark.parametrize("signature", _malformed())
def test_malformed_signature_is_refused(signature: str) -> None:
    assert parse_signature(signature) is None
    assert not verify(BODY, signature=signature, api_key=KEY, now_ms=NOW_MS)


def test_missing_signature() -> None:
    assert not verify(BODY, signature=None, api_key=KEY, now_ms=NOW_MS)


def test_parse_signature() -> None:
    signature = sign(BODY, api_key=KEY, timestamp_ms=NOW_MS)
    assert parse_signature(signature) == (NOW_MS, signature.split(",d=")[1])
    assert parse_signature(signature.encode()) == parse_signature(signature)


def test_bytes_signature_and_surrogates() -> None:
    signature = sign(BODY, api_key=KEY, timestamp_ms=NOW_MS)
    assert verify(BODY, signature=signature.encode(), api_key=KEY, now_ms=NOW_MS)
    assert not verify("\ud800", signature=signature, api_key=KEY, now_ms=NOW_MS)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        sign(BODY, api_key="", timestamp_ms=NOW_MS)
    with pytest.raises(ValueError):
        verify(BODY, signature="v=1,d=" + "0" * 64, api_key="", now_ms=NOW_MS)
    for bad in (0, -5, True):
        with pytest.raises(ValueError):
            sign(BODY, api_key=KEY, timestamp_ms=bad)
