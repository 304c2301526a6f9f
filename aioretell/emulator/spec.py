"""Retell's OpenAPI spec as JSON Schema validators, one set per operation.

The spec ships with the package as a stripped copy (structure only:
``aioretell/_spec/retell-openapi.json``) in OpenAPI 3.0.3. On first use its schemas become
JSON Schema (draft 2020-12):

* ``nullable: true`` becomes a ``null`` type (or ``anyOf`` null for ``$ref``/combinators);
* boolean ``exclusiveMinimum``/``exclusiveMaximum`` become the draft's numeric bounds;
* a ``oneOf`` whose members each require a one-value tag property (``type``, ``mode``, ...)
  selects its member by the tag (``if``/``then``), so an error names the bad tag or the
  chosen member's own field instead of "not valid under any of the given schemas";
* ``$ref`` into ``#/components/`` resolves through a ``referencing`` registry that holds the
  converted document.

Validators are built per operation on first use and cached. jsonschema is imported then, not
when ``aioretell`` (or the emulator) is imported.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator
    from referencing import Registry

JSON = dict[str, Any]

SPEC_FILE = "_spec/retell-openapi.json"
#: The converted document's URI in the registry; every ``$ref`` is made absolute to it.
_URI = "urn:aioretell:retell-openapi"
_INTEGER = re.compile(r"-?\d+")
#: Longest error message sent back, and longest quote of the offending value in it.
MAX_MESSAGE = 300
MAX_VALUE = 60


@functools.cache
def openapi() -> JSON:
    """The stripped OpenAPI document, parsed."""
    raw = importlib.resources.files("aioretell").joinpath(SPEC_FILE).read_bytes()
    document: JSON = msgspec.json.decode(raw)
    return document


# -- OpenAPI 3.0 schema -> JSON Schema 2020-12 --------------------------------------------------


def resolve(schema: Any) -> Any:
    """``schema`` with ``$ref`` into this document followed (OpenAPI form, unconverted)."""
    while isinstance(schema, dict) and "$ref" in schema:
        node: Any = openapi()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def object_shape(schema: Any) -> tuple[JSON, set[str]]:
    """Properties and required names of an object schema, through ``$ref`` and ``allOf``."""
    schema = resolve(schema)
    properties: JSON = {}
    required: set[str] = set()
    if not isinstance(schema, dict):
        return properties, required
    for part in schema.get("allOf", ()):
        more, needed = object_shape(part)
        properties.update(more)
        required |= needed
    properties.update(schema.get("properties", {}))
    required |= set(schema.get("required", ()))
    return properties, required


def _tag_value(shape: tuple[JSON, set[str]], name: str) -> Any:
    """The one value a member allows for its required property ``name``, else ``None``."""
    properties, required = shape
    prop = resolve(properties.get(name))
    if name in required and isinstance(prop, dict) and len(prop.get("enum", ())) == 1:
        return prop["enum"][0]
    return None


def _tag(members: list[Any]) -> tuple[str, list[Any]] | None:
    """The property that tells ``members`` apart, and each member's value of it, if any.

    A tag is a required property with a one-value ``enum`` in every member, its values all
    different (``ConversationFlowNode`` by ``type``). Without one, ``None``.
    """
    shapes = [object_shape(m) for m in members]
    if not shapes:
        return None
    for name in shapes[0][0]:
        values = [_tag_value(shape, name) for shape in shapes]
        if None not in values and len(set(map(repr, values))) == len(values):
            return name, values
    return None


def _tagged_choice(members: list[Any]) -> JSON | None:
    tag = _tag(members)
    if tag is None:
        return None
    name, values = tag
    return {
        "type": "object",
        "required": [name],
        "properties": {name: {"enum": values}},
        "allOf": [
            {
                "if": {"required": [name], "properties": {name: {"const": value}}},
                "then": _convert(member),
            }
            for member, value in zip(members, values, strict=True)
        ],
    }


def _nullable(schema: JSON) -> JSON:
    combined = any(k in schema for k in ("$ref", "allOf", "anyOf", "oneOf", "not"))
    if combined:
        return {"anyOf": [{"type": "null"}, schema]}
    if "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema


_SUBSCHEMA = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("allOf", "anyOf")
_SUBSCHEMA_MAPS = ("properties", "patternProperties")
#: OpenAPI keywords with no JSON Schema meaning (or handled on their own).
_OPENAPI_ONLY = frozenset(
    {"nullable", "discriminator", "xml", "externalDocs", "example", "oneOf"}
    | {"exclusiveMinimum", "exclusiveMaximum"}
)


def _convert(schema: Any) -> Any:
    """One OpenAPI 3.0 schema as JSON Schema 2020-12 (see the module docstring)."""
    if not isinstance(schema, dict):
        return schema  # ``additionalProperties: true`` and the like
    out: JSON = {}
    for key, value in schema.items():
        if key == "$ref":
            out[key] = _URI + value
        elif key in _SUBSCHEMA_MAPS:
            out[key] = {name: _convert(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA:
            out[key] = _convert(value)
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [_convert(sub) for sub in value]
        elif key not in _OPENAPI_ONLY:
            out[key] = value
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if schema.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
    if "oneOf" in schema:
        choice = _tagged_choice(schema["oneOf"])
        if choice is None:
            out["oneOf"] = [_convert(sub) for sub in schema["oneOf"]]
        else:
            out["allOf"] = [*out.get("allOf", ()), choice]
    if schema.get("nullable") is True:
        out = _nullable(out)
    return out


@functools.cache
def _registry() -> Registry[Any]:
    """A registry holding the converted ``components`` under :data:`_URI`."""
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    schemas: Mapping[str, Any] = openapi().get("components", {}).get("schemas", {})
    converted = {"components": {"schemas": {n: _convert(s) for n, s in schemas.items()}}}
    registry: Registry[Any] = Registry().with_resource(_URI, DRAFT202012.create_resource(converted))
    return registry


def _validator(schema: Any) -> Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_convert(schema), registry=_registry())


# -- operations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One path or query parameter of an operation."""

    name: str
    location: str
    required: bool
    validator: Validator
    #: JSON types the parameter takes, for reading its text ("3" is 3 when integers are).
    types: frozenset[str]

    def error(self, text: str) -> ValidationError | None:
        """Why ``text`` fits none of the types the schema takes (``None`` if one fits).

        Parameters arrive as text: ``"3"`` is tried as the integer 3 where integers are
        allowed, ``"true"`` as a boolean where booleans are, and the text itself last.
        """
        candidates: list[Any] = []
        if "integer" in self.types and _INTEGER.fullmatch(text):
            candidates.append(int(text))
        if "number" in self.types:
            try:
                number = float(text)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    candidates.append(number)
        if "boolean" in self.types and text in ("true", "false"):
            candidates.append(text == "true")
        candidates.append(text)
        first: ValidationError | None = None
        for candidate in candidates:
            error = first_error(self.validator, candidate)
            if error is None:
                return None
            first = first or error
        return first


@dataclass(frozen=True)
class OperationSpec:
    operation_id: str
    #: The request body's validator; ``None`` when the operation takes no body.
    body: Validator | None
    params: tuple[Param, ...]
    #: The HTTP statuses the spec lists for the operation.
    statuses: frozenset[int]


@functools.cache
def operations() -> dict[str, tuple[JSON, list[JSON]]]:
    """operationId -> (the operation, its path-level parameters)."""
    found: dict[str, tuple[JSON, list[JSON]]] = {}
    for item in openapi().get("paths", {}).values():
        shared = item.get("parameters", [])
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                found[operation["operationId"]] = (operation, shared)
    return found


def _types(schema: Any) -> frozenset[str]:
    schema = resolve(schema)
    if not isinstance(schema, dict):
        return frozenset()
    types = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for key in ("oneOf", "anyOf", "allOf"):
        for member in schema.get(key, ()):
            types |= _types(member)
    return frozenset(types)


def body_schema(operation: JSON) -> Any:
    """The request body schema of an operation (JSON or multipart), or ``None``."""
    content = resolve(operation.get("requestBody", {})).get("content", {})
    for media in ("application/json", "multipart/form-data"):
        if media in content:
            return content[media].get("schema", {})
    return None


@functools.cache
def operation_spec(operation_id: str) -> OperationSpec:
    """The validators of one operation (``KeyError`` if the spec has no such operation)."""
    operation, shared = operations()[operation_id]
    params: dict[tuple[str, str], Param] = {}
    for raw in (*shared, *operation.get("parameters", ())):
        p = resolve(raw)
        if p.get("in") not in ("path", "query"):
            continue
        schema = p.get("schema", {})
        params[(p["in"], p["name"])] = Param(
            p["name"], p["in"], bool(p.get("required")), _validator(schema), _types(schema)
        )
    body = body_schema(operation)
    statuses = frozenset(int(s) for s in operation.get("responses", {}) if s.isdigit())
    return OperationSpec(
        operation_id,
        None if body is None else _validator(body),
        tuple(params.values()),
        statuses,
    )


def refusal_status(operation_id: str) -> int:
    """The status an operation answers a request naming an object that does not exist.

    Retell answers 422 ("cannot find requested asset") where the spec lists it for the
    operation, else 404 where it lists that, else 400.
    """
    statuses = operation_spec(operation_id).statuses
    return next((s for s in (422, 404) if s in statuses), 400)


# -- errors ---------------------------------------------------------------------------------


def first_error(validator: Validator, instance: Any) -> ValidationError | None:
    """The most telling error of ``instance`` (``None`` if it is valid)."""
    from jsonschema.exceptions import best_match

    errors = validator.iter_errors(instance)
    first = next(errors, None)
    if first is None:
        return None
    best: ValidationError = best_match([first, *errors])
    return best


def location(path: Iterable[Any]) -> str:
    """A JSON path as ``nodes[0].type``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def describe(error: ValidationError) -> str:
    """``field.path: what is wrong``, short enough for an error body."""
    if error.validator == "not" and isinstance(error.validator_value, dict):
        together = error.validator_value.get("required")
        if together:
            message = f"{' and '.join(together)} must not be sent together"
        else:
            message = error.message
    else:
        message = error.message
    # jsonschema's messages start with the offending value: keep its start and what is wrong.
    shown = repr(error.instance)
    if len(shown) > MAX_VALUE and message.startswith(shown):
        message = f"{shown[:MAX_VALUE]}...{shown[-1]}{message[len(shown) :]}"
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    where = location(error.absolute_path)
    return f"{where}: {message}" if where else message
