"""Finding a campaign's calls again: the metadata every create carries, and lookups by it.

Each create is tagged ``{"aioretell_campaign": id, "aioretell_ref": "L12", "aioretell_attempt":
"1"}`` and sent with the idempotency key ``id-L12-1``. A row whose create may or may not have
happened (``dispatching`` after a crash, an :class:`~aioretell.AmbiguousOutcomeError`, or a 2xx
that could not be read) is looked up with ``list-calls`` filtered on those three keys: found
means created. Not found means nothing only once list-calls has had time to index the call
(the runner's ``lookup_grace_s`` after the dispatch); then it may be sent again, with the same
key, so a create that landed late is answered with the existing call instead of a second one.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from .._client import AsyncRetell
from ..types.call import V3CallResponse

CAMPAIGN_KEY = "aioretell_campaign"
REF_KEY = "aioretell_ref"
ATTEMPT_KEY = "aioretell_attempt"


def new_campaign_id() -> str:
    return f"cmp_{secrets.token_hex(6)}"


def call_metadata(campaign_id: str, ref: str, attempt: int) -> dict[str, str]:
    return {CAMPAIGN_KEY: campaign_id, REF_KEY: ref, ATTEMPT_KEY: str(attempt)}


def idempotency_key(campaign_id: str, ref: str, attempt: int) -> str:
    return f"{campaign_id}-{ref}-{attempt}"


def _eq(key: str, value: str) -> dict[str, str]:
    return {"type": "string", "op": "eq", "key": key, "value": value}


def campaign_filter(campaign_id: str) -> dict[str, Any]:
    return {"metadata": [_eq(CAMPAIGN_KEY, campaign_id)]}


def attempt_filter(campaign_id: str, ref: str, attempt: int) -> dict[str, Any]:
    return {
        "metadata": [
            _eq(CAMPAIGN_KEY, campaign_id),
            _eq(REF_KEY, ref),
            _eq(ATTEMPT_KEY, str(attempt)),
        ]
    }


async def find_call(
    client: AsyncRetell, campaign_id: str, ref: str, attempt: int
) -> V3CallResponse | None:
    """The call made for this row's attempt, if the API has one."""
    page = await client.call.list(
        filter_criteria=attempt_filter(campaign_id, ref, attempt), limit=10
    )
    if not page.items:
        return None
    # One per key by construction; should there be more, the oldest is the one to follow.
    return min(page.items, key=lambda call: call.start_timestamp or 0)


class _CallId(msgspec.Struct):
    call_id: str


def call_id_from_body(body: bytes) -> str | None:
    """The ``call_id`` of a create's answer that did not decode as a whole, if it has one."""
    try:
        return msgspec.json.decode(body, type=_CallId).call_id or None
    except msgspec.DecodeError:  # ValidationError is a DecodeError
        return None
