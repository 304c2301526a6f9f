"""The generated resources: every official SDK method is there, under the SDK's names."""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import retell

from aioretell import AsyncRetell
from aioretell._operation_table import METHODS, OPERATIONS
from aioretell.resources._base import Resource

#: The official SDK's per-request options; aioretell sets these per client or per view
#: (``client.with_options(timeout=..., max_retries=...)``).
SDK_REQUEST_OPTIONS = {"extra_headers", "extra_query", "extra_body", "timeout", "max_retries"}

#: Body fields that retell-sdk 6.2.13 sends but the spec we generate from does not define.
SDK_FIELDS_NOT_IN_SPEC = {
    ("agent", "create"): {"denoising_enhancement_level", "is_transfer_agent"},
    ("agent", "update"): {"denoising_enhancement_level"},
    ("app", "list"): {"privacy_scope"},
    ("conversation_flow", "create"): {"model_config", "backup_model"},
    ("conversation_flow", "update"): {"model_config", "backup_model"},
    ("llm", "create"): {"model_ultrafast", "model_config", "backup_model"},
    ("llm", "update"): {"model_ultrafast", "model_config", "backup_model"},
    ("phone_number", "import_"): {"codecs"},
    ("phone_number", "update"): {"codecs"},
}

#: Fields the spec requires that the SDK leaves optional; aioretell follows the spec.
REQUIRED_BY_SPEC_ONLY = {("conversation_flow", "create"): {"model_choice"}}


@pytest.fixture
async def client() -> AsyncIterator[AsyncRetell]:
    async with AsyncRetell(api_key="key_unit", base_url="http://retell.test") as c:
        yield c


@pytest.fixture
def sdk() -> retell.AsyncRetell:
    return retell.AsyncRetell(api_key="key_unit", base_url="http://retell.test")


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
    sdk_only_seen: dict[tuple[str, str], set[str]] = {}
    for resource, method in METHODS:
        ours = _params(getattr(getattr(client, resource), method))
        theirs = _params(getattr(getattr(sdk, resource), method))
        where = f"{resource}.{method}"
        # Positional parameters: the same names in the same order.
        positional = [n for n, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
        their_positional = [n for n, p in theirs.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional[: len(their_positional)] == their_positional, where
        assert set(positional) - set(their_positional) <= set(theirs), where
        # Every keyword we take, the SDK takes (a call written for us runs on the SDK too)...
        assert set(ours) <= set(theirs), (where, set(ours) - set(theirs))
        # ...and every argument the SDK requires, we require.
        required = {n for n, p in theirs.items() if p.default is p.empty}
        ours_required = {n for n, p in ours.items() if p.default is p.empty}
        assert required <= ours_required, where
        extra_required = ours_required - required
        assert extra_required == REQUIRED_BY_SPEC_ONLY.get((resource, method), set()), where
        missing = set(theirs) - set(ours)
        if missing:
            sdk_only_seen[(resource, method)] = missing
    assert sdk_only_seen == SDK_FIELDS_NOT_IN_SPEC


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
