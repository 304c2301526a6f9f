"""Calls: create (phone, web, registered), read, list, update, stop, delete; concurrency."""

from __future__ import annotations

from ..listing import list_records
from ..registry import Reply, Request, found, handles
from ..render import call_view, render_call, render_concurrency, render_web_call_created
from ..state import DEFAULT_AGENT_ID, CallRecord
from ._shared import session_fields

_UPDATABLE = ("metadata", "data_storage_setting", "custom_attributes")


@handles("createPhoneCall", shaped=True)
def create_phone_call(req: Request) -> Reply:
    body = req.body
    state = req.state
    key = body.get("idempotency_key")
    if key is not None:
        earlier = state.idempotent_call(key)
        if earlier is not None:
            return Reply(201, render_call(earlier, state))
    call = state.create_call(
        "phone_call",
        # No agent is looked up from from_number: the call uses the override (a stored
        # agent, checked by .references) or the built-in default agent.
        body.get("override_agent_id") or DEFAULT_AGENT_ID,
        idempotency_key=key,
        dial=True,
        from_number=body["from_number"],
        to_number=body["to_number"],
        direction="outbound",
        custom_sip_headers=body.get("custom_sip_headers"),
        **session_fields(body),
    )
    return Reply(201, render_call(call, state))


@handles("registerPhoneCall", shaped=True)
def register_phone_call(req: Request) -> Reply:
    body = req.body
    call = req.state.create_call(
        "phone_call",
        body["agent_id"],
        from_number=body.get("from_number"),
        to_number=body.get("to_number"),
        direction=body.get("direction", "inbound"),
        **session_fields(body),
    )
    return Reply(201, render_call(call, req.state))


@handles("createWebCall", shaped=True)
def create_web_call(req: Request) -> Reply:
    state = req.state
    token = state.new_id("wct_")
    call = state.create_call(
        "web_call", req.body["agent_id"], access_token=token, **session_fields(req.body)
    )
    return Reply(201, render_web_call_created(call))


def _call(req: Request) -> CallRecord:
    return found(req.state.calls, req.path["call_id"], "Call")


@handles("getCall", shaped=True)
def get_call(req: Request) -> Reply:
    return Reply(200, render_call(_call(req), req.state))


@handles("updateCallMetadata", shaped=True)
def update_call(req: Request) -> Reply:
    call = _call(req)
    for name in _UPDATABLE:
        if name in req.body:
            setattr(call, name, req.body[name])
    return Reply(200, render_call(call, req.state))


@handles("deleteCall", shaped=True)
def delete_call(req: Request) -> Reply:
    req.state.delete_call(_call(req))
    return Reply(204)


@handles("stopCall", shaped=True)
def stop_call(req: Request) -> Reply:
    req.state.stop_call(_call(req))
    return Reply(204)


@handles("listCalls", shaped=True)
def list_calls(req: Request) -> Reply:
    state = req.state
    now = state.now()  # one instant for the filters and the page alike
    body = list_records(
        req.body,
        state.calls.values(),
        "call_id",
        item_id=_call_id,
        view=lambda call: call_view(call, state, now),
        render=lambda call: render_call(call, state, transcript=False, at=now),
    )
    return Reply(200, body)


def _call_id(call: CallRecord) -> str:
    return call.call_id


@handles("getConcurrency", shaped=True)
def get_concurrency(req: Request) -> Reply:
    return Reply(200, render_concurrency(req.state))
