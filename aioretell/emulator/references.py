"""Body fields that name stored objects: refused when the object does not exist.

Retell refuses a call for an agent it does not know, an agent whose response engine names a
missing LLM, a chat with a missing chat agent, and so on. Each operation below lists the
body fields that name a stored object, as a path (``tasks[].override_agent_id``: that field
of every task; ``knowledge_base_ids[]``: every id of the list) and the store it names. Where
the field sits next to an agent version (``agent_version``, ``override_agent_version``), the
version must exist too.

The status is the one the spec lists for the operation (:func:`.spec.refusal_status`): 422
("cannot find requested asset"), else 404, else 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import spec
from .crud import Collection
from .handlers.agent_versions import version_of
from .handlers.agents import AGENTS, CHAT_AGENTS, LLMS
from .handlers.apps import APPS
from .handlers.contacts import UPLOADS
from .handlers.flows import FLOWS
from .handlers.knowledge_bases import KNOWLEDGE_BASES
from .handlers.testing import DEFINITIONS
from .handlers.voices import VOICES
from .registry import ApiError
from .state import JSON, EmulatorState


@dataclass(frozen=True, slots=True)
class Target:
    """A kind of stored object a field may name: what it is called, and where it is kept."""

    what: str
    records: Callable[[EmulatorState], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Ref:
    path: str
    target: Target
    #: The sibling field naming a version of the referenced agent.
    version: str | None = None


def _target(collection: Collection) -> Target:
    return Target(collection.what, collection.records)


AGENT = _target(AGENTS)
CHAT_AGENT = _target(CHAT_AGENTS)
LLM = _target(LLMS)
FLOW = _target(FLOWS)
KNOWLEDGE_BASE = _target(KNOWLEDGE_BASES)
VOICE = _target(VOICES)
DEFINITION = _target(DEFINITIONS)
APP = _target(APPS)
UPLOAD = _target(UPLOADS)
CHAT = Target("Chat", lambda state: state.chats)

#: The response engine of an agent, a test case or a batch test.
_ENGINE = (Ref("response_engine.llm_id", LLM), Ref("response_engine.conversation_flow_id", FLOW))
_VOICES = (Ref("voice_id", VOICE), Ref("fallback_voice_ids[]", VOICE))
_NUMBER_AGENTS = (
    Ref("inbound_agents[].agent_id", AGENT, "agent_version"),
    Ref("outbound_agents[].agent_id", AGENT, "agent_version"),
)
_SMS_AGENTS = (
    Ref("inbound_sms_agents[].agent_id", CHAT_AGENT, "agent_version"),
    Ref("outbound_sms_agents[].agent_id", CHAT_AGENT, "agent_version"),
)
_FLOW_KNOWLEDGE = (
    Ref("knowledge_base_ids[]", KNOWLEDGE_BASE),
    Ref("nodes[].knowledge_base_ids[]", KNOWLEDGE_BASE),
)

REFERENCES: dict[str, tuple[Ref, ...]] = {
    "createPhoneCall": (Ref("override_agent_id", AGENT, "override_agent_version"),),
    "createWebCall": (Ref("agent_id", AGENT, "agent_version"),),
    "registerPhoneCall": (Ref("agent_id", AGENT, "agent_version"),),
    "createBatchCall": (Ref("tasks[].override_agent_id", AGENT, "override_agent_version"),),
    "createChat": (Ref("agent_id", CHAT_AGENT, "agent_version"),),
    "createSmsChat": (Ref("override_agent_id", CHAT_AGENT, "override_agent_version"),),
    "createChatCompletion": (Ref("chat_id", CHAT),),
    "createAgent": (*_ENGINE, *_VOICES),
    "updateAgent": (*_ENGINE, *_VOICES),
    "createChatAgent": _ENGINE,
    "updateChatAgent": _ENGINE,
    "createRetellLLM": (Ref("knowledge_base_ids[]", KNOWLEDGE_BASE),),
    "updateRetellLLM": (Ref("knowledge_base_ids[]", KNOWLEDGE_BASE),),
    "createConversationFlow": _FLOW_KNOWLEDGE,
    "updateConversationFlow": _FLOW_KNOWLEDGE,
    "createConversationFlowComponent": (Ref("nodes[].knowledge_base_ids[]", KNOWLEDGE_BASE),),
    "updateConversationFlowComponent": (Ref("nodes[].knowledge_base_ids[]", KNOWLEDGE_BASE),),
    "createPhoneNumber": _NUMBER_AGENTS,
    "importPhoneNumber": _NUMBER_AGENTS,
    "updatePhoneNumber": (*_NUMBER_AGENTS, *_SMS_AGENTS),
    "createTestCaseDefinition": _ENGINE,
    "updateTestCaseDefinition": _ENGINE,
    "createBatchTest": (*_ENGINE, Ref("test_case_definition_ids[]", DEFINITION)),
    "updateCrmConfig": (Ref("app_id", APP),),
    "createContactImport": (Ref("upload_id", UPLOAD),),
}


def _found(body: Any, parts: list[str]) -> Iterator[tuple[JSON, Any]]:
    """Each ``(object holding the field, value)`` at the path ``parts`` of ``body``."""
    name, rest = parts[0], parts[1:]
    listed = name.endswith("[]")
    name = name.removesuffix("[]")
    if not isinstance(body, dict) or body.get(name) is None:
        return
    values = body[name] if listed else [body[name]]
    if not isinstance(values, list):
        return
    for value in values:
        if rest:
            yield from _found(value, rest)
        else:
            yield body, value


def check_references(operation_id: str, state: EmulatorState, body: JSON) -> None:
    """Refuse ``body`` if a field of it names an object (or agent version) that is not stored."""
    for ref in REFERENCES.get(operation_id, ()):
        for holder, value in _found(body, ref.path.split(".")):
            missing = _missing(state, ref, holder, value)
            if missing is not None:
                raise ApiError(spec.refusal_status(operation_id), f"{ref.path}: {missing}")


def _missing(state: EmulatorState, ref: Ref, holder: JSON, value: Any) -> str | None:
    """What is missing for ``value`` of ``ref`` (in ``holder``), or ``None``."""
    record = ref.target.records(state).get(value)
    if record is None:
        return f"{ref.target.what} not found: {value}"
    wanted = None if ref.version is None else holder.get(ref.version)
    if wanted is None:
        return None
    try:
        version_of(state, record, str(wanted))
    except ApiError:
        return f"{ref.target.what} {value} has no version {wanted}"
    return None
