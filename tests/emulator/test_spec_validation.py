"""Every request body the spec refuses is refused by the emulator (400, naming the field).

The bodies are built from the spec itself: for each operation with a request body, a minimal
valid body (its required fields) plus, one at a time, a top-level field given a value the spec
refuses - a wrong enum value, a wrong type, a number/length/count out of bounds. No operation
with a body may be left without such a case.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aioretell._operation_table import OPERATIONS
from aioretell.emulator import Emulator, spec

JSON = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]


# -- bodies from the spec ---------------------------------------------------------------------


def valid(schema: Any) -> Any:
    """A small value the (OpenAPI) ``schema`` accepts: required fields only, lowest bounds."""
    schema = spec.resolve(schema)
    members = schema.get("oneOf") or schema.get("anyOf")
    if members:
        return valid(members[0])
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    properties, required = spec.object_shape(schema)
    kind = schema.get("type") or ("object" if properties or "allOf" in schema else None)
    if kind == "object":
        return {name: valid(properties.get(name, {})) for name in sorted(required)}
    if kind == "array":
        return [valid(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        return low + 1 if schema.get("exclusiveMinimum") else low
    if kind == "boolean":
        return False
    if "pattern" in schema:
        return _matching(schema["pattern"])
    return "x" * max(1, schema.get("minLength", 0))


def _matching(pattern: str) -> str:
    """A text matching ``pattern``: its literal start, then a letter or digits."""
    prefix = re.match(r"\^?([\w-]*)", pattern)
    start = prefix.group(1) if prefix else ""
    for text in (start + end for end in ("a", "0", "a0", "", "0" * 32)):
        if re.search(pattern, text):
            return text
    raise AssertionError(f"no sample text for pattern {pattern!r}")


_WRONG_TYPE = {
    "string": 12345,
    "integer": "not a number",
    "number": "not a number",
    "boolean": "not a boolean",
    "array": "not an array",
    "object": ["not", "an", "object"],
}


def invalid_values(field: Any) -> dict[str, Any]:
    """Values the spec refuses for ``field``, by kind: enum, type, bounds."""
    field = spec.resolve(field)
    out: dict[str, Any] = {}
    if field.get("enum"):
        out["enum"] = "no_such_value"
    kind = field.get("type")
    if kind in _WRONG_TYPE:
        out["type"] = _WRONG_TYPE[kind]
    if "maximum" in field:
        out["bounds"] = field["maximum"] + 1
    elif "minimum" in field:
        out["bounds"] = field["minimum"] - 1
    elif "maxLength" in field:
        out["bounds"] = "x" * (field["maxLength"] + 1)
    elif field.get("minLength", 0) > 0:
        out["bounds"] = ""
    elif "maxItems" in field:
        out["bounds"] = [valid(field.get("items", {}))] * (field["maxItems"] + 1)
    elif field.get("minItems", 0) > 0:
        out["bounds"] = []
    return out


#: A required field left out.
MISSING = object()


def _body_ops() -> list[str]:
    return sorted(
        operation_id
        for operation_id, (operation, _) in spec.operations().items()
        if spec.body_schema(operation) is not None
    )


def cases(operation_id: str) -> tuple[JSON, list[tuple[str, str, Any]]]:
    """The minimal valid body and ``(field, kind, bad value)``: the first field of each kind
    (enum, type, bounds) and the first required field left out (:data:`MISSING`)."""
    operation, _ = spec.operations()[operation_id]
    schema = spec.body_schema(operation)
    body = valid(schema)
    properties, required = spec.object_shape(schema)
    found: dict[str, tuple[str, str, Any]] = {}
    if required:
        found["required"] = (min(required), "required", MISSING)
    for name, field in properties.items():
        for kind, value in invalid_values(field).items():
            if kind in found or _is_file(field):
                continue
            if _multipart(operation_id) and _takes_text(field) and not isinstance(value, str):
                continue  # a text part is always text: a string field cannot get a non-string
            found[kind] = (name, kind, value)
    return body, list(found.values())


def _is_file(field: Any) -> bool:
    field = spec.resolve(field)
    if field.get("type") == "array":
        field = spec.resolve(field.get("items", {}))
    return field.get("format") == "binary"


def _takes_text(field: Any) -> bool:
    return spec.resolve(field).get("type") == "string"


def _multipart(operation_id: str) -> bool:
    return OPERATIONS[operation_id].body_kind == "multipart"


def _path(operation_id: str) -> str:
    op = OPERATIONS[operation_id]
    return op.path.format(**{name: "x" for name in op.path_params})


def _form(operation_id: str, body: JSON) -> aiohttp.FormData:
    operation, _ = spec.operations()[operation_id]
    properties, _ = spec.object_shape(spec.body_schema(operation))
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in body.items():
        if _is_file(properties.get(name, {})):
            form.add_field(name, b"data", filename="f.txt", content_type="text/plain")
        elif isinstance(value, str) and _takes_text(properties.get(name, {})):
            form.add_field(name, value)
        else:
            form.add_field(name, json.dumps(value))
    return form


async def _send(http: aiohttp.ClientSession, operation_id: str, body: JSON) -> tuple[int, JSON]:
    op = OPERATIONS[operation_id]
    sent: Any = _form(operation_id, body) if _multipart(operation_id) else None
    kwargs: JSON = {"data": sent} if sent is not None else {"json": body}
    async with http.request(op.http_method, _path(operation_id), **kwargs) as resp:
        return resp.status, await resp.json() if resp.status != 204 else {}


# -- the tests --------------------------------------------------------------------------------


def test_every_operation_with_a_body_has_invalid_cases() -> None:
    ops = _body_ops()
    assert set(ops) == {o for o, op in OPERATIONS.items() if op.body_kind is not None}
    assert [o for o in ops if not cases(o)[1]] == []
    kinds = {case[1] for o in ops for case in cases(o)[1]}
    assert kinds == {"enum", "type", "bounds", "required"}


@pytest.mark.parametrize("operation_id", _body_ops())
async def test_an_invalid_body_is_refused(http: aiohttp.ClientSession, operation_id: str) -> None:
    body, bad = cases(operation_id)
    validator = spec.operation_spec(operation_id).body
    assert validator is not None and spec.first_error(validator, body) is None, body
    for name, kind, value in bad:
        sent = {k: v for k, v in body.items() if k != name}
        if value is not MISSING:
            sent[name] = value
        status, answer = await _send(http, operation_id, sent)
        assert status == 400, (name, kind, value, answer)
        assert answer["status"] == "error"
        named = f"'{name}' is a required property" if value is MISSING else f"{name}:"
        assert answer["message"].startswith(f"Invalid request body: {named}"), (kind, answer)


async def test_a_conversation_flow_node_of_no_known_type_is_refused(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    nodes = [{"id": "start", "type": "no_such_type"}]
    body = {
        "start_speaker": "agent",
        "model_choice": {"type": "cascading", "model": "gpt-4.1"},
        "nodes": nodes,
    }
    async with http.post("/create-conversation-flow", json=body) as resp:
        answer = await resp.json()
    assert resp.status == 400, answer
    assert answer["message"].startswith("Invalid request body: nodes[0].type: 'no_such_type'")
    assert emu.state.store("conversation_flows") == {}
    # A known node type missing its own required field names that field.
    nodes[0] = {"id": "start", "type": "conversation", "instruction": {"type": "prompt"}}
    async with http.post("/create-conversation-flow", json=body) as resp:
        answer = await resp.json()
    assert resp.status == 400
    assert answer["message"] == (
        "Invalid request body: nodes[0].instruction: 'text' is a required property"
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        # Enum inside a nested object reached through $ref.
        ("POST", "/v2/create-phone-call",
         {"from_number": "+1", "to_number": "+1", "agent_override": {"agent": {"language": "xx"}}},
         "agent_override.agent.language"),
        # Pattern.
        ("POST", "/v2/create-phone-call",
         {"from_number": "+1", "to_number": "+1", "idempotency_key": "has space"},
         "idempotency_key"),
        # Exclusive bound (OpenAPI 3.0's boolean exclusiveMinimum).
        ("POST", "/create-phone-number", {"inbound_agents": [{"agent_id": "a", "weight": 0}]},
         "inbound_agents[0].weight"),
        # additionalProperties typed: dynamic variables are strings.
        ("POST", "/create-chat", {"agent_id": "a", "retell_llm_dynamic_variables": {"n": 1}},
         "retell_llm_dynamic_variables.n"),
    ],
)  # fmt: skip
async def test_nested_constraints_are_checked(
    http: aiohttp.ClientSession, method: str, path: str, body: JSON, named: str
) -> None:
    async with http.request(method, path, json=body) as resp:
        answer = await resp.json()
    assert resp.status == 400, answer
    assert answer["message"].startswith(f"Invalid request body: {named}:"), answer


async def test_nullable_fields_take_null(http: aiohttp.ClientSession) -> None:
    body = {"agent_id": "agent_emulator_default", "current_node_id": None}
    async with http.post("/v3/create-web-call", json=body) as resp:
        assert resp.status == 201, await resp.json()


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/get-agent/agent_emulator_default", {"version": "v1"}, "version"),
        ("/v2/list-phone-numbers", {"limit": "1.5"}, "limit"),
        ("/delete-retell-llm/x", {"force_delete": "maybe"}, "force_delete"),
        ("/v2/list-batch-tests", {"type": "retell-llm", "version": "latest"}, "version"),
    ],
)
async def test_query_parameters_are_checked(
    http: aiohttp.ClientSession, path: str, params: dict[str, str], named: str
) -> None:
    method = "DELETE" if path.startswith("/delete") else "GET"
    async with http.request(method, path, params=params) as resp:
        answer = await resp.json()
    assert resp.status == 400, answer
    assert answer["message"].startswith(f"Invalid query parameters: {named}:"), answer


async def test_query_parameters_read_from_text(http: aiohttp.ClientSession) -> None:
    for version in ("0", "latest"):
        params = {"version": version}
        async with http.get("/get-agent/agent_emulator_default", params=params) as resp:
            assert resp.status == 200, await resp.json()
    async with http.delete("/delete-retell-llm/llm_missing", params={"force_delete": "true"}) as r:
        assert r.status == 404  # the parameter passed; the LLM does not exist


async def test_a_long_value_is_quoted_short(http: aiohttp.ClientSession) -> None:
    body = {"from_number": "+1", "to_number": "+1", "idempotency_key": "k" * 5000}
    async with http.post("/v2/create-phone-call", json=body) as resp:
        message = (await resp.json())["message"]
    assert resp.status == 400
    assert message.startswith("Invalid request body: idempotency_key: 'kkk")
    assert message.endswith("...' is too long")
    assert len(message) < 200


def test_jsonschema_loads_with_the_first_checked_request_only() -> None:
    """``import aioretell`` (and building an emulator app) stays free of jsonschema."""
    code = (
        "import sys, aioretell, aioretell.emulator\n"
        "from aioretell.emulator import EmulatorConfig, create_app\n"
        "create_app(EmulatorConfig(api_key='k'))\n"
        "print(sorted({'jsonschema', 'referencing'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.strip() == "[]"
