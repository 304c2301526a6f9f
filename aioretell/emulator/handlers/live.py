"""Calls in progress (listen in, take over, update) and re-running analysis of finished
calls and chats.

A call is live while ``registered`` or ``ongoing``. Taking over needs the participant id that
listening in handed out for the same call.
"""

from __future__ import annotations

from ..registry import ApiError, Reply, Request, found, handles
from ..render import WEB_TOKEN_TTL_MS, render_call, render_chat
from ..state import TERMINAL_CALL_STATUSES, CallRecord

_LISTEN_URL = "wss://emulator.invalid/listen"


def _call(req: Request) -> CallRecord:
    return found(req.state.calls, req.path["call_id"], "Call")


def _live_call(req: Request) -> CallRecord:
    call = _call(req)
    status = call.status(req.state.now())
    if status in TERMINAL_CALL_STATUSES:
        raise ApiError(400, f"Call {call.call_id} is not live (status {status})")
    return call


@handles("listenLiveCall")
def listen(req: Request) -> Reply:
    call = _live_call(req)
    state = req.state
    participant_id = state.new_id("participant_")
    state.store("live_listeners")[participant_id] = {"call_id": call.call_id}
    return Reply(
        200,
        {
            "transport": "gateway",
            "url": f"{_LISTEN_URL}/{call.call_id}",
            "access_token": state.new_id("lst_"),
            "room_name": f"room_{call.call_id}",
            "participant_id": participant_id,
            "expires_at": state.now_ms() + WEB_TOKEN_TTL_MS,
        },
    )


@handles("takeOverLiveCall")
def take_over(req: Request) -> Reply:
    call = _live_call(req)
    participant_id = req.body["participant_id"]
    listener = req.state.store("live_listeners").get(participant_id)
    if listener is None or listener["call_id"] != call.call_id:
        raise ApiError(400, f"{participant_id} is not listening to call {call.call_id}")
    return Reply(200, {"success": True})


@handles("updateLiveCall")
def update_live(req: Request) -> Reply:
    """Apply ``fields_to_override`` to the call; ``call_control`` has nothing to steer here."""
    call = _live_call(req)
    fields = req.body.get("fields_to_override") or {}
    if "metadata" in fields:
        call.metadata = fields["metadata"]
    if "data_storage_setting" in fields:
        call.data_storage_setting = fields["data_storage_setting"]
    call.dynamic_variables = {
        **call.dynamic_variables,
        **(fields.get("override_dynamic_variables") or {}),
    }
    return Reply(200, {"success": True})


@handles("rerunCallAnalysis", shaped=True)
def rerun_call_analysis(req: Request) -> Reply:
    """Analysis is derived from the call's seed, so a rerun answers the same analysis."""
    call = _call(req)
    status = call.status(req.state.now())
    if status != "ended":
        raise ApiError(400, f"Call {call.call_id} has not ended (status {status})")
    return Reply(201, render_call(call, req.state))


@handles("rerunChatAnalysis", shaped=True)
def rerun_chat_analysis(req: Request) -> Reply:
    chat = found(req.state.chats, req.path["chat_id"], "Chat")
    if chat.end_ms is None:
        raise ApiError(400, f"Chat {chat.chat_id} has not ended")
    return Reply(201, render_chat(chat))
