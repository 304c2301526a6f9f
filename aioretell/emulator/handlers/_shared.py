"""Request fields that calls and chats share."""

from __future__ import annotations

from ..state import JSON


def session_fields(body: JSON) -> JSON:
    """``metadata`` and dynamic variables of a new call or chat, as record fields."""
    return {
        "metadata": body.get("metadata") or {},
        "dynamic_variables": body.get("retell_llm_dynamic_variables") or {},
    }
