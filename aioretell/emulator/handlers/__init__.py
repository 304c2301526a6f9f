"""Stateful handlers, registered by importing their modules (one module per API area)."""

from . import (
    account,
    agent_tools,
    agent_versions,
    agents,
    apps,
    batch_calls,
    calls,
    chats,
    contacts,
    crm,
    flows,
    knowledge_bases,
    live,
    phone_numbers,
    testing,
    voices,
)

__all__ = [
    "account",
    "agent_tools",
    "agent_versions",
    "agents",
    "apps",
    "batch_calls",
    "calls",
    "chats",
    "contacts",
    "crm",
    "flows",
    "knowledge_bases",
    "live",
    "phone_numbers",
    "testing",
    "voices",
]
