"""``client.chat_agent``: agents that answer chats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from msgspec import UNSET, UnsetType

from .._validation import build_params, require_id
from ..types.chat_agent import (
    ChatAgentCreateParams,
    ChatAgentResponse,
    ChatAgentRetrieveQuery,
    ChatHandbookConfig,
    PostChatAnalysisData,
)
from ..types.shared import (
    ContactMemoryConfig,
    GuardrailConfig,
    PIIConfig,
    PostSessionTool,
    PreSessionTool,
    ResponseEngine,
)
from ._base import Resource, arguments, operation

_CREATE = operation("createChatAgent")
_GET = operation("getChatAgent")

Nested = Mapping[str, Any]


class ChatAgentResource(Resource):
    __slots__ = ()

    async def create(
        self,
        *,
        response_engine: ResponseEngine | Nested,
        agent_name: str | UnsetType | None = UNSET,
        version_title: str | UnsetType | None = UNSET,
        auto_close_message: str | UnsetType | None = UNSET,
        end_chat_after_silence_ms: int | UnsetType | None = UNSET,
        language: Any = UNSET,
        webhook_url: str | UnsetType | None = UNSET,
        webhook_events: Sequence[str] | UnsetType | None = UNSET,
        webhook_timeout_ms: int | UnsetType = UNSET,
        contact_memory_config: ContactMemoryConfig | Nested | UnsetType = UNSET,
        data_storage_setting: str | UnsetType | None = UNSET,
        data_storage_retention_days: int | UnsetType | None = UNSET,
        opt_in_signed_url: bool | UnsetType = UNSET,
        signed_url_expiration_ms: int | UnsetType | None = UNSET,
        post_chat_analysis_data: Sequence[PostChatAnalysisData | Nested] | UnsetType | None = UNSET,
        post_chat_analysis_model: str | UnsetType | None = UNSET,
        pii_config: PIIConfig | Nested | UnsetType = UNSET,
        guardrail_config: GuardrailConfig | Nested | UnsetType = UNSET,
        handbook_config: ChatHandbookConfig | Nested | UnsetType = UNSET,
        timezone: str | UnsetType | None = UNSET,
        pre_session_tools: Sequence[PreSessionTool | Nested] | UnsetType | None = UNSET,
        post_session_tools: Sequence[PostSessionTool | Nested] | UnsetType | None = UNSET,
    ) -> ChatAgentResponse:
        """Create a chat agent on a response engine (a Retell LLM, a flow or your own LLM)."""
        body = build_params(ChatAgentCreateParams, arguments(locals()))
        result: ChatAgentResponse = await self._client._request(_CREATE, body=body)
        return result

    async def retrieve(
        self, agent_id: str, *, version: str | int | UnsetType = UNSET
    ) -> ChatAgentResponse:
        """One chat agent, at its latest or at the given ``version``."""
        query = build_params(ChatAgentRetrieveQuery, {"version": version})
        result: ChatAgentResponse = await self._client._request(
            _GET, path={"agent_id": require_id("agent_id", agent_id)}, query=query
        )
        return result
