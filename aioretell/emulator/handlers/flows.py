"""Conversation flows and reusable flow components: plain CRUD over their stores."""

from __future__ import annotations

from ..crud import Collection, register

FLOWS = register(
    Collection(
        "conversation_flows",
        "conversation_flow_",
        "Conversation flow",
        create="createConversationFlow",
        get="getConversationFlow",
        update="updateConversationFlow",
        delete="deleteConversationFlow",
        list="listConversationFlows",
        defaults={"version": 0, "is_published": False},
    )
)

COMPONENTS = register(
    Collection(
        "conversation_flow_components",
        "conversation_flow_component_",
        "Conversation flow component",
        create="createConversationFlowComponent",
        get="getConversationFlowComponent",
        update="updateConversationFlowComponent",
        delete="deleteConversationFlowComponent",
        list="listConversationFlowComponents",
    )
)
