"""Schema model: turns OpenAPI schemas into Struct and alias definitions.

Only names, types and structure are read from the spec; descriptions and examples are ignored.
See ``codegen/generate_client.py`` for the rules this module implements.
"""

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from codegen._naming import camel, class_name, field_name

Flavour = Literal["request", "response"]
StructKey = tuple[str, Flavour]
Schema = Mapping[str, Any]

#: Keys that carry prose or tooling hints only; they never change a generated type.
_PROSE_KEYS = frozenset({"description", "example", "examples", "title", "deprecated", "default"})


class SpecError(Exception):
    """The spec (or the naming tables) cannot be turned into code as asked."""


# --------------------------------------------------------------------------------------------
# Type expressions


@dataclass(frozen=True)
class Prim:
    """A builtin type: ``str``, ``int``, ``float``, ``bool``, ``Any`` or ``dict[str, Any]``."""

    expr: str


@dataclass(frozen=True)
class ListT:
    item: "TNode"


@dataclass(frozen=True)
class DictT:
    value: "TNode"


@dataclass(frozen=True)
class StructRef:
    key: StructKey


@dataclass(frozen=True)
class UnionT:
    members: "tuple[TNode, ...]"


@dataclass(frozen=True)
class Constrained:
    """``Annotated[inner, msgspec.Meta(**constraints)]`` (request side only)."""

    inner: "TNode"
    constraints: tuple[tuple[str, int | float | str], ...]


TNode = Prim | ListT | DictT | StructRef | UnionT | Constrained

ANY = Prim("Any")


def iter_struct_refs(node: TNode) -> Iterator[StructKey]:
    if isinstance(node, StructRef):
        yield node.key
    elif isinstance(node, ListT):
        yield from iter_struct_refs(node.item)
    elif isinstance(node, DictT):
        yield from iter_struct_refs(node.value)
    elif isinstance(node, UnionT):
        for member in node.members:
            yield from iter_struct_refs(member)
    elif isinstance(node, Constrained):
        yield from iter_struct_refs(node.inner)


def uses_any(node: TNode) -> bool:
    if isinstance(node, Prim):
        return "Any" in node.expr
    if isinstance(node, ListT):
        return uses_any(node.item)
    if isinstance(node, DictT):
        return uses_any(node.value)
    if isinstance(node, UnionT):
        return any(uses_any(m) for m in node.members)
    if isinstance(node, Constrained):
        return uses_any(node.inner)
    return False


def uses_constraints(node: TNode) -> bool:
    if isinstance(node, Constrained):
        return True
    if isinstance(node, ListT):
        return uses_constraints(node.item)
    if isinstance(node, DictT):
        return uses_constraints(node.value)
    if isinstance(node, UnionT):
        return any(uses_constraints(m) for m in node.members)
    return False


# --------------------------------------------------------------------------------------------
# Definitions


@dataclass
class FieldDef:
    py_name: str
    wire_name: str
    type: TNode
    required: bool
    nullable: bool


@dataclass
class StructDef:
    key: StructKey
    fingerprint: str
    origin: str
    fields: list[FieldDef] = field(default_factory=list)


@dataclass
class _Candidate:
    """One property of an object being merged from allOf parts / oneOf variants."""

    schemas: list[tuple[Schema, str]]  # (property schema, owner name for inline objects)
    nullable: bool


def canon(schema: Any) -> str:
    """A fingerprint of a schema's structure, ignoring prose."""

    def strip(x: Any) -> Any:
        if isinstance(x, Mapping):
            return {
                k: strip(v)
                for k, v in x.items()
                if k not in _PROSE_KEYS and not str(k).startswith("x-")
            }
        if isinstance(x, list):
            return [strip(i) for i in x]
        return x

    return json.dumps(strip(schema), sort_keys=True)


_REF_PREFIX = "#/components/schemas/"


class SchemaModel:
    """Resolves schemas to type expressions, collecting the Structs they need."""

    def __init__(self, components: Mapping[str, Schema], renames: Mapping[str, str]) -> None:
        self.components = components
        self.renames = dict(renames)
        self.structs: dict[StructKey, StructDef] = {}
        self._pending: list[tuple[StructKey, Schema, str]] = []
        self.merge_conflicts: list[str] = []
        displays: dict[str, str] = {}
        for comp in sorted(components):
            display = self.display(comp)
            if display in displays:
                raise SpecError(
                    f"schemas {displays[display]!r} and {comp!r} would both be named {display!r}"
                )
            displays[display] = comp

    # -- names and references ------------------------------------------------------------

    def display(self, comp: str) -> str:
        return self.renames.get(comp) or class_name(comp)

    @staticmethod
    def ref_name(schema: Schema) -> str | None:
        ref = schema.get("$ref")
        if ref is None:
            return None
        if not isinstance(ref, str) or not ref.startswith(_REF_PREFIX):
            raise SpecError(f"unsupported $ref {ref!r}")
        return ref[len(_REF_PREFIX) :]

    def deref(self, schema: Schema, owner: str) -> tuple[Schema, str]:
        """Follow ``$ref`` (and trivial single-part ``allOf`` wrappers)."""
        seen: set[str] = set()
        while True:
            comp = self.ref_name(schema)
            if comp is not None:
                if comp in seen:
                    raise SpecError(f"$ref loop at {comp!r}")
                seen.add(comp)
                if comp not in self.components:
                    raise SpecError(f"$ref to unknown schema {comp!r}")
                schema, owner = self.components[comp], self.display(comp)
                continue
            inner = self._trivial_wrapper(schema)
            if inner is None:
                return schema, owner
            schema = inner

    @staticmethod
    def _is_empty(schema: Schema) -> bool:
        return all(k in _PROSE_KEYS or k in ("nullable", "type") for k in schema) and schema.get(
            "type", "object"
        ) in ("object",)

    def _trivial_wrapper(self, schema: Schema) -> Schema | None:
        """``allOf: [X]`` (plus empty parts) with nothing else -> X."""
        parts = schema.get("allOf")
        if not parts or any(
            k in schema for k in ("properties", "oneOf", "anyOf", "required", "items")
        ):
            return None
        real = [p for p in parts if not self._is_empty(p)]
        if len(real) != 1:
            return None
        return real[0]  # type: ignore[no-any-return]

    def is_nullable(self, schema: Schema) -> bool:
        if schema.get("nullable") is True:
            return True
        comp = self.ref_name(schema)
        if comp is not None:
            return self.is_nullable(self.components[comp])
        inner = self._trivial_wrapper(schema)
        return inner is not None and self.is_nullable(inner)

    # -- classification ------------------------------------------------------------------

    def variants(self, schema: Schema, owner: str) -> list[tuple[Schema, str]]:
        """The flattened oneOf/anyOf alternatives of ``schema`` (itself if it has none)."""
        schema, owner = self.deref(schema, owner)
        alts = schema.get("oneOf") or schema.get("anyOf")
        if not alts or "properties" in schema or "allOf" in schema:
            return [(schema, owner)]
        out: list[tuple[Schema, str]] = []
        for alt in alts:
            out.extend(self.variants(alt, owner))
        return out

    def property_names(self, schema: Schema) -> set[str]:
        """The wire names of every property of an object-like schema (all parts, variants)."""
        fields, _ = self._flatten(schema, "")
        return set(fields)

    def is_object_like(self, schema: Schema) -> bool:
        schema, _ = self.deref(schema, "")
        if "properties" in schema:
            return True
        if "allOf" in schema:
            return any(self.is_object_like(p) for p in schema["allOf"])
        alts = schema.get("oneOf") or schema.get("anyOf")
        if alts:
            return all(self.is_object_like(a) for a in alts)
        return False

    def scalar_of(self, schema: Schema) -> str | None:
        """``str``/``int``/``float``/``bool`` for a scalar schema, else None."""
        schema, _ = self.deref(schema, "")
        kind = schema.get("type")
        if kind is None and "enum" in schema:
            values = schema["enum"]
            if all(isinstance(v, str) for v in values):
                kind = "string"
            elif all(isinstance(v, bool) for v in values):
                kind = "boolean"
            elif all(isinstance(v, int) for v in values):
                kind = "integer"
        if kind == "string" and schema.get("format") != "binary":
            return "str"
        return {"integer": "int", "number": "float", "boolean": "bool"}.get(str(kind))

    def shape(self, schema: Schema) -> str:
        """What :meth:`type_of` would make of ``schema``, without registering anything."""
        comp = self.ref_name(schema)
        target, _ = self.deref(schema, "")
        if self.is_object_like(target):
            return f"ref:{comp}" if comp is not None else f"inline:{canon(target)}"
        if target.get("oneOf") or target.get("anyOf"):
            return f"union:{canon(target)}"
        kind = target.get("type")
        if kind == "array":
            items = target.get("items")
            return f"list[{self.shape(items) if items else 'Any'}]"
        if kind == "object" or "additionalProperties" in target:
            extra = target.get("additionalProperties")
            if isinstance(extra, Mapping) and extra:
                return f"dict[{self.shape(extra)}]"
            return "dict"
        return self.scalar_of(target) or "Any"

    # -- resolution ----------------------------------------------------------------------

    def type_of(self, schema: Schema, name: str, flavour: Flavour) -> TNode:
        """The type of a value with this schema; ``name`` names it if it is an inline object."""
        comp = self.ref_name(schema)
        if comp is not None:
            target, owner = self.deref(schema, name)
            return self.type_of(target, owner, flavour)
        inner = self._trivial_wrapper(schema)
        if inner is not None:
            return self.type_of(inner, name, flavour)
        if self.is_object_like(schema):
            return StructRef(self.struct(schema, name, flavour))
        if schema.get("oneOf") or schema.get("anyOf"):
            alts = self.variants(schema, name)
            if len(alts) == 1:
                return self.type_of(alts[0][0], alts[0][1], flavour)
            return self._union(alts, name, flavour)
        node = self._plain(schema, name, flavour)
        if flavour == "request":
            node = self._constrain(node, schema)
        return node

    def _union(self, alts: list[tuple[Schema, str]], name: str, flavour: Flavour) -> TNode:
        """Scalars only -> a union (one of each kind); any other mix -> Any."""
        if any(self.scalar_of(s) is None for s, _ in alts):
            return ANY
        members: list[TNode] = []
        seen: set[str] = set()
        for schema, owner in alts:
            node = self.type_of(schema, owner, flavour)
            kind = self.scalar_of(schema)
            assert kind is not None
            if kind in seen:
                # Two alternatives of the same kind (e.g. two string enums): keep it plain.
                members = [m for m in members if _base_prim(m) != kind]
                members.append(Prim(kind))
                continue
            seen.add(kind)
            members.append(node)
        return members[0] if len(members) == 1 else UnionT(tuple(members))

    def _plain(self, schema: Schema, name: str, flavour: Flavour) -> TNode:
        kind = schema.get("type")
        if kind == "array":
            items = schema.get("items")
            return ListT(self.type_of(items, name, flavour) if items else ANY)
        if kind == "object" or "additionalProperties" in schema:
            extra = schema.get("additionalProperties")
            if isinstance(extra, Mapping) and extra:
                return DictT(self.type_of(extra, name, flavour))
            return Prim("dict[str, Any]")
        scalar = self.scalar_of(schema)
        return Prim(scalar) if scalar is not None else ANY

    @staticmethod
    def _constrain(node: TNode, schema: Schema) -> TNode:
        found: list[tuple[str, int | float | str]] = []
        is_list = isinstance(node, ListT)
        is_text = node == Prim("str")
        is_number = node in (Prim("int"), Prim("float"))
        if is_text:
            if "minLength" in schema:
                found.append(("min_length", int(schema["minLength"])))
            if "maxLength" in schema:
                found.append(("max_length", int(schema["maxLength"])))
            pattern = schema.get("pattern")
            if isinstance(pattern, str):
                try:
                    re.compile(pattern)
                except re.error:
                    pass
                else:
                    found.append(("pattern", pattern))
        if is_list:
            if "minItems" in schema:
                found.append(("min_length", int(schema["minItems"])))
            if "maxItems" in schema:
                found.append(("max_length", int(schema["maxItems"])))
        if isinstance(node, DictT) or node == Prim("dict[str, Any]"):
            if "minProperties" in schema:
                found.append(("min_length", int(schema["minProperties"])))
            if "maxProperties" in schema:
                found.append(("max_length", int(schema["maxProperties"])))
        if is_number:
            for key, plain, strict, flag in (
                ("minimum", "ge", "gt", "exclusiveMinimum"),
                ("maximum", "le", "lt", "exclusiveMaximum"),
            ):
                if key in schema:
                    bound = schema[key]
                    found.append((strict if schema.get(flag) is True else plain, bound))
                elif isinstance(schema.get(flag), (int, float)) and not isinstance(
                    schema.get(flag), bool
                ):
                    found.append((strict, schema[flag]))
        if not found:
            return node
        return Constrained(node, tuple(found))

    def struct(self, schema: Schema, name: str, flavour: Flavour) -> StructKey:
        key: StructKey = (name, flavour)
        fingerprint = canon(schema)
        existing = self.structs.get(key)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise SpecError(
                    f"two different schemas would both be named {name!r} ({flavour}): "
                    f"{existing.origin} and {fingerprint[:120]}"
                )
            return key
        self.structs[key] = StructDef(key, fingerprint, origin=fingerprint[:120])
        self._pending.append((key, schema, name))
        return key

    def resolve_pending(self) -> None:
        while self._pending:
            key, schema, owner = self._pending.pop(0)
            self.structs[key].fields = self._fields(schema, owner, key)

    # -- object merging ------------------------------------------------------------------

    def _flatten(self, schema: Schema, owner: str) -> tuple[dict[str, _Candidate], set[str]]:
        """Properties (with candidates) and required names of an object-like schema."""
        schema, owner = self.deref(schema, owner)
        fields: dict[str, _Candidate] = {}
        required: set[str] = set(schema.get("required") or ())
        for part in schema.get("allOf") or ():
            part_fields, part_required = self._flatten(part, owner)
            for prop, cand in part_fields.items():
                fields[prop] = cand  # a later part refines an earlier one
            required |= part_required
        alts = schema.get("oneOf") or schema.get("anyOf")
        if alts and "properties" not in schema:
            alt_fields, alt_required = self._merge_variants(alts, owner)
            for prop, cand in alt_fields.items():
                fields[prop] = cand
            required |= alt_required
        for prop, prop_schema in (schema.get("properties") or {}).items():
            fields[prop] = _Candidate([(prop_schema, owner)], self.is_nullable(prop_schema))
        return fields, required

    def _merge_variants(
        self, alts: Iterable[Schema], owner: str
    ) -> tuple[dict[str, _Candidate], set[str]]:
        merged: dict[str, _Candidate] = {}
        required: set[str] | None = None
        for alt in alts:
            alt_fields, alt_required = self._flatten(alt, owner)
            required = alt_required if required is None else required & alt_required
            for prop, cand in alt_fields.items():
                have = merged.get(prop)
                if have is None:
                    merged[prop] = _Candidate(list(cand.schemas), cand.nullable)
                    continue
                have.nullable = have.nullable or cand.nullable
                prints = {canon(s) for s, _ in have.schemas}
                for item in cand.schemas:
                    if canon(item[0]) not in prints:
                        have.schemas.append(item)
        for prop in list(required or ()):
            if prop not in merged:
                required.discard(prop)  # type: ignore[union-attr]
        return merged, required or set()

    def _fields(self, schema: Schema, owner: str, key: StructKey) -> list[FieldDef]:
        flavour = key[1]
        candidates, required = self._flatten(schema, owner)
        out: list[FieldDef] = []
        names: dict[str, str] = {}
        for wire, cand in candidates.items():
            py = field_name(wire)
            if py in names:
                raise SpecError(f"{key[0]}: fields {names[py]!r} and {wire!r} collide as {py!r}")
            names[py] = wire
            if len(cand.schemas) == 1:
                prop_schema, prop_owner = cand.schemas[0]
                node = self.type_of(prop_schema, prop_owner + camel(wire), flavour)
            else:
                alts = [(s, o + camel(wire)) for s, o in cand.schemas]
                if len({self.shape(s) for s, _ in alts}) == 1:
                    node = self.type_of(alts[0][0], alts[0][1], flavour)
                elif all(self.scalar_of(s) is not None for s, _ in alts):
                    node = self._union(alts, key[0] + camel(wire), flavour)
                else:
                    node = ANY
                    self.merge_conflicts.append(f"{key[0]}.{wire}")
            out.append(FieldDef(py, wire, node, wire in required, cand.nullable))
        return out


def _base_prim(node: TNode) -> str | None:
    if isinstance(node, Prim):
        return node.expr
    if isinstance(node, Constrained):
        return _base_prim(node.inner)
    return None
