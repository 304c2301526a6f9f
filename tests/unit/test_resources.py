"""Request shapes and error mapping of the seed operations, with aioresponses (no sockets)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aioresponses import aioresponses
from yarl import URL

import aioretell
from aioretell import AsyncRetell
from aioretell.types import (
    ChatAgentResponse,
    ChatResponse,
    ConcurrencyRetrieveResponse,
    PhoneCallResponse,
)

from .mocked_api import BASE, KEY
from .mocked_api import client as client
from .mocked_api import mocked as mocked

FIXTURES = Path(__file__).parent.parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sent(m: aioresponses, method: str, path: str) -> list[Any]:
    return list(m.requests[(method, URL(BASE + path))])


def body_of(call: Any) -> Any:
    return json.loads(call.kwargs["data"])


async def test_create_phone_call_shape(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.post(BASE + "/v2/create-phone-call", status=201, body=fixture("create_phone_call.json"))
    call = await client.call.create_phone_call(
        from_number="+14157774444",
        to_number="+12137774445",
        metadata={"lead": "42"},
        retell_llm_dynamic_variables={"customer_name": "John Doe"},
        agent_override={"agent": {"voice_id": "11labs-Adrian"}},
    )
    assert isinstance(call, PhoneCallResponse)
    assert call.latency is not None and call.latency.e2e is not None
    assert call.latency.e2e.p50 == 800
    assert call.transcript_object is not None
    assert call.transcript_object[0].words[0].word == "hi"
    [request] = sent(mocked, "POST", "/v2/create-phone-call")
    body = body_of(request)
    # Given none, the client makes the idempotency key (see test_idempotency_key.py).
    assert re.fullmatch(r"aioretell_[A-Za-z0-9_-]{24}", body.pop("idempotency_key"))
    assert body == {
        "from_number": "+14157774444",
        "to_number": "+12137774445",
        "agent_override": {"agent": {"voice_id": "11labs-Adrian"}},
        "metadata": {"lead": "42"},
        "retell_llm_dynamic_variables": {"customer_name": "John Doe"},
    }
    headers = request.kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("aioretell/")


async def test_unset_fields_are_omitted_but_explicit_null_is_sent(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    mocked.post(BASE + "/v3/create-web-call", status=201, body=fixture("create_web_call_v3.json"))
    await client.call.create_web_call(agent_id="agent_1", current_node_id=None)
    [request] = sent(mocked, "POST", "/v3/create-web-call")
    assert body_of(request) == {"agent_id": "agent_1", "current_node_id": None}


async def test_chat_flow_shapes(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.post(BASE + "/create-chat-agent", status=201, body=fixture("create_chat_agent.json"))
    mocked.post(BASE + "/create-chat", status=201, body=fixture("create_chat.json"))
    mocked.post(
        BASE + "/create-chat-completion",
        status=201,
        body=b'{"messages": [{"message_id": "m1", "role": "agent", "content": "Hello!",'
        b' "created_timestamp": 1, "surprise": true}]}',
    )
    mocked.patch(BASE + "/end-chat/chat%201", status=204)
    mocked.get(BASE + "/get-chat/chat_1", status=200, body=fixture("get_chat.json"))

    agent = await client.chat_agent.create(
        response_engine={"type": "retell-llm", "llm_id": "llm_1"}, agent_name="Jarvis"
    )
    assert isinstance(agent, ChatAgentResponse)
    chat = await client.chat.create(agent_id=agent.agent_id)
    assert isinstance(chat, ChatResponse)
    reply = await client.chat.create_chat_completion(chat_id="chat_1", content="hi")
    assert reply.messages[0].content == "Hello!"
    assert await client.chat.end("chat 1") is None
    again = await client.chat.retrieve("chat_1")
    assert again.chat_id

    [agent_req] = sent(mocked, "POST", "/create-chat-agent")
    assert body_of(agent_req) == {
        "response_engine": {"type": "retell-llm", "llm_id": "llm_1"},
        "agent_name": "Jarvis",
    }
    [completion] = sent(mocked, "POST", "/create-chat-completion")
    assert body_of(completion) == {"chat_id": "chat_1", "content": "hi"}
    [end] = sent(mocked, "PATCH", "/end-chat/chat%201")
    assert end.kwargs["data"] is None


async def test_retrieve_with_query(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.get(
        BASE + "/get-chat-agent/agent_1?version=3",
        status=200,
        body=fixture("create_chat_agent.json"),
    )
    await client.chat_agent.retrieve("agent_1", version=3)
    [request] = sent(mocked, "GET", "/get-chat-agent/agent_1?version=3")
    assert request.kwargs["params"] == {"version": "3"}
    assert "Content-Type" not in request.kwargs["headers"]  # no body, no Content-Type


async def test_concurrency(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.get(
        BASE + "/get-concurrency",
        status=200,
        body=b'{"current_concurrency": 3, "concurrency_limit": 20, "new_field": 1}',
    )
    limits = await client.concurrency.retrieve()
    assert limits == ConcurrencyRetrieveResponse(current_concurrency=3, concurrency_limit=20)


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (
            400,
            b'{"status":"error","message":"bad from_number"}',
            aioretell.BadRequestError,
            "bad from_number",
        ),
        (
            401,
            b'{"status":"error","message":"Invalid API key"}',
            aioretell.AuthenticationError,
            "Invalid API key",
        ),
        (403, b'{"error_message":"forbidden"}', aioretell.PermissionDeniedError, "forbidden"),
        (404, b'{"status":"error","message":"Not found"}', aioretell.NotFoundError, "Not found"),
        (422, b"", aioretell.UnprocessableEntityError, "HTTP 422 with an empty body"),
        (502, b"<html>bad gateway</html>", aioretell.InternalServerError, "HTTP 502 with a body"),
        (402, b'{"status":"error","message":"pay"}', aioretell.APIStatusError, "pay"),
    ],
)
async def test_status_mapping(
    mocked: aioresponses,
    client: AsyncRetell,
    status: int,
    body: bytes,
    cls: type[aioretell.APIStatusError],
    message: str,
) -> None:
    mocked.get(BASE + "/v2/get-call/call_1", status=status, body=body, headers={"x-trace": "t1"})
    with pytest.raises(cls) as info:
        await client.call.retrieve("call_1")
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert info.value.message.startswith(message)
    assert info.value.body == body
    assert info.value.headers["x-trace"] == "t1"


# -- bad input: raised before anything is sent ----------------------------------------------


#: A phone call's required arguments; each case below changes or adds one.
PHONE_CALL = {"from_number": "+14157774444", "to_number": "+12137774445"}


@pytest.mark.parametrize(
    ("changes", "exc", "names"),
    [
        ({"to_number": "2137774445"}, ValueError, "to_number"),
        ({"from_number": "14157774444"}, ValueError, "from_number"),
        ({"to_number": 12137774445}, TypeError, "to_number"),
        ({"from_number": "+1"}, ValueError, "from_number"),
        ({"metadata": "x"}, TypeError, "metadata"),
        ({"retell_llm_dynamic_variables": {"n": 1}}, TypeError, "retell_llm_dynamic_variables"),
        ({"idempotency_key": "a b"}, ValueError, "idempotency_key"),
        ({"override_agent_version": -1}, ValueError, "override_agent_version"),
        ({"agent_override": {"agent": 5}}, TypeError, "agent_override.agent"),
        ({"to": "x"}, TypeError, "'to'"),
    ],
)
async def test_bad_phone_call_arguments(
    mocked: aioresponses,
    client: AsyncRetell,
    changes: dict[str, Any],
    exc: type[Exception],
    names: str,
) -> None:
    with pytest.raises(exc, match=names):
        await client.call.create_phone_call(**{**PHONE_CALL, **changes})
    assert not mocked.requests


async def test_ignore_e164_validation_skips_the_local_check(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    mocked.post(BASE + "/v2/create-phone-call", status=201, body=fixture("create_phone_call.json"))
    await client.call.create_phone_call(
        from_number="4157774444", to_number="sip:bob@example.test", ignore_e164_validation=True
    )
    assert len(sent(mocked, "POST", "/v2/create-phone-call")) == 1


@pytest.mark.parametrize(
    ("value", "exc"), [("", ValueError), ("  ", ValueError), (None, TypeError), (7, TypeError)]
)
async def test_empty_or_wrong_path_ids(
    mocked: aioresponses, client: AsyncRetell, value: Any, exc: type[Exception]
) -> None:
    with pytest.raises(exc, match="call_id"):
        await client.call.retrieve(value)
    with pytest.raises(exc, match="chat_id"):
        await client.chat.end(value)
    assert not mocked.requests


async def test_missing_required_argument(mocked: aioresponses, client: AsyncRetell) -> None:
    with pytest.raises(TypeError, match="response_engine"):
        await client.chat_agent.create(agent_name="x")  # type: ignore[call-arg]
    assert not mocked.requests


# -- construction, lifecycle and secrets -----------------------------------------------------


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETELL_API_KEY", raising=False)
    with pytest.raises(ValueError, match="RETELL_API_KEY"):
        AsyncRetell()


async def test_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETELL_API_KEY", KEY)
    monkeypatch.setenv("RETELL_BASE_URL", "http://env.test/")
    async with AsyncRetell() as c:
        assert c.base_url == "http://env.test"
    monkeypatch.delenv("RETELL_BASE_URL")
    async with AsyncRetell() as c:
        assert c.base_url == "https://api.retellai.com"


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"max_retries": -1}, ValueError),
        ({"max_retries": "2"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": "5"}, TypeError),
        ({"connection_limit": 0}, ValueError),
        ({"base_url": "ftp://x"}, ValueError),
    ],
)
def test_bad_client_options(kwargs: dict[str, Any], exc: type[Exception]) -> None:
    with pytest.raises(exc, match=next(iter(kwargs))):
        AsyncRetell(api_key=KEY, **kwargs)


async def test_closed_client_raises(mocked: aioresponses) -> None:
    client = AsyncRetell(api_key=KEY, base_url=BASE)
    async with client:
        pass
    with pytest.raises(aioretell.ClientClosedError, match="closed"):
        await client.call.retrieve("call_1")
    with pytest.raises(aioretell.ClientClosedError):
        await client.with_options(max_retries=0).concurrency.retrieve()
    assert not mocked.requests


async def test_key_never_in_repr_logs_or_errors(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aioretell")
    mocked.get(BASE + "/v2/get-call/c1", status=503, body=b'{"message": "busy"}')
    mocked.get(BASE + "/v2/get-call/c1", status=401, body=b'{"message": "Invalid API key"}')
    client = AsyncRetell(api_key=KEY, base_url=BASE, max_retries=1)
    client._sleep = _no_sleep
    async with client:
        with pytest.raises(aioretell.AuthenticationError) as info:
            await client.call.retrieve("c1")
        texts = [
            repr(client),
            repr(client.with_options(timeout=3)),
            str(info.value),
            repr(info.value),
        ]
        texts.append(repr(info.value.request))
    texts.extend(record.getMessage() for record in caplog.records)
    assert any("getCall" in t for t in texts)  # the retry was logged
    for text in texts:
        assert KEY not in text


async def _no_sleep(_: float) -> None:
    return None


async def test_nested_params_accept_request_structs(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    from aioretell.types import AgentOverrideRequest

    mocked.post(BASE + "/v2/create-phone-call", status=201, body=fixture("create_phone_call.json"))
    override = msgspec.convert({"agent": {"voice_id": "11labs-Adrian"}}, AgentOverrideRequest)
    await client.call.create_phone_call(
        from_number="+14157774444", to_number="+12137774445", agent_override=override
    )
    [request] = sent(mocked, "POST", "/v2/create-phone-call")
    assert body_of(request)["agent_override"] == {"agent": {"voice_id": "11labs-Adrian"}}


async def test_path_params_by_keyword(mocked: aioresponses, client: AsyncRetell) -> None:
    mocked.get(BASE + "/get-chat/chat_9", status=200, body=fixture("get_chat.json"))
    chat = await client.chat.retrieve(chat_id="chat_9")
    assert isinstance(chat, ChatResponse)
