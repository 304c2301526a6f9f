"""The generated resources: every official SDK method is there, under the SDK's names."""

from __future__ import annotations

import inspect
import json
import sys
import types
import typing
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
import retell
import typing_extensions
from aioresponses import aioresponses
from msgspec import UnsetType
from msgspec import inspect as mi

from aioretell import AsyncRetell
from aioretell._operation_table import METHODS, OPERATIONS
from aioretell.resources._base import Resource
from aioretell.types import (
    AgentResponse,
    AppListResponse,
    ConversationFlowResponse,
    LlmResponse,
    PhoneNumberResponse,
)
from codegen.generate_client import SDK_ONLY_FIELDS

BASE = "http://retell.test"

#: The official SDK's per-request options; aioretell sets these per client or per view
#: (``client.with_options(timeout=..., max_retries=...)``).
SDK_REQUEST_OPTIONS = {"extra_headers", "extra_query", "extra_body", "timeout", "max_retries"}

#: Fields the spec requires that the SDK leaves optional; aioretell follows the spec.
REQUIRED_BY_SPEC_ONLY = {("conversation_flow", "create"): {"model_choice"}}


@pytest.fixture
async def client() -> AsyncIterator[AsyncRetell]:
    async with AsyncRetell(api_key="key_unit", base_url=BASE) as c:
        yield c


@pytest.fixture
def sdk() -> retell.AsyncRetell:
    return retell.AsyncRetell(api_key="key_unit", base_url=BASE)


def test_every_official_method_is_an_async_method_with_our_docstring(client: AsyncRetell) -> None:
    assert len(METHODS) == 113
    assert set(METHODS.values()) == set(OPERATIONS)
    for (resource, method), op_id in METHODS.items():
        bound = getattr(getattr(client, resource), method)
        assert inspect.iscoroutinefunction(bound), (resource, method)
        doc = inspect.getdoc(bound)
        assert doc, (resource, method)
        op = OPERATIONS[op_id]
        # The summary line, then where it goes and whether it is repeated.
        assert f"Sends ``{op.http_method} {op.path}``." in doc.replace("\n", " ")


def test_resources_are_imported_on_first_use_only() -> None:
    """``import aioretell`` loads no resource or type module (timed in benchmarks/import_time)."""
    code = (
        "import sys, aioretell; "
        "c = aioretell.AsyncRetell(api_key='k', base_url='http://x'); "
        "before = sorted(m for m in sys.modules if m.startswith(('aioretell.resources.', "
        "'aioretell.types.'))); "
        "c.agent; "
        "after = sorted(m for m in sys.modules if m.startswith('aioretell.resources.')); "
        "print(before, after)"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] ['aioretell.resources._base', 'aioretell.resources.agent']"


def _params(func: object) -> dict[str, inspect.Parameter]:
    signature = inspect.signature(func)  # type: ignore[arg-type]
    return {n: p for n, p in signature.parameters.items() if n not in SDK_REQUEST_OPTIONS}


def test_signatures_match_the_official_sdk(client: AsyncRetell, sdk: retell.AsyncRetell) -> None:
    """Moving from ``retell.AsyncRetell`` is a change of import: same names, same arguments."""
    for resource, method in METHODS:
        ours = _params(getattr(getattr(client, resource), method))
        theirs = _params(getattr(getattr(sdk, resource), method))
        where = f"{resource}.{method}"
        # Positional parameters: the same names in the same order.
        positional = [n for n, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
        their_positional = [n for n, p in theirs.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional[: len(their_positional)] == their_positional, where
        assert set(positional) - set(their_positional) <= set(theirs), where
        # The same keywords: a call written for either runs on the other (the SDK's keywords
        # that the spec lacks come from SDK_ONLY_FIELDS in codegen/generate_client.py)...
        assert set(ours) == set(theirs), (where, set(ours) ^ set(theirs))
        # ...and every argument the SDK requires, we require.
        required = {n for n, p in theirs.items() if p.default is p.empty}
        ours_required = {n for n, p in ours.items() if p.default is p.empty}
        assert required <= ours_required, where
        extra_required = ours_required - required
        assert extra_required == REQUIRED_BY_SPEC_ONLY.get((resource, method), set()), where


def _kinds(annotation: Any) -> tuple[set[str], bool]:
    """What values an annotation admits, coarsely: ({kinds}, accepts None)."""
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    kinds: set[str] = set()
    nullable = False
    for member in members:
        origin = typing.get_origin(member)
        if member is type(None):
            nullable = True
        elif member is UnsetType or getattr(member, "__name__", "") == "Omit":
            continue  # "not given"
        elif member in (float, bool, str):
            kinds.add(member.__name__)
        elif origin is Literal and all(isinstance(v, str) for v in typing.get_args(member)):
            kinds.add("str")
        elif origin in (Sequence, list):
            kinds.add(f"sequence[{','.join(sorted(_kinds(typing.get_args(member)[0])[0]))}]")
        elif typing_extensions.is_typeddict(member) or origin in (Mapping, dict):
            kinds.add("mapping")
        elif member is object:
            kinds.add("object")
        else:
            raise AssertionError(f"unclassified annotation {member!r}")
    return kinds, nullable


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


@pytest.mark.parametrize(("resource", "method"), sorted(SDK_ONLY_FIELDS))
def test_sdk_only_keywords_take_what_the_sdk_takes(
    client: AsyncRetell, sdk: retell.AsyncRetell, resource: str, method: str
) -> None:
    """The keywords the spec lacks are typed after the installed retell-sdk's annotations."""
    ours = typing.get_type_hints(getattr(getattr(client, resource), method))
    theirs = typing.get_type_hints(getattr(getattr(sdk, resource), method))
    for name in SDK_ONLY_FIELDS[(resource, method)]:
        our_kinds, our_nullable = _kinds(ours[name])
        their_kinds, their_nullable = _kinds(theirs[name])
        assert our_nullable == their_nullable, (resource, method, name)
        # ``object`` is the SDK's catch-all beside a TypedDict; the API takes the mapping.
        assert our_kinds == their_kinds - {"object"}, (resource, method, name)


def test_path_parameters_are_positional_or_keyword(client: AsyncRetell) -> None:
    for (resource, method), op_id in METHODS.items():
        params = _params(getattr(getattr(client, resource), method))
        op = OPERATIONS[op_id]
        for name in op.path_params:
            assert params[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (method, name)
        others = [p for n, p in params.items() if n not in op.path_params]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in others), method


def test_paged_lists_have_an_iterator(client: AsyncRetell) -> None:
    paged = {
        (resource, method)
        for (resource, method), op_id in METHODS.items()
        if hasattr(getattr(client, resource), f"{method}_all")
    }
    assert paged == {
        ("agent", "list"),
        ("agent", "list_versions"),
        ("app", "list"),
        ("app", "list_usages"),
        ("call", "list"),
        ("chat", "list"),
        ("chat_agent", "list"),
        ("contact", "list"),
        ("contact", "list_conversations"),
        ("conversation_flow", "list"),
        ("conversation_flow_component", "list"),
        ("export_request", "list"),
        ("llm", "list"),
        ("phone_number", "list"),
        ("tests", "list_batch_tests"),
        ("tests", "list_test_case_definitions"),
        ("tests", "list_test_runs"),
    }
    for resource, method in paged:
        iterator = _params(getattr(getattr(client, resource), f"{method}_all"))
        assert "skip" not in iterator and "include_total" not in iterator
        assert iterator["limit"].default == 1000


def test_resource_objects_are_cached_per_view(client: AsyncRetell) -> None:
    assert client.agent is client.agent
    assert isinstance(client.agent, Resource)
    view = client.with_options(max_retries=5)
    assert view.agent is not client.agent
    assert view.agent._client is view
    assert "key_unit" not in repr(client.agent)


def test_generated_modules_name_their_generator() -> None:
    root = Path(__file__).resolve().parents[2] / "aioretell" / "resources"
    hand_written = ("__init__.py", "_base.py")
    generated = sorted(p.name for p in root.glob("*.py") if p.name not in hand_written)
    assert len(generated) == 21  # one per official SDK resource
    for name in generated:
        assert (root / name).read_text().startswith("# Generated by codegen/generate_client.py")


def _minimal(kind: Any) -> Any:
    """The smallest JSON value that decodes as ``kind``: its required fields, recursively."""
    info = kind if isinstance(kind, mi.Type) else mi.type_info(kind)
    if isinstance(info, mi.StructType):
        return {f.encode_name: _minimal(f.type) for f in info.fields if f.required}
    if isinstance(info, mi.UnionType):
        return _minimal(info.types[0])
    if isinstance(info, mi.ListType):
        return []
    if isinstance(info, mi.DictType):
        return {}
    if isinstance(info, mi.StrType):
        return "x"
    if isinstance(info, mi.BoolType):
        return False
    if isinstance(info, (mi.IntType, mi.FloatType)):
        return 1
    return None


async def test_sdk_only_keywords_are_sent(client: AsyncRetell) -> None:
    """A call written for retell-sdk with a keyword the spec lacks runs, and sends it."""
    flow = {"start_speaker": "agent", "model_choice": {"type": "cascading", "model": "gpt-5"}}
    flow_nodes: list[dict[str, Any]] = [{"id": "start", "type": "end"}]
    model_config = {"type": "cascading", "primary": {"model": "gpt-5", "tier": "fast"}}
    backup = {"type": "cascading", "model": "gpt-4.1"}
    engine = {"type": "retell-llm", "llm_id": "llm_1"}
    with aioresponses() as mocked:
        for method, path, answer in (
            ("POST", "/create-agent", AgentResponse),
            ("PATCH", "/update-agent/agent_1", AgentResponse),
            ("GET", "/list-apps?privacy_scope=pci", AppListResponse),
            ("POST", "/create-conversation-flow", ConversationFlowResponse),
            ("PATCH", "/update-conversation-flow/flow_1", ConversationFlowResponse),
            ("POST", "/create-retell-llm", LlmResponse),
            ("PATCH", "/update-retell-llm/llm_1", LlmResponse),
            ("POST", "/import-phone-number", PhoneNumberResponse),
            ("PATCH", "/update-phone-number/%2B14155550100", PhoneNumberResponse),
        ):
            mocked.add(BASE + path, method, status=200, payload=_minimal(answer))
        await client.agent.create(
            response_engine=engine,
            voice_id="v",
            denoising_enhancement_level=0.4,
            is_transfer_agent=True,
        )
        await client.agent.update("agent_1", denoising_enhancement_level=None)
        await client.app.list(privacy_scope="pci")
        await client.conversation_flow.create(
            **flow, nodes=flow_nodes, model_config=model_config, backup_model=backup
        )
        await client.conversation_flow.update("flow_1", backup_model=None)
        await client.llm.create(model_config=model_config, backup_model=backup)
        await client.llm.update("llm_1", model_ultrafast=None)
        await client.phone_number.import_(
            phone_number="+14155550100", termination_uri="t.pstn.twilio.com", codecs=["PCMU"]
        )
        await client.phone_number.update("+14155550100", codecs=[])
        sent = {
            (method, url.path): call
            for (method, url), calls in mocked.requests.items()
            for call in calls
        }

    def body(method: str, path: str) -> Any:
        return json.loads(sent[(method, path)].kwargs["data"])

    assert body("POST", "/create-agent") == {
        "response_engine": engine,
        "voice_id": "v",
        "denoising_enhancement_level": 0.4,
        "is_transfer_agent": True,
    }
    assert body("PATCH", "/update-agent/agent_1") == {"denoising_enhancement_level": None}
    assert ("GET", "/list-apps") in sent  # matched with ?privacy_scope=pci above
    created_flow = body("POST", "/create-conversation-flow")
    assert created_flow["model_config"] == model_config
    assert created_flow["backup_model"] == backup
    assert body("PATCH", "/update-conversation-flow/flow_1") == {"backup_model": None}
    assert body("POST", "/create-retell-llm") == {
        "model_config": model_config,
        "backup_model": backup,
    }
    assert body("PATCH", "/update-retell-llm/llm_1") == {"model_ultrafast": None}
    assert body("POST", "/import-phone-number")["codecs"] == ["PCMU"]
    assert body("PATCH", "/update-phone-number/+14155550100") == {"codecs": []}
