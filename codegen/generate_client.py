"""Generate the client's types, operation table and resources from the OpenAPI spec.

Writes ``aioretell/types/*.py`` (msgspec Structs), ``aioretell/_operation_table.py`` (every
operation as data), ``aioretell/resources/*.py`` (one class per official SDK resource, one method
per official SDK method) and ``aioretell/_resources.py`` (the client's resource attributes).

Run from the repository root::

    python -m codegen.generate_client [--spec PATH] [--methods PATH] [--out DIR]

Inputs: the committed structure-only spec ``aioretell/_spec/retell-openapi.json`` (or, with
``--spec``, a full Retell OpenAPI 3 YAML/JSON: the output is byte-identical either way, since
only names, types and structure are read, never prose) and ``codegen/official-sdk-methods.tsv``
(resource, method, http_method, path: the official SDK's name for every endpoint). To take in a
new Retell spec, refresh the stripped copy first (``python -m codegen.strip_spec --spec NEW.yaml``,
see ``codegen/strip_spec.py``), then run this. The output is deterministic and ruff-formatted; a
second run changes nothing.

Rules
-----
Operations
    Every operation must match at least one tsv row (by HTTP method and path) and every row an
    operation; the first row of an operation names it (``{Resource}{Method}Params`` for the JSON
    or multipart body, ``{Resource}{Method}Query`` for the query parameters, the response name
    from :data:`RESPONSE_NAMES`). Further rows for the same operation get module-level aliases
    in their own noun module (``ChatAgentListParams = AgentListParams``). Every operation must
    be classified in :data:`RETRY`; an unclassified one stops the generator. The creates in
    :data:`STARTS_CONVERSATION` are marked ``starts_conversation`` (the client's create pacing).

Modules
    One module per tsv ``resource``. A Struct reachable from the operations of more than one
    resource goes to ``shared.py``; a noun module imports from ``shared`` (and, for the aliases
    above, from the module that owns the operation), so there are no import cycles. A noun
    module re-exports every type its operations name. ``__init__.py`` resolves names lazily.

Names
    Component schemas keep their name, except that a component returned directly by
    operations whose official response names agree on one name takes that name
    (``V2CallResponse`` -> ``CallResponse``) everywhere. When the official names disagree
    (``JobStatus`` is ``ContactGetImportResponse``, ``CRMRunSyncJobResponse``, ...), the component
    keeps its own name and each official name is an alias of it. An inline object is named
    after the component (or Params/response root) that declares it plus the property name in
    CamelCase (``CallLatency`` -> ``CallLatencyE2e``); array items and map values take the name
    of their property. Schemas that are not objects (enums, scalar unions) are inlined, not
    named. Two different schemas that would get one name stop the generator.

Request and response flavours
    Types reachable from a request body or query parameters are *request* Structs
    (``omit_defaults=True``; optional fields default to ``msgspec.UNSET`` so they are never sent;
    the spec's length, range and pattern constraints become ``msgspec.Meta``). Types reachable
    from a response are *response* Structs (``gc=False``; optional fields default to ``None``;
    no constraints; unknown fields ignored). A schema needed in both flavours is emitted twice:
    the request flavour under its name, the response flavour under ``{Name}Out``.

Resources
    See ``codegen/_emit_resources.py``. Every operation needs a one-line summary in our own words
    in ``codegen/summaries.py``; a missing one stops the generator.

Types
    ``string`` -> ``str`` (``format: binary`` -> ``Any``), ``integer`` -> ``int``, ``number`` ->
    ``float``, ``boolean`` -> ``bool``; enums are the plain scalar (never Enum/Literal) so an
    unknown server value still decodes. ``array`` -> ``list[T]``; ``additionalProperties: S`` ->
    ``dict[str, T]``; an object without properties -> ``dict[str, Any]``. ``allOf`` merges the
    parts (a later part's property refines an earlier one; required if required in any part).
    ``oneOf``/``anyOf`` of objects merges all variants into one Struct (no tagged unions): a
    property is required only if every variant requires it, and a property whose variants
    disagree is ``Any`` unless all are scalars. ``oneOf`` of scalars -> a union of at most one
    type per kind; any other mix -> ``Any``. A required, non-nullable property has no default.
    The spec's ``not`` constraints are ignored.
"""

import argparse
import csv
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen._emit_resources import ResourceEmitter
from codegen._emit_types import Emitter
from codegen._io import write_atomic
from codegen._model import (
    SchemaModel,
    SpecError,
    StructKey,
    StructRef,
    TNode,
)
from codegen._naming import camel, method_camel
from codegen.strip_spec import DEFAULT_OUT as DEFAULT_STRIPPED_SPEC
from codegen.strip_spec import StripError, load_spec
from codegen.summaries import SUMMARIES

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The committed structure-only spec (``python -m codegen.strip_spec`` refreshes it).
DEFAULT_SPEC = DEFAULT_STRIPPED_SPEC
#: The official SDK's name for every endpoint (resource, method, http_method, path).
DEFAULT_METHODS = REPO_ROOT / "codegen" / "official-sdk-methods.tsv"

SAFE = "SAFE"
SIDE_EFFECT = "SIDE_EFFECT"

#: The body field Retell deduplicates repeated creates on, for an hour.
IDEMPOTENCY_FIELD = "idempotency_key"

#: Retry safety of every operation, by operationId. SAFE: reads (including the POST list,
#: search and schema endpoints), updates, reruns and deletes. SIDE_EFFECT: creates something
#: or acts in the world, so a blind repeat could do it twice.
RETRY: dict[str, str] = {
    "addCommunityVoice": SIDE_EFFECT,  # adds a voice to the account
    "addKnowledgeBaseSources": SIDE_EFFECT,  # appends sources
    "agentPlaygroundCompletion": SIDE_EFFECT,  # runs the agent (LLM, tools)
    "backfillContactAnalysisData": SIDE_EFFECT,  # starts a job
    "cloneVoice": SIDE_EFFECT,  # creates a voice
    "createAgent": SIDE_EFFECT,
    "createAgentVersion": SIDE_EFFECT,
    "createApp": SIDE_EFFECT,
    "createAsset": SIDE_EFFECT,
    "createBatchCall": SIDE_EFFECT,  # dials
    "createBatchTest": SIDE_EFFECT,
    "createChat": SIDE_EFFECT,
    "createChatAgent": SIDE_EFFECT,
    "createChatCompletion": SIDE_EFFECT,  # a repeat appends the user message twice
    "createContact": SIDE_EFFECT,
    "createContactImport": SIDE_EFFECT,  # starts a job
    "createConversationFlow": SIDE_EFFECT,
    "createConversationFlowComponent": SIDE_EFFECT,
    "createKnowledgeBase": SIDE_EFFECT,
    "createPhoneCall": SIDE_EFFECT,  # dials
    "createPhoneNumber": SIDE_EFFECT,  # buys a number
    "createRetellLLM": SIDE_EFFECT,
    "createSmsChat": SIDE_EFFECT,  # sends an SMS
    "createTestCaseDefinition": SIDE_EFFECT,
    "createWebCall": SIDE_EFFECT,
    "deleteAgent": SAFE,
    "deleteAgentVersion": SAFE,
    "deleteApp": SAFE,
    "deleteCall": SAFE,
    "deleteChat": SAFE,
    "deleteChatAgent": SAFE,
    "deleteContact": SAFE,
    "deleteConversationFlow": SAFE,
    "deleteConversationFlowComponent": SAFE,
    "deleteKnowledgeBase": SAFE,
    "deleteKnowledgeBaseSource": SAFE,
    "deletePhoneNumber": SAFE,
    "deleteRetellLLM": SAFE,
    "deleteTestCaseDefinition": SAFE,
    "endChat": SAFE,  # ending an ended chat changes nothing
    "getAgent": SAFE,
    "getApiKeyInfo": SAFE,
    "getApp": SAFE,
    "getAppToolSchema": SAFE,  # POST, read-only
    "getBackfillContactJobStatus": SAFE,
    "getBatchTest": SAFE,
    "getCall": SAFE,
    "getChat": SAFE,
    "getChatAgent": SAFE,
    "getConcurrency": SAFE,
    "getContact": SAFE,
    "getContactByPhone": SAFE,
    "getContactImport": SAFE,
    "getConversationFlow": SAFE,
    "getConversationFlowComponent": SAFE,
    "getCrmConfig": SAFE,
    "getCrmSchema": SAFE,
    "getKnowledgeBase": SAFE,
    "getMCPTools": SAFE,
    "getPhoneNumber": SAFE,
    "getRetellLLM": SAFE,
    "getSyncJobStatus": SAFE,
    "getTestCaseDefinition": SAFE,
    "getTestRun": SAFE,
    "getVoice": SAFE,
    "importPhoneNumber": SIDE_EFFECT,
    "listAgentVersions": SAFE,
    "listAgents": SAFE,  # POST list
    "listAppUsages": SAFE,
    "listApps": SAFE,
    "listBatchTests": SAFE,
    "listCalls": SAFE,  # POST list
    "listChats": SAFE,  # POST list
    "listContactConversations": SAFE,
    "listContacts": SAFE,  # POST list
    "listConversationFlowComponents": SAFE,
    "listConversationFlows": SAFE,
    "listExportRequests": SAFE,
    "listKnowledgeBases": SAFE,
    "listPhoneNumbers": SAFE,
    "listRetellLLM": SAFE,
    "listTestCaseDefinitions": SAFE,
    "listTestRuns": SAFE,
    "listVoices": SAFE,
    "listenLiveCall": SIDE_EFFECT,  # joins the call as a new listener participant
    "publishAgentVersion": SIDE_EFFECT,  # changes what live traffic runs
    "registerPhoneCall": SIDE_EFFECT,
    "repairAgent": SAFE,  # rewrites the agent in place, like an update
    "rerunCallAnalysis": SAFE,
    "rerunChatAnalysis": SAFE,
    "runSyncJob": SIDE_EFFECT,  # starts a job
    "searchCommunityVoice": SAFE,  # POST search
    "stopCall": SAFE,  # hanging up a call twice changes nothing
    "takeOverLiveCall": SIDE_EFFECT,  # joins the call as a speaker
    "testAppAuth": SIDE_EFFECT,  # calls the third-party app
    "updateAgent": SAFE,
    "updateApp": SAFE,
    "updateCallMetadata": SAFE,
    "updateChatAgent": SAFE,
    "updateChatMetadata": SAFE,
    "updateContact": SAFE,
    "updateConversationFlow": SAFE,
    "updateConversationFlowComponent": SAFE,
    "updateCrmConfig": SAFE,  # POST, an update
    "updateLiveCall": SIDE_EFFECT,  # changes a running call
    "updatePhoneNumber": SAFE,
    "updateRetellLLM": SAFE,
    "updateTestCaseDefinition": SAFE,
    "uploadContactImportFile": SIDE_EFFECT,  # stores an upload
}

#: The creates that place a call or open a conversation. Retell limits them per second on top of
#: the account's other limits, so the client paces them with ``create_rate_limit``; the table
#: marks them ``starts_conversation=True``. Each must also be SIDE_EFFECT in :data:`RETRY`.
STARTS_CONVERSATION = frozenset(
    {
        "createBatchCall",
        "createChat",
        "createPhoneCall",
        "createSmsChat",
        "createWebCall",
        "registerPhoneCall",
    }
)

#: The official SDK's response type name per (resource, method); "None" = no body.
RESPONSE_NAMES_TABLE = """
agent create AgentResponse; agent retrieve AgentResponse; agent update AgentResponse;
agent list AgentListResponse; agent delete None; agent create_version AgentCreateVersionResponse;
agent delete_version None; agent list_versions AgentListVersionsResponse; agent publish None;
agent repair AgentRepairResponse; app create AppResponse; app update AppResponse;
app list AppListResponse; app delete None; app get AppResponse;
app get_tool_schema AppGetToolSchemaResponse; app list_usages AppListUsagesResponse;
app test_auth AppTestAuthResponse; asset create AssetCreateResponse;
batch_call create_batch_call BatchCallResponse; call retrieve CallResponse;
call update CallResponse; call list CallListResponse; call delete None;
call create_phone_call PhoneCallResponse; call create_web_call CreateWebCallResponse;
call listen_live CallListenLiveResponse; call register_phone_call PhoneCallResponse;
call rerun_analysis CallResponse; call stop None; call take_over_live CallTakeOverLiveResponse;
call update_live CallUpdateLiveResponse; chat create ChatResponse; chat retrieve ChatResponse;
chat update ChatResponse; chat list ChatListResponse; chat delete None;
chat create_chat_completion ChatCreateChatCompletionResponse; chat create_sms_chat ChatResponse;
chat end None; chat rerun_analysis ChatResponse; chat_agent create ChatAgentResponse;
chat_agent retrieve ChatAgentResponse; chat_agent update ChatAgentResponse;
chat_agent list ChatAgentListResponse; chat_agent delete None;
chat_agent create_version ChatAgentCreateVersionResponse; chat_agent delete_version None;
chat_agent publish None; concurrency retrieve ConcurrencyRetrieveResponse;
contact create ContactResponse; contact update ContactResponse; contact list ContactListResponse;
contact delete None; contact backfill_analysis_data ContactBackfillAnalysisDataResponse;
contact create_import ContactCreateImportResponse; contact get ContactResponse;
contact get_backfill_job_status ContactGetBackfillJobStatusResponse;
contact get_by_phone ContactResponse; contact get_import ContactGetImportResponse;
contact list_conversations ContactListConversationsResponse;
contact upload_import_file ContactUploadImportFileResponse;
conversation_flow create ConversationFlowResponse;
conversation_flow retrieve ConversationFlowResponse;
conversation_flow update ConversationFlowResponse;
conversation_flow list ConversationFlowListResponse; conversation_flow delete None;
conversation_flow_component create ConversationFlowComponentResponse;
conversation_flow_component retrieve ConversationFlowComponentResponse;
conversation_flow_component update ConversationFlowComponentResponse;
conversation_flow_component list ConversationFlowComponentListResponse;
conversation_flow_component delete None; crm get_config CRMConfig;
crm get_schema CRMGetSchemaResponse; crm get_sync_job_status CRMGetSyncJobStatusResponse;
crm run_sync_job CRMRunSyncJobResponse; crm update_config CRMConfig;
export_request list ExportRequestListResponse; identity retrieve IdentityRetrieveResponse;
knowledge_base create KnowledgeBaseResponse; knowledge_base retrieve KnowledgeBaseResponse;
knowledge_base list KnowledgeBaseListResponse; knowledge_base delete None;
knowledge_base add_sources KnowledgeBaseResponse;
knowledge_base delete_source KnowledgeBaseResponse; llm create LlmResponse;
llm retrieve LlmResponse; llm update LlmResponse; llm list LlmListResponse; llm delete None;
mcp_tool get_mcp_tools McpToolGetMcpToolsResponse; phone_number create PhoneNumberResponse;
phone_number retrieve PhoneNumberResponse; phone_number update PhoneNumberResponse;
phone_number list PhoneNumberListResponse; phone_number delete None;
phone_number import_ PhoneNumberResponse; playground completion PlaygroundCompletionResponse;
tests create_batch_test BatchTestResponse;
tests create_test_case_definition TestCaseDefinitionResponse;
tests delete_test_case_definition None; tests get_batch_test BatchTestResponse;
tests get_test_case_definition TestCaseDefinitionResponse; tests get_test_run TestCaseJobResponse;
tests list_batch_tests TestListBatchTestsResponse;
tests list_test_case_definitions TestListTestCaseDefinitionsResponse;
tests list_test_runs TestListTestRunsResponse;
tests update_test_case_definition TestCaseDefinitionResponse; voice retrieve VoiceResponse;
voice list VoiceListResponse; voice add_resource VoiceResponse; voice clone VoiceResponse;
voice search VoiceSearchResponse
"""

_NULLABLE_NUMBER = {"type": "number", "nullable": True}
_NULLABLE_BOOLEAN = {"type": "boolean", "nullable": True}
_MAPPING = {"type": "object"}  # the SDK's TypedDicts: any mapping of that shape
_NULLABLE_MAPPING = {"type": "object", "nullable": True}
_STRINGS = {"type": "array", "items": {"type": "string"}}

#: Keywords retell-sdk 6.2.13 accepts, and sends, that the spec does not define: without them a
#: call written for the SDK would raise TypeError here. Keyed by the SDK's (resource, method);
#: each field joins the operation's JSON body (or, for an operation without one, its query).
#: Types follow the SDK's annotations (``Optional[X]`` -> nullable; a TypedDict, or a union of
#: them, -> a mapping); tests/unit/test_generated_api.py checks them against the installed SDK.
#: A field the spec comes to define stops the generator: then drop it from here.
SDK_ONLY_FIELDS: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {
    ("agent", "create"): {
        "denoising_enhancement_level": _NULLABLE_NUMBER,  # Optional[float]
        "is_transfer_agent": {"type": "boolean"},  # bool
    },
    ("agent", "update"): {"denoising_enhancement_level": _NULLABLE_NUMBER},
    ("app", "list"): {"privacy_scope": {"type": "string", "enum": ["standard", "pci"]}},
    ("conversation_flow", "create"): {
        "backup_model": _NULLABLE_MAPPING,  # Union[BackupModelChoice, Optional[object]]
        "model_config": _MAPPING,  # Union[CascadingModelConfig, S2SModelConfig]
    },
    ("conversation_flow", "update"): {
        "backup_model": _NULLABLE_MAPPING,
        "model_config": _MAPPING,
    },
    ("llm", "create"): {
        "backup_model": _NULLABLE_MAPPING,
        "model_config": _MAPPING,
        "model_ultrafast": _NULLABLE_BOOLEAN,  # Optional[bool]
    },
    ("llm", "update"): {
        "backup_model": _NULLABLE_MAPPING,
        "model_config": _MAPPING,
        "model_ultrafast": _NULLABLE_BOOLEAN,
    },
    ("phone_number", "import_"): {"codecs": _STRINGS},  # SequenceNotStr[str]
    ("phone_number", "update"): {"codecs": _STRINGS},
}

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
SHARED_MODULE = "shared"
HEADER = (
    "# Generated by codegen/generate_client.py from the Retell OpenAPI spec "
    "(revision {revision}). Do not edit by hand."
)
HEADER_PREFIX = "# Generated by codegen/generate_client.py"


def parse_response_names(table: str) -> dict[tuple[str, str], str | None]:
    out: dict[tuple[str, str], str | None] = {}
    for entry in table.replace("\n", " ").split(";"):
        words = entry.split()
        if not words:
            continue
        if len(words) != 3:
            raise SpecError(f"bad response-name entry {entry!r}")
        resource, method, name = words
        if (resource, method) in out:
            raise SpecError(f"duplicate response-name entry {resource} {method}")
        out[(resource, method)] = None if name == "None" else name
    return out


RESPONSE_NAMES = parse_response_names(RESPONSE_NAMES_TABLE)


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Row:
    resource: str
    method: str
    http_method: str
    path: str

    @property
    def prefix(self) -> str:
        return camel(self.resource) + method_camel(self.method)


@dataclass
class Param:
    name: str
    location: str
    required: bool
    schema: Mapping[str, Any]


@dataclass
class Op:
    operation_id: str
    http_method: str
    path: str
    params: list[Param]
    body_kind: str | None
    body_schema: Mapping[str, Any] | None
    response_schema: Mapping[str, Any] | None
    rows: list[Row]

    @property
    def primary(self) -> Row:
        return self.rows[0]

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{([^}]+)\}", self.path))

    @property
    def query_params(self) -> list[Param]:
        return [p for p in self.params if p.location == "query"]


_TSV_COLUMNS = ("resource", "method", "http_method", "path")


def load_rows(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in _TSV_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise SpecError(f"{path}: not an SDK methods table (no {', '.join(missing)} column)")
        rows = [
            Row(r["resource"], r["method"], (r["http_method"] or "").upper(), r["path"])
            for r in reader
        ]
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if (row.resource, row.method) in seen:
            raise SpecError(f"duplicate tsv row {row.resource}.{row.method}")
        seen.add((row.resource, row.method))
    return rows


def _resolve_param(spec: Mapping[str, Any], param: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = param.get("$ref")
    if ref is None:
        return param
    prefix = "#/components/parameters/"
    if not isinstance(ref, str) or not ref.startswith(prefix):
        raise SpecError(f"unsupported parameter $ref {ref!r}")
    resolved: Mapping[str, Any] = spec["components"]["parameters"][ref[len(prefix) :]]
    return resolved


def load_operations(spec: Mapping[str, Any], rows: Sequence[Row]) -> list[Op]:
    ops: list[Op] = []
    for path, item in spec["paths"].items():
        shared_params = item.get("parameters") or []
        for http_method in HTTP_METHODS:
            raw = item.get(http_method)
            if raw is None:
                continue
            op_id = raw["operationId"]
            params: dict[tuple[str, str], Param] = {}
            for p in [*shared_params, *(raw.get("parameters") or [])]:
                p = _resolve_param(spec, p)
                location = p["in"]
                if location not in ("path", "query"):
                    raise SpecError(f"{op_id}: unsupported parameter location {location!r}")
                params[(location, p["name"])] = Param(
                    p["name"],
                    location,
                    bool(p.get("required", location == "path")),
                    p.get("schema") or {},
                )
            body_kind: str | None = None
            body_schema = None
            request_body = raw.get("requestBody")
            if request_body is not None:
                content = request_body.get("content") or {}
                if "application/json" in content:
                    body_kind, body_schema = "json", content["application/json"].get("schema")
                elif "multipart/form-data" in content:
                    body_kind = "multipart"
                    body_schema = content["multipart/form-data"].get("schema")
                else:
                    raise SpecError(f"{op_id}: unsupported request body {sorted(content)}")
            response_schema = None
            success = sorted(code for code in raw.get("responses", {}) if str(code).startswith("2"))
            if not success:
                raise SpecError(f"{op_id}: no 2xx response")
            for code in success:
                content = raw["responses"][code].get("content") or {}
                if "application/json" in content:
                    response_schema = content["application/json"].get("schema")
                    break
            ops.append(
                Op(
                    op_id,
                    http_method.upper(),
                    path,
                    list(params.values()),
                    body_kind,
                    body_schema,
                    response_schema,
                    [],
                )
            )
    by_id = {op.operation_id: op for op in ops}
    if len(by_id) != len(ops):
        raise SpecError("duplicate operationId in the spec")
    by_route = {(op.http_method, op.path): op for op in ops}
    for row in rows:
        op = by_route.get((row.http_method, row.path))
        if op is None:
            raise SpecError(
                f"tsv row {row.resource}.{row.method} ({row.http_method} {row.path}) "
                "matches no operation in the spec"
            )
        op.rows.append(row)
    missing = sorted(op.operation_id for op in ops if not op.rows)
    if missing:
        raise SpecError(f"operations without a tsv row: {', '.join(missing)}")
    unclassified = sorted(set(by_id) - set(RETRY))
    if unclassified:
        raise SpecError(
            "operations missing from the RETRY table in codegen/generate_client.py "
            f"(classify them as SAFE or SIDE_EFFECT): {', '.join(unclassified)}"
        )
    stale = sorted(set(RETRY) - set(by_id))
    if stale:
        raise SpecError(f"RETRY entries for operations not in the spec: {', '.join(stale)}")
    misfiled = sorted(op_id for op_id in STARTS_CONVERSATION if RETRY.get(op_id) != SIDE_EFFECT)
    if misfiled:
        raise SpecError(
            "STARTS_CONVERSATION entries that are not SIDE_EFFECT operations of the spec: "
            + ", ".join(misfiled)
        )
    for row in rows:
        if (row.resource, row.method) not in RESPONSE_NAMES:
            raise SpecError(f"no response name for {row.resource}.{row.method}")
    extra = sorted(set(RESPONSE_NAMES) - {(r.resource, r.method) for r in rows})
    if extra:
        raise SpecError(f"response names for unknown SDK methods: {extra}")
    for op in ops:
        for row in op.rows:
            name = RESPONSE_NAMES[(row.resource, row.method)]
            if (name is None) != (op.response_schema is None):
                raise SpecError(
                    f"{op.operation_id}: response name {name!r} for {row.resource}.{row.method} "
                    "disagrees with the spec about whether there is a response body"
                )
    return sorted(ops, key=lambda o: o.operation_id)


# --------------------------------------------------------------------------------------------
# Building the model


@dataclass
class AliasDef:
    name: str
    module: str
    node: TNode | None  # a type expression, or
    target: str | None  # another generated public name


@dataclass
class OpTypes:
    body: str | None
    query: str | None
    response: str | None


class Build:
    def __init__(self, spec: Mapping[str, Any], rows: Sequence[Row]) -> None:
        self.revision = str(spec["info"].get("x-retell-spec-revision") or spec["info"]["version"])
        self.ops = load_operations(spec, rows)
        components: Mapping[str, Any] = spec["components"]["schemas"]
        self.model = SchemaModel(components, self._renames(components))
        self._add_sdk_only_fields()
        self.aliases: list[AliasDef] = []
        self.op_types: dict[str, OpTypes] = {}
        self.roots: dict[str, list[StructKey]] = {}
        self._build()

    def _add_sdk_only_fields(self) -> None:
        """Give the operations of :data:`SDK_ONLY_FIELDS` their extra body or query fields."""
        by_row = {(row.resource, row.method): op for op in self.ops for row in op.rows}
        for (resource, method), extras in sorted(SDK_ONLY_FIELDS.items()):
            op = by_row.get((resource, method))
            if op is None:
                raise SpecError(f"SDK_ONLY_FIELDS names unknown SDK method {resource}.{method}")
            if op.body_kind == "json" and op.body_schema is not None:
                have = self.model.property_names(op.body_schema)
            elif op.body_kind is None:
                have = {p.name for p in op.params}
            else:
                raise SpecError(f"SDK_ONLY_FIELDS: {resource}.{method} has a multipart body")
            defined = sorted(set(extras) & have)
            if defined:
                raise SpecError(
                    f"{resource}.{method}: the spec now defines {', '.join(defined)}; drop them "
                    "from SDK_ONLY_FIELDS in codegen/generate_client.py"
                )
            if op.body_schema is not None:
                extra_part = {"type": "object", "properties": dict(extras)}
                op.body_schema = {"allOf": [op.body_schema, extra_part]}
            else:
                op.params += [Param(name, "query", False, spec) for name, spec in extras.items()]

    def idempotency_field(self, op: Op) -> str | None:
        """The optional idempotency-key field of a side-effect create's JSON body, if any.

        The client fills it when the caller leaves it out, which makes retrying that create
        safe. A required key (the caller always gives one) or none keeps the create's rule.
        """
        if RETRY[op.operation_id] != SIDE_EFFECT or op.body_kind != "json" or not op.body_schema:
            return None
        schema, _ = self.model.deref(op.body_schema, "")
        if IDEMPOTENCY_FIELD in schema.get("properties", {}) and IDEMPOTENCY_FIELD not in (
            schema.get("required") or ()
        ):
            return IDEMPOTENCY_FIELD
        return None

    def _renames(self, components: Mapping[str, Any]) -> dict[str, str]:
        names: dict[str, set[str]] = {}
        for op in self.ops:
            comp = SchemaModel.ref_name(op.response_schema) if op.response_schema else None
            if comp is None:
                continue
            for row in op.rows:
                name = RESPONSE_NAMES[(row.resource, row.method)]
                assert name is not None
                names.setdefault(comp, set()).add(name)
        renames: dict[str, str] = {}
        for comp, official in sorted(names.items()):
            if len(official) == 1:
                renames[comp] = next(iter(official))
        return renames

    def _root(self, noun: str, node: TNode) -> None:
        from codegen._model import iter_struct_refs

        self.roots.setdefault(noun, []).extend(iter_struct_refs(node))

    def _build(self) -> None:
        model = self.model
        for op in self.ops:
            row = op.primary
            noun = row.resource
            body = query = response = None
            if op.body_schema is not None:
                if not model.is_object_like(op.body_schema):
                    raise SpecError(f"{op.operation_id}: request body is not an object")
                body = row.prefix + "Params"
                key = model.struct(op.body_schema, body, "request")
                self._root(noun, StructRef(key))
            if op.query_params:
                query = row.prefix + "Query"
                synthetic = {
                    "type": "object",
                    "properties": {p.name: p.schema for p in op.query_params},
                    "required": [p.name for p in op.query_params if p.required],
                }
                key = model.struct(synthetic, query, "request")
                self._root(noun, StructRef(key))
            if op.response_schema is not None:
                response = RESPONSE_NAMES[(row.resource, row.method)]
                assert response is not None
                node = self._response_node(op.response_schema, response)
                self._root(noun, node)
                if not (isinstance(node, StructRef) and node.key[0] == response):
                    self.aliases.append(AliasDef(response, noun, node, None))
            self.op_types[op.operation_id] = OpTypes(body, query, response)
            for other in op.rows[1:]:
                if body is not None:
                    self.aliases.append(
                        AliasDef(other.prefix + "Params", other.resource, None, body)
                    )
                if query is not None:
                    self.aliases.append(
                        AliasDef(other.prefix + "Query", other.resource, None, query)
                    )
                other_response = RESPONSE_NAMES[(other.resource, other.method)]
                if other_response is not None and other_response != response:
                    self.aliases.append(AliasDef(other_response, other.resource, None, response))
        model.resolve_pending()

    def _response_node(self, schema: Mapping[str, Any], name: str) -> TNode:
        model = self.model
        comp = SchemaModel.ref_name(schema)
        if comp is not None:
            return model.type_of(schema, name, "response")
        if model.is_object_like(schema):
            return StructRef(model.struct(schema, name, "response"))
        return model.type_of(schema, name, "response")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codegen.generate_client", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--spec",
        type=Path,
        default=DEFAULT_SPEC,
        help="the stripped spec (default) or a full Retell OpenAPI YAML/JSON",
    )
    parser.add_argument("--methods", type=Path, default=DEFAULT_METHODS)
    parser.add_argument("--out", type=Path, default=REPO_ROOT)
    args = parser.parse_args(argv)
    try:
        return _run(args.spec, args.methods, args.out)
    except KeyboardInterrupt:
        print("codegen: interrupted; rerun to finish (each file is whole)", file=sys.stderr)
        return 130


def _run(spec_path: Path, methods: Path, out: Path) -> int:
    try:
        spec = load_spec(spec_path)
        build = Build(spec, load_rows(methods))
        header = HEADER.format(revision=build.revision)
        types = Emitter(build, SHARED_MODULE, header)
        files = types.render()
        files.update(ResourceEmitter(build, types, header, SUMMARIES).render())
    except (SpecError, StripError) as exc:
        print(f"codegen: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"codegen: error: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as exc:
        print(f"codegen: error: {methods} is not UTF-8 text: {exc.reason}", file=sys.stderr)
        return 1
    files = {path: format_source(text, path) for path, text in sorted(files.items())}
    try:
        changed = write_files(out, files)
    except OSError as exc:
        print(f"codegen: error: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"codegen: wrote {path}")
    return 0


# --------------------------------------------------------------------------------------------
# Output


def _ruff() -> str:
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return str(beside)
    found = shutil.which("ruff")
    if found is None:
        raise SystemExit("codegen: error: ruff not found (next to the interpreter or on PATH)")
    return found


def format_source(text: str, rel_path: str) -> str:
    """Sort imports and format with ruff, using the repository's ruff configuration."""
    stdin_name = str(REPO_ROOT / rel_path)
    ruff = _ruff()
    for args in (
        [
            "check",
            "--fix-only",
            "--exit-zero",
            "--select",
            "I",
            "--quiet",
            "--config",
            "lint.isort.known-first-party = ['aioretell']",
        ],
        ["format", "--quiet"],
    ):
        done = subprocess.run(
            [ruff, *args, "--stdin-filename", stdin_name, "-"],
            input=text,
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"codegen: error: ruff {args[0]} failed on {rel_path}:\n{done.stderr}")
        text = done.stdout
    return text


def write_files(out: Path, files: Mapping[str, str]) -> list[str]:
    changed: list[str] = []
    for generated_dir in (out / "aioretell" / "types", out / "aioretell" / "resources"):
        if not generated_dir.is_dir():
            continue
        for stale in sorted(generated_dir.glob("*.py")):
            rel = stale.relative_to(out).as_posix()
            if rel not in files and stale.read_text().startswith(HEADER_PREFIX):
                stale.unlink()
                changed.append(f"{rel} (removed)")
    for rel, text in files.items():
        target = out / rel
        if target.exists() and target.read_text() == text:
            continue
        write_atomic(target, text)
        changed.append(rel)
    return changed


if __name__ == "__main__":
    raise SystemExit(main())
