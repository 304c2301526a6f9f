"""Helpers several handler modules share."""

from __future__ import annotations

from ..state import JSON, EmulatorState


def session_fields(body: JSON) -> JSON:
    """``metadata`` and dynamic variables of a new call or chat, as record fields."""
    return {
        "metadata": body.get("metadata") or {},
        "dynamic_variables": body.get("retell_llm_dynamic_variables") or {},
    }


def run_job(state: EmulatorState, kind: str, succeeded: int, failed: int) -> JSON:
    """Record a finished account job of ``kind`` (contact import, backfill, CRM sync).

    Jobs finish as soon as they start: the answer to starting one (returned) says
    ``running``; status reads (``state.jobs[kind]``) report it ``idle`` with its counts.
    """
    started = {"start_timestamp": state.now_ms(), "triggered_by": "manual"}
    state.jobs[kind] = {"status": "idle", **started, "succeeded": succeeded, "failed": failed}
    return {"status": "running", **started}
