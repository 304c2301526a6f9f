"""Batch calls: a scheduled list of outbound calls, stored as a record.

The emulator does not dial a batch's tasks: its calls would compete with the calls a test
places itself for the account's concurrency.
"""

from __future__ import annotations

from aioretell._validation import is_e164

from ..crud import Collection
from ..registry import ApiError, Reply, Request, handles

BATCH_CALLS = Collection("batch_calls", "batch_call_", "Batch call")


@handles("createBatchCall")
def create_batch_call(req: Request) -> Reply:
    body = req.body
    numbers = [body["from_number"]] + [
        t["to_number"] for t in body["tasks"] if not t.get("ignore_e164_validation")
    ]
    bad = [n for n in numbers if not is_e164(n)]
    if bad:
        raise ApiError(400, f"Phone numbers must be in E.164 form: {', '.join(bad)}")
    state = req.state
    batch_id = state.new_id(BATCH_CALLS.prefix)
    record = {
        **body,
        "batch_call_id": batch_id,
        "name": body.get("name") or f"Batch call {batch_id[-6:]}",
        "scheduled_timestamp": body.get("trigger_timestamp") or state.now_ms(),
        "total_task_count": len(body["tasks"]),
    }
    BATCH_CALLS.records(state)[batch_id] = record
    return Reply(201, record)
