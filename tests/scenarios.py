"""One ordered script that calls every (resource, method) of the Retell API once or more.

Client-agnostic: a step names a resource attribute and a method of the client and passes
keyword arguments only (path parameters too), so the same script runs through the official
``retell`` SDK and through aioretell, which share resource, method and parameter names::

    results = await run_scenario(client)          # AsyncRetell or aioretell's client
    results["agent.update"].agent_name            # each step's result, by step name

Arguments may hold :class:`Ref` markers: the value at a dotted path of an earlier step's
result, read with attribute access (item index for lists, key for dicts), so ids flow from
creates to later steps. Files are ``(filename, bytes)`` tuples. Creates come first, then
reads, updates and the actions that need them, and deletes last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ref:
    """The value at ``path`` (dotted; digits index lists) in the result of step ``step``."""

    step: str
    path: str


@dataclass(frozen=True)
class Step:
    resource: str
    method: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: Key of the result; defaults to ``"resource.method"`` (repeated rows need their own).
    name: str | None = None

    @property
    def key(self) -> str:
        return self.name or f"{self.resource}.{self.method}"

    @property
    def row(self) -> tuple[str, str]:
        return (self.resource, self.method)


def resolve(value: Any, results: Mapping[str, Any]) -> Any:
    """``value`` with every :class:`Ref` (also inside dicts, lists, tuples) replaced."""
    if isinstance(value, Ref):
        current = results[value.step]
        for part in value.path.split("."):
            if isinstance(current, list):
                current = current[int(part)]
            elif isinstance(current, dict):
                current = current[part]
            else:
                current = getattr(current, part)
        return current
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, results) for v in value)
    return value


async def run_scenario(client: Any, steps: Sequence[Step] | None = None) -> dict[str, Any]:
    """Run ``steps`` (default :data:`SCENARIO`) in order; each step's result by its key."""
    results: dict[str, Any] = {}
    for step in SCENARIO if steps is None else steps:
        method = getattr(getattr(client, step.resource), step.method)
        results[step.key] = await method(**resolve(dict(step.kwargs), results))
    return results


# -- the scenario -----------------------------------------------------------------------------

CALLER = "+14155550101"  # the contact the scenario's calls and texts go to
IMPORTED_NUMBER = "+14155550123"
TAG_ID = "0123456789abcdef0123456789abcdef"

LLM = Ref("llm.create", "llm_id")
FLOW = Ref("conversation_flow.create", "conversation_flow_id")
COMPONENT = Ref("conversation_flow_component.create", "conversation_flow_component_id")
AGENT = Ref("agent.create", "agent_id")
CHAT_AGENT = Ref("chat_agent.create", "agent_id")
KB = Ref("knowledge_base.create", "knowledge_base_id")
NUMBER = Ref("phone_number.create", "phone_number")
PHONE_CALL = Ref("call.create_phone_call", "call_id")
CHAT = Ref("chat.create", "chat_id")
APP = Ref("app.create", "app_id")
CONTACT = Ref("contact.create", "contact_id")
TEST_CASE = Ref("tests.create_test_case_definition", "test_case_definition_id")
BATCH_TEST = Ref("tests.create_batch_test", "test_case_batch_job_id")
LLM_ENGINE = {"type": "retell-llm", "llm_id": LLM}

_NODES = [
    {
        "id": "greet",
        "type": "conversation",
        "instruction": {"type": "prompt", "text": "Greet the caller and ask how to help."},
    },
    {"id": "bye", "type": "end"},
]

SCENARIO: tuple[Step, ...] = (
    # Account
    Step("identity", "retrieve"),
    Step("concurrency", "retrieve"),
    Step("export_request", "list", {"limit": 10}),
    # Response engines
    Step("llm", "create", {"general_prompt": "You book table reservations.",
                           "begin_message": "Hello, which day would you like?"}),
    Step("llm", "retrieve", {"llm_id": LLM}),
    Step("llm", "update", {"llm_id": LLM, "general_prompt": "You book tables and take orders."}),
    Step("llm", "list", {"limit": 100}),
    Step("conversation_flow", "create", {
        "nodes": _NODES,
        "start_speaker": "agent",
        "start_node_id": "greet",
        "model_choice": {"type": "cascading", "model": "gpt-4.1"},
    }),
    Step("conversation_flow", "retrieve", {"conversation_flow_id": FLOW}),
    Step("conversation_flow", "update", {"conversation_flow_id": FLOW,
                                         "global_prompt": "Be brief."}),
    Step("conversation_flow", "list", {"limit": 100}),
    Step("conversation_flow_component", "create", {"name": "Greeting", "nodes": _NODES}),
    Step("conversation_flow_component", "retrieve", {"conversation_flow_component_id": COMPONENT}),
    Step("conversation_flow_component", "update", {"conversation_flow_component_id": COMPONENT,
                                                   "name": "Greeting v2"}),
    Step("conversation_flow_component", "list", {"limit": 100}),
    # Voice agent and its versions
    Step("agent", "create", {"response_engine": LLM_ENGINE, "voice_id": "11labs-Adrian",
                             "agent_name": "Scenario agent"}),
    Step("agent", "retrieve", {"agent_id": AGENT}),
    Step("agent", "update", {"agent_id": AGENT, "agent_name": "Scenario agent (renamed)"}),
    Step("agent", "list", {"limit": 100}),
    Step("agent", "create_version", {"agent_id": AGENT, "base_version": 0}),
    Step("agent", "publish", {"agent_id": AGENT, "version": 1, "version_title": "First"}),
    Step("agent", "list_versions", {"agent_id": AGENT}),
    Step("agent", "repair", {"agent_id": AGENT}),
    Step("agent", "delete_version", {"agent_id": AGENT, "version": 0}),
    Step("mcp_tool", "get_mcp_tools", {"agent_id": AGENT, "mcp_id": "mcp_orders"}),
    Step("playground", "completion", {"agent_id": AGENT,
                                      "messages": [{"role": "user", "content": "Hi there"}]}),
    # Chat agent and its versions
    Step("chat_agent", "create", {"response_engine": LLM_ENGINE, "agent_name": "Scenario chat"}),
    Step("chat_agent", "retrieve", {"agent_id": CHAT_AGENT}),
    Step("chat_agent", "update", {"agent_id": CHAT_AGENT, "agent_name": "Scenario chat v2"}),
    Step("chat_agent", "list", {"limit": 100}),
    Step("chat_agent", "create_version", {"agent_id": CHAT_AGENT, "base_version": 0}),
    Step("chat_agent", "publish", {"agent_id": CHAT_AGENT, "version": 1}),
    Step("chat_agent", "delete_version", {"agent_id": CHAT_AGENT, "version": 0}),
    # Voices
    Step("voice", "list"),
    Step("voice", "retrieve", {"voice_id": "11labs-Adrian"}),
    Step("voice", "search", {"search_query": "support"}),
    Step("voice", "add_resource", {"provider_voice_id": "cv_bright_support",
                                   "voice_name": "Support voice"}),
    Step("voice", "clone", {"files": [("sample-1.wav", b"RIFF0000WAVE"),
                                      ("sample-2.wav", b"RIFF1111WAVE")],
                            "voice_name": "Cloned voice", "voice_provider": "elevenlabs"}),
    # Knowledge base
    Step("knowledge_base", "create", {
        "knowledge_base_name": "Scenario KB",
        "knowledge_base_texts": [{"title": "Hours", "text": "Open 9 to 5, Monday to Friday."}],
        "knowledge_base_urls": ["https://docs.example.com/faq"],
        "knowledge_base_files": [("menu.txt", b"Soup of the day: tomato.\n")],
        "max_chunk_size": 800,
        "enable_auto_refresh": True,
    }),
    Step("knowledge_base", "retrieve", {"knowledge_base_id": KB}),
    Step("knowledge_base", "list"),
    Step("knowledge_base", "add_sources", {
        "knowledge_base_id": KB,
        "knowledge_base_texts": [{"title": "Parking", "text": "Free parking behind the shop."}],
        "knowledge_base_files": [("prices.csv", b"item,price\nsoup,4\n")],
    }),
    Step("knowledge_base", "delete_source", {
        "knowledge_base_id": KB,
        "source_id": Ref("knowledge_base.create", "knowledge_base_sources.0.source_id"),
    }),
    # Phone numbers
    Step("phone_number", "create", {"area_code": 415, "nickname": "Front desk",
                                    "inbound_agents": [{"agent_id": AGENT, "weight": 1}]}),
    Step("phone_number", "import_", {"phone_number": IMPORTED_NUMBER,
                                     "termination_uri": "trunk.example.com",
                                     "sip_trunk_auth_username": "scenario",
                                     "sip_trunk_auth_password": "not-a-real-password"}),
    Step("phone_number", "retrieve", {"phone_number": NUMBER}),
    Step("phone_number", "update", {"phone_number": NUMBER, "nickname": "Reception"}),
    Step("phone_number", "list", {"limit": 100}),
    # Calls: one live phone call, an inbound one, a web call, a batch
    Step("call", "create_phone_call", {"from_number": NUMBER, "to_number": CALLER,
                                       "override_agent_id": AGENT,
                                       "metadata": {"source": "scenario"}}),
    Step("call", "register_phone_call", {"agent_id": AGENT, "from_number": CALLER,
                                         "to_number": NUMBER, "direction": "inbound"}),
    Step("call", "create_web_call", {"agent_id": AGENT}),
    Step("call", "listen_live", {"call_id": PHONE_CALL}),
    Step("call", "take_over_live", {"call_id": PHONE_CALL,
                                    "participant_id": Ref("call.listen_live", "participant_id")}),
    Step("call", "update_live", {"call_id": PHONE_CALL,
                                 "fields_to_override": {"metadata": {"source": "live"}}}),
    Step("call", "stop", {"call_id": PHONE_CALL}),
    Step("call", "rerun_analysis", {"call_id": PHONE_CALL}),
    Step("call", "update", {"call_id": PHONE_CALL, "metadata": {"source": "updated"}}),
    Step("call", "retrieve", {"call_id": PHONE_CALL}),
    Step("call", "list", {"limit": 100, "sort_order": "ascending"}),
    Step("batch_call", "create_batch_call", {"from_number": NUMBER, "name": "Scenario batch",
                                             "tasks": [{"to_number": "+14155550102"},
                                                       {"to_number": "+14155550103"}]}),
    # Chats
    Step("chat", "create", {"agent_id": CHAT_AGENT, "metadata": {"source": "scenario"}}),
    Step("chat", "create_chat_completion", {"chat_id": CHAT, "content": "Do you deliver?"}),
    Step("chat", "create_sms_chat", {"from_number": NUMBER, "to_number": CALLER,
                                     "override_agent_id": CHAT_AGENT}),
    Step("chat", "update", {"chat_id": CHAT, "metadata": {"source": "updated"}}),
    Step("chat", "end", {"chat_id": CHAT}),
    Step("chat", "rerun_analysis", {"chat_id": CHAT}),
    Step("chat", "retrieve", {"chat_id": CHAT}),
    Step("chat", "list", {"limit": 100}),
    # Apps and CRM
    Step("app", "create", {"type": "crm", "provider": "hubspot", "name": "Scenario CRM"}),
    Step("app", "get", {"app_id": APP}),
    Step("app", "update", {"app_id": APP, "name": "Scenario CRM (prod)"}),
    Step("app", "list", {"limit": 100}),
    Step("app", "get_tool_schema", {
        "app_id": APP,
        "app_tool_template_name": "create_ticket",
        "parameters": [{"type": "object", "properties": {"subject": {"type": "string"}},
                        "required": ["subject"]}],
    }),
    Step("app", "list_usages", {"app_id": APP}),
    Step("app", "test_auth", {"app_id": APP}),
    Step("crm", "update_config", {
        "app_id": APP,
        "contact_tags": [{"id": TAG_ID, "label": "vip"}],
        "contact_memory_update_prompt": "Note the caller's favourite dishes.",
    }),
    Step("crm", "get_config"),
    Step("crm", "get_schema", {"app_id": APP}),
    Step("crm", "run_sync_job"),
    Step("crm", "get_sync_job_status"),
    # Contacts
    Step("contact", "create", {"phone_number": CALLER, "first_name": "Ada",
                               "contact_tag_ids": [TAG_ID]}),
    Step("contact", "get", {"contact_id": CONTACT}),
    Step("contact", "update", {"contact_id": CONTACT, "last_name": "Lovelace"}),
    Step("contact", "list", {"limit": 100, "search_query": "ada"}),
    Step("contact", "get_by_phone", {"phone_number": CALLER}),
    Step("contact", "list_conversations", {"contact_id": CONTACT}),
    Step("contact", "upload_import_file", {
        "file": ("contacts.csv", b"phone,first\n+14155550104,Grace\n+14155550105,Alan\n"),
    }),
    Step("contact", "create_import", {
        "upload_id": Ref("contact.upload_import_file", "upload_id"),
        "column_mapping": [{"field_name": "phone_number", "external_field_name": "phone"},
                           {"field_name": "first_name", "external_field_name": "first"}],
    }),
    Step("contact", "get_import"),
    Step("contact", "backfill_analysis_data", {"backfill_attributes": ["call_summary"]}),
    Step("contact", "get_backfill_job_status"),
    # Assets
    Step("asset", "create", {"file": ("logo.png", b"\x89PNG\r\n\x1a\nscenario")}),
    # Agent tests
    Step("tests", "create_test_case_definition", {
        "name": "Books a table",
        "response_engine": LLM_ENGINE,
        "user_prompt": "Ask for a table for two tomorrow at 7pm.",
        "metrics": ["The agent confirms the booking time."],
    }),
    Step("tests", "get_test_case_definition", {"test_case_definition_id": TEST_CASE}),
    Step("tests", "update_test_case_definition", {"test_case_definition_id": TEST_CASE,
                                                  "name": "Books a table for two"}),
    Step("tests", "list_test_case_definitions", {"type": "retell-llm", "llm_id": LLM}),
    Step("tests", "create_batch_test", {"response_engine": LLM_ENGINE,
                                        "test_case_definition_ids": [TEST_CASE]}),
    Step("tests", "get_batch_test", {"test_case_batch_job_id": BATCH_TEST}),
    Step("tests", "list_batch_tests", {"type": "retell-llm"}),
    Step("tests", "list_test_runs", {"test_case_batch_job_id": BATCH_TEST}),
    Step("tests", "get_test_run", {
        "test_case_job_id": Ref("tests.list_test_runs", "items.0.test_case_job_id"),
    }),
    # Deletes, dependants first
    Step("tests", "delete_test_case_definition", {"test_case_definition_id": TEST_CASE}),
    Step("contact", "delete", {"contact_id": CONTACT}),
    Step("app", "delete", {"app_id": APP}),
    Step("chat", "delete", {"chat_id": CHAT}),
    Step("call", "delete", {"call_id": Ref("call.create_web_call", "call_id")}),
    Step("knowledge_base", "delete", {"knowledge_base_id": KB}),
    Step("phone_number", "delete", {"phone_number": IMPORTED_NUMBER}),
    Step("conversation_flow_component", "delete", {"conversation_flow_component_id": COMPONENT}),
    Step("conversation_flow", "delete", {"conversation_flow_id": FLOW}),
    Step("chat_agent", "delete", {"agent_id": CHAT_AGENT}),
    Step("agent", "delete", {"agent_id": AGENT}),
    Step("llm", "delete", {"llm_id": LLM}),
)  # fmt: skip

#: Every (resource, method) the scenario calls.
COVERED_ROWS: frozenset[tuple[str, str]] = frozenset(step.row for step in SCENARIO)
