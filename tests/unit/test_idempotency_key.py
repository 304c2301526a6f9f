"""create_phone_call without a caller-given idempotency key: the client makes one per call, sends
it on every attempt, and may therefore retry the ambiguous failures of that call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aioretell import _exceptions as E
from aioretell._idempotency import new_idempotency_key
from aioretell._operation_table import OPERATIONS
from aioretell._sansio import HTTPResponse

from .test_retry import ScriptedTransport, Step, make_client, reply

FROM, TO = "+14155550100", "+14155550142"
#: The spec's pattern and bounds for create-phone-call's idempotency_key.
SPEC_KEY = re.compile(r"^[A-Za-z0-9_-]{5,255}$")

CALL = (Path(__file__).parent.parent / "fixtures" / "create_phone_call.json").read_bytes()


def created() -> HTTPResponse:
    return HTTPResponse(201, {}, CALL)


def keys_sent(transport: ScriptedTransport) -> list[str | None]:
    return [json.loads(r.body or b"{}").get("idempotency_key") for r in transport.sent]


def test_only_create_phone_call_has_a_key_the_client_fills() -> None:
    # createCreditTopupInvoice requires the caller's key; no other create has one.
    filled = {op_id for op_id, op in OPERATIONS.items() if op.idempotency_field is not None}
    assert filled == {"createPhoneCall"}
    assert OPERATIONS["createPhoneCall"].idempotency_field == "idempotency_key"


@pytest.mark.parametrize(
    "failure",
    [reply(500), reply(503), reply(408), E.APIConnectionError(), E.APITimeoutError()],
    ids=["500", "503", "408", "reset", "read-timeout"],
)
async def test_ambiguous_failure_is_retried_under_one_key(failure: Step | BaseException) -> None:
    transport = ScriptedTransport(failure, failure, created)
    client, slept = make_client(transport)
    async with client:
        call = await client.call.create_phone_call(from_number=FROM, to_number=TO)
    assert call.call_id == json.loads(CALL)["call_id"]
    keys = keys_sent(transport)
    assert len(keys) == 3 and len(slept) == 2
    assert keys[0] is not None and SPEC_KEY.match(keys[0])
    assert keys == [keys[0]] * 3


async def test_each_call_gets_its_own_key() -> None:
    transport = ScriptedTransport(created, created)
    client, _ = make_client(transport)
    async with client:
        await client.call.create_phone_call(from_number=FROM, to_number=TO)
        await client.call.create_phone_call(from_number=FROM, to_number=TO)
    first, second = keys_sent(transport)
    assert first != second


async def test_last_failure_is_still_ambiguous_and_names_the_key() -> None:
    transport = ScriptedTransport(E.APIConnectionError(), E.APIConnectionError())
    client, _ = make_client(transport, max_retries=1)
    async with client:
        with pytest.raises(E.AmbiguousOutcomeError) as info:
            await client.call.create_phone_call(
                from_number=FROM, to_number=TO, metadata={"lead": "7"}
            )
    [key, again] = keys_sent(transport)
    assert info.value.idempotency_key == key == again
    assert info.value.request.attempts == 2
    assert info.value.metadata == {"lead": "7"}


async def test_max_retries_zero_is_one_request_and_ambiguous() -> None:
    transport = ScriptedTransport(reply(502))
    client, _ = make_client(transport, max_retries=0)
    async with client:
        with pytest.raises(E.AmbiguousOutcomeError) as info:
            await client.call.create_phone_call(from_number=FROM, to_number=TO)
    assert info.value.idempotency_key == keys_sent(transport)[0]


async def test_the_callers_key_is_sent_as_given_and_keeps_the_create_rule() -> None:
    transport = ScriptedTransport(reply(500), created)
    client, _ = make_client(transport)
    async with client:
        with pytest.raises(E.AmbiguousOutcomeError) as info:
            await client.call.create_phone_call(
                from_number=FROM, to_number=TO, idempotency_key="lead-42-attempt-1"
            )
    assert keys_sent(transport) == ["lead-42-attempt-1"]
    assert info.value.idempotency_key == "lead-42-attempt-1"


async def test_client_errors_are_not_retried_even_with_a_key() -> None:
    transport = ScriptedTransport(reply(422), created)
    client, _ = make_client(transport)
    async with client:
        with pytest.raises(E.UnprocessableEntityError):
            await client.call.create_phone_call(from_number=FROM, to_number=TO)
    assert len(transport.sent) == 1


async def test_other_creates_keep_todays_rule() -> None:
    transport = ScriptedTransport(reply(500), created)
    client, _ = make_client(transport)
    async with client:
        with pytest.raises(E.AmbiguousOutcomeError) as info:
            await client.call.create_web_call(agent_id="agent_1")
    assert len(transport.sent) == 1
    assert info.value.idempotency_key is None
    assert b"idempotency_key" not in (transport.sent[0].body or b"")


# -- how the keys are made -----------------------------------------------------------------


def test_made_keys_fit_the_spec_and_never_repeat() -> None:
    keys = [new_idempotency_key() for _ in range(10_000)]
    assert len(set(keys)) == len(keys)
    assert all(SPEC_KEY.match(key) and key.startswith("aioretell_") for key in keys)
    assert {len(key) for key in keys} == {len("aioretell_") + 24}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_makes_keys_of_its_own() -> None:
    # In a fresh single-threaded interpreter: the parent makes a key, forks, and both make
    # their next one; the child's must not be the parent's next (it inherited the counter).
    script = textwrap.dedent(
        """
        import os
        from aioretell._idempotency import new_idempotency_key
        new_idempotency_key()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, new_idempotency_key().encode())
            os._exit(0)
        os.waitpid(pid, 0)
        print(new_idempotency_key(), os.read(read, 100).decode())
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    parent, child = done.stdout.split()
    assert parent != child
    assert parent[len("aioretell_") :][:16] != child[len("aioretell_") :][:16]
