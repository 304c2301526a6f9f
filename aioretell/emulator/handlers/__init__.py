"""Stateful handlers, registered by importing their modules."""

from . import agents, calls, chats

__all__ = ["agents", "calls", "chats"]
