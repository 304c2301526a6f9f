"""``client.call``: phone and web calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import UNSET, UnsetType

from .._validation import build_params, require_e164, require_id
from ..types.call import (
    CallCreatePhoneCallParams,
    CallCreateWebCallParams,
    CallFilter,
    CallListParams,
    CallListResponse,
    CallRegisterPhoneCallParams,
    CallResponse,
    CreateWebCallResponse,
    PhoneCallResponse,
)
from ..types.shared import AgentOverrideRequest
from ._base import Resource, arguments, operation

_CREATE_PHONE_CALL = operation("createPhoneCall")
_CREATE_WEB_CALL = operation("createWebCall")
_REGISTER_PHONE_CALL = operation("registerPhoneCall")
_GET_CALL = operation("getCall")
_LIST_CALLS = operation("listCalls")

AgentOverride = AgentOverrideRequest | Mapping[str, Any]


class CallResource(Resource):
    __slots__ = ()

    async def create_phone_call(
        self,
        *,
        from_number: str,
        to_number: str,
        idempotency_key: str | UnsetType = UNSET,
        override_agent_id: str | UnsetType = UNSET,
        override_agent_version: str | int | UnsetType = UNSET,
        agent_override: AgentOverride | UnsetType = UNSET,
        metadata: Mapping[str, Any] | UnsetType = UNSET,
        retell_llm_dynamic_variables: Mapping[str, str] | UnsetType = UNSET,
        custom_sip_headers: Mapping[str, str] | UnsetType = UNSET,
        ignore_e164_validation: bool | UnsetType = UNSET,
        honor_internal_dnc: bool | UnsetType = UNSET,
    ) -> PhoneCallResponse:
        """Dial ``to_number`` from ``from_number`` (both E.164) with the number's agent.

        Never repeated on an ambiguous failure unless the client allows it: a failure that may
        have placed the call raises :class:`~aioretell.AmbiguousOutcomeError`.
        """
        fields = arguments(locals())
        if ignore_e164_validation is not True:
            require_e164("from_number", from_number)
            require_e164("to_number", to_number)
        body = build_params(CallCreatePhoneCallParams, fields)
        result: PhoneCallResponse = await self._client._request(
            _CREATE_PHONE_CALL, body=body, metadata=metadata
        )
        return result

    async def create_web_call(
        self,
        *,
        agent_id: str,
        agent_version: str | int | UnsetType = UNSET,
        agent_override: AgentOverride | UnsetType = UNSET,
        metadata: Mapping[str, Any] | UnsetType = UNSET,
        retell_llm_dynamic_variables: Mapping[str, str] | UnsetType = UNSET,
        current_node_id: str | UnsetType | None = UNSET,
        current_state: str | UnsetType | None = UNSET,
    ) -> CreateWebCallResponse:
        """Start a web call with ``agent_id``; the response carries the access token."""
        fields = arguments(locals())
        require_id("agent_id", agent_id)
        body = build_params(CallCreateWebCallParams, fields)
        result: CreateWebCallResponse = await self._client._request(
            _CREATE_WEB_CALL, body=body, metadata=metadata
        )
        return result

    async def register_phone_call(
        self,
        *,
        agent_id: str,
        agent_version: str | int | UnsetType = UNSET,
        agent_override: AgentOverride | UnsetType = UNSET,
        from_number: str | UnsetType = UNSET,
        to_number: str | UnsetType = UNSET,
        direction: str | UnsetType = UNSET,
        metadata: Mapping[str, Any] | UnsetType = UNSET,
        retell_llm_dynamic_variables: Mapping[str, str] | UnsetType = UNSET,
    ) -> PhoneCallResponse:
        """Register a call that your own telephony will connect (custom SIP / Twilio)."""
        fields = arguments(locals())
        require_id("agent_id", agent_id)
        body = build_params(CallRegisterPhoneCallParams, fields)
        result: PhoneCallResponse = await self._client._request(
            _REGISTER_PHONE_CALL, body=body, metadata=metadata
        )
        return result

    async def retrieve(self, call_id: str) -> CallResponse:
        """One call, phone or web, with its status, transcript and analysis so far."""
        result: CallResponse = await self._client._request(
            _GET_CALL, path={"call_id": require_id("call_id", call_id)}
        )
        return result

    async def list(
        self,
        *,
        filter_criteria: CallFilter | Mapping[str, Any] | UnsetType = UNSET,
        sort_order: str | UnsetType = UNSET,
        limit: int | UnsetType = UNSET,
        skip: int | UnsetType = UNSET,
        pagination_key: str | UnsetType = UNSET,
        include_total: bool | UnsetType = UNSET,
    ) -> CallListResponse:
        """One page of calls matching ``filter_criteria``; page on with ``pagination_key``."""
        body = build_params(CallListParams, arguments(locals()))
        result: CallListResponse = await self._client._request(_LIST_CALLS, body=body)
        return result
