"""``client.chat``: text conversations with an agent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import UNSET, UnsetType

from .._validation import build_params, require_id
from ..types.chat import (
    ChatCreateChatCompletionParams,
    ChatCreateChatCompletionResponse,
    ChatCreateParams,
    ChatResponse,
)
from ._base import Resource, arguments, operation

_CREATE_CHAT = operation("createChat")
_CREATE_COMPLETION = operation("createChatCompletion")
_END_CHAT = operation("endChat")
_GET_CHAT = operation("getChat")


class ChatResource(Resource):
    __slots__ = ()

    async def create(
        self,
        *,
        agent_id: str,
        agent_version: str | int | UnsetType = UNSET,
        metadata: Mapping[str, Any] | UnsetType = UNSET,
        retell_llm_dynamic_variables: Mapping[str, str] | UnsetType = UNSET,
    ) -> ChatResponse:
        """Start a chat with ``agent_id``. Not repeated on an ambiguous failure."""
        fields = arguments(locals())
        require_id("agent_id", agent_id)
        body = build_params(ChatCreateParams, fields)
        result: ChatResponse = await self._client._request(
            _CREATE_CHAT, body=body, metadata=metadata
        )
        return result

    async def create_chat_completion(
        self, *, chat_id: str, content: str
    ) -> ChatCreateChatCompletionResponse:
        """Send the user's ``content`` and get the agent's new messages back.

        Not repeated on an ambiguous failure: a repeat would send the user's message twice.
        """
        fields = arguments(locals())
        require_id("chat_id", chat_id)
        body = build_params(ChatCreateChatCompletionParams, fields)
        result: ChatCreateChatCompletionResponse = await self._client._request(
            _CREATE_COMPLETION, body=body
        )
        return result

    async def end(self, chat_id: str) -> None:
        """End an ongoing chat."""
        await self._client._request(_END_CHAT, path={"chat_id": require_id("chat_id", chat_id)})

    async def retrieve(self, chat_id: str) -> ChatResponse:
        """One chat with its transcript and messages."""
        result: ChatResponse = await self._client._request(
            _GET_CHAT, path={"chat_id": require_id("chat_id", chat_id)}
        )
        return result
