"""Emitter for ``aioretell/resources/*.py`` and ``aioretell/_resources.py``.

One class per official SDK resource, one ``async`` method per tsv row, named as the official SDK
names it. A method's signature comes from the operation: path parameters first (positional or
keyword, the spec's names), then the body and query fields as keywords. Its body checks the
arguments (types and bounds through the request Struct, ids, E.164 numbers), builds the request
Structs and hands them to the client's single pipeline. List operations that page also get a
``<method>_all`` iterator over every item.
"""

import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codegen._model import (
    Constrained,
    DictT,
    FieldDef,
    ListT,
    Prim,
    SpecError,
    StructRef,
    TNode,
    UnionT,
)
from codegen._naming import camel

if TYPE_CHECKING:
    from codegen._emit_types import Emitter
    from codegen.generate_client import Build, Op, Row

TYPES_PACKAGE = "aioretell.types"

#: Locals of a generated method; a spec field with one of these names would shadow them.
_RESERVED = frozenset(
    {"self", "sent_body", "sent_query", "body_fields", "query_fields", "result", "form"}
)

#: Fields checked as E.164 phone numbers, by operationId. When the body has an
#: ``ignore_e164_validation`` field, ``True`` there skips the check (as the API does).
E164_FIELDS: dict[str, tuple[str, ...]] = {
    "createBatchCall": ("from_number",),
    "createPhoneCall": ("from_number", "to_number"),
    "createSmsChat": ("from_number", "to_number"),
    "importPhoneNumber": ("phone_number",),
}

#: The fields a paged list uses for its cursor and page size, and the ones ``*_all`` leaves out:
#: an offset (``skip``) never mixes with a cursor, and a total is a per-page extra.
CURSOR, PAGE_SIZE = "pagination_key", "limit"
NOT_IN_ITERATOR = frozenset({"skip", "include_total"})


def path_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """The official SDK's order of path parameters: the last one (the object acted on) first.

    ``delete_source(source_id, knowledge_base_id=...)`` then works as it does with retell-sdk.
    """
    return names[-1:] + names[:-1]


@dataclass(frozen=True)
class Param:
    """One keyword of a generated method and where it goes."""

    field: FieldDef
    place: str  # "body" | "query"
    annotation: str


@dataclass(frozen=True)
class Paging:
    item: str  # the item type's public name
    cursor_place: str  # "body" | "query"
    max_page: int | None  # the spec's maximum page size


class ResourceEmitter:
    def __init__(
        self, build: "Build", types: "Emitter", header: str, summaries: Mapping[str, str]
    ) -> None:
        self.build = build
        self.types = types
        self.header = header
        self.summaries = summaries
        #: Response Structs by public name (a paged list is recognised by its fields).
        self._response_structs = {
            types.names[key]: key for key in types.structs if key[1] == "response"
        }
        missing = sorted({op.operation_id for op in build.ops} - set(summaries))
        if missing:
            raise SpecError(
                "operations without a summary in codegen/summaries.py (write one in our own "
                f"words): {', '.join(missing)}"
            )

    def resources(self) -> list[str]:
        return sorted({row.resource for op in self.build.ops for row in op.rows})

    def render(self) -> dict[str, str]:
        files = {
            f"aioretell/resources/{resource}.py": self._module(resource)
            for resource in self.resources()
        }
        files["aioretell/_resources.py"] = self._accessors()
        return files

    # -- the client's resource attributes -------------------------------------------------

    def _accessors(self) -> str:
        out = [
            self.header,
            "# ruff: noqa: E501",
            '"""The client\'s resource attributes (``client.agent``, ``client.call``, ...).',
            "",
            "Each resource module is imported on first access: ``import aioretell`` stays cheap.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "from functools import cached_property",
            "from typing import TYPE_CHECKING, cast",
            "",
            "if TYPE_CHECKING:",
            "    from aioretell._client import AsyncRetell",
        ]
        for resource in self.resources():
            out.append(f"    from aioretell.resources.{resource} import {self._class(resource)}")
        out += [
            "",
            "",
            "class Resources:",
            '    """Mixed into ``AsyncRetell``: one lazily built resource per API noun."""',
        ]
        for resource in self.resources():
            cls = self._class(resource)
            out += [
                "",
                "    @cached_property",
                f"    def {resource}(self) -> {cls}:",
                f"        from aioretell.resources.{resource} import {cls}",
                "",
                f'        return {cls}(cast("AsyncRetell", self))',
            ]
        return "\n".join(out) + "\n"

    @staticmethod
    def _class(resource: str) -> str:
        return camel(resource) + "Resource"

    # -- one resource module ----------------------------------------------------------------

    def _module(self, resource: str) -> str:
        rows = [(row, op) for op in self.build.ops for row in op.rows if row.resource == resource]
        rows.sort(key=lambda pair: pair[0].method)
        imports: dict[str, set[str]] = {}
        needs: set[str] = set()
        methods: list[str] = []
        constants: dict[str, str] = {}
        for row, op in rows:
            const = "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", op.operation_id).upper()
            const = re.sub(r"_+", "_", const)
            constants[const] = op.operation_id
            methods.append(self._method(row, op, const, imports, needs))
            paging = self._paging(op)
            if paging is not None:
                methods.append(self._iterator(row, op, const, paging, imports, needs))
        out = [
            self.header,
            "# ruff: noqa: E501",
            f'"""``client.{resource}``: every operation of the ``{resource}`` resource."""',
            "",
            "from __future__ import annotations",
            "",
        ]
        if "builtins" in needs:
            out.append("import builtins")
        abc = sorted(n for n in ("Mapping", "Sequence") if n in needs)
        if abc:
            out.append(f"from collections.abc import {', '.join(abc)}")
        if "Any" in needs:
            out.append("from typing import Any")
        out.append("")
        msgspec_names = [n for n in ("UNSET", "UnsetType") if n in needs]
        if msgspec_names:
            out.append(f"from msgspec import {', '.join(msgspec_names)}")
        out.append("")
        if "Pager" in needs:
            out.append("from aioretell._pagination import Pager")
        validation = sorted(
            n
            for n in ("build_params", "require_e164", "require_id", "require_page_size")
            if n in needs
        )
        if validation:
            out.append(f"from aioretell._validation import {', '.join(validation)}")
        if "read_form" in needs:
            out.append("from aioretell._multipart import FileInput, encode_form")
        out.append("from aioretell.resources._base import Resource, operation")
        for module in sorted(imports):
            out.append(f"from {TYPES_PACKAGE}.{module} import {', '.join(sorted(imports[module]))}")
        out.append("")
        for const, op_id in sorted(constants.items()):
            out.append(f"{const} = operation({op_id!r})")
        out += [
            "",
            "",
            f"class {self._class(resource)}(Resource):",
            f'    """The ``{resource}`` operations; reach it as ``client.{resource}``."""',
            "",
            "    __slots__ = ()",
        ]
        for method in methods:
            out += ["", method]
        return "\n".join(out) + "\n"

    # -- parameters ------------------------------------------------------------------------

    def _struct_fields(self, name: str | None) -> list[FieldDef]:
        if name is None:
            return []
        return self.types.structs[(name, "request")].fields

    def _params(
        self, op: "Op", imports: dict[str, set[str]], needs: set[str]
    ) -> tuple[list[Param], list[Param]]:
        types = self.build.op_types[op.operation_id]
        files = self._file_fields(op)
        required: list[Param] = []
        optional: list[Param] = []
        seen: dict[str, str] = {name: "path" for name in op.path_params}
        for place, name in (("query", types.query), ("body", types.body)):
            for f in self._struct_fields(name):
                if f.py_name in _RESERVED:
                    raise SpecError(f"{op.operation_id}: field {f.wire_name!r} shadows a local")
                if f.py_name in seen:
                    raise SpecError(
                        f"{op.operation_id}: {f.wire_name!r} is both a {seen[f.py_name]} and a "
                        f"{place} parameter"
                    )
                seen[f.py_name] = place
                if f.wire_name in files:
                    needs.add("read_form")
                    annotation = (
                        "FileInput" if files[f.wire_name] == "one" else "Sequence[FileInput]"
                    )
                    if files[f.wire_name] == "many":
                        needs.add("Sequence")
                else:
                    annotation = self._input(f.type, imports, needs)
                param = Param(f, place, annotation)
                (required if f.required else optional).append(param)
        return required, optional

    def _file_fields(self, op: "Op") -> dict[str, str]:
        """Multipart file fields: ``"one"`` file or ``"many"`` (an array of files)."""
        if op.body_kind != "multipart" or op.body_schema is None:
            return {}
        schema, _ = self.build.model.deref(op.body_schema, "")
        out: dict[str, str] = {}
        for name, prop in (schema.get("properties") or {}).items():
            prop, _ = self.build.model.deref(prop, "")
            if prop.get("format") == "binary":
                out[name] = "one"
            elif prop.get("type") == "array":
                item, _ = self.build.model.deref(prop.get("items") or {}, "")
                if item.get("format") == "binary":
                    out[name] = "many"
        return out

    def _input(self, node: TNode, imports: dict[str, set[str]], needs: set[str]) -> str:
        """What a caller may pass for a value of this type (Structs or plain mappings)."""
        if isinstance(node, Constrained):
            return self._input(node.inner, imports, needs)
        if isinstance(node, Prim):
            if node.expr == "dict[str, Any]":
                needs.update(("Mapping", "Any"))
                return "Mapping[str, Any]"
            if node.expr == "Any":
                needs.add("Any")
            return node.expr
        if isinstance(node, StructRef):
            name = self.types.names[node.key]
            imports.setdefault(self.types.defined_in[name], set()).add(name)
            needs.update(("Mapping", "Any"))
            return f"{name} | Mapping[str, Any]"
        if isinstance(node, ListT):
            needs.add("Sequence")
            return f"Sequence[{self._input(node.item, imports, needs)}]"
        if isinstance(node, DictT):
            needs.add("Mapping")
            return f"Mapping[str, {self._input(node.value, imports, needs)}]"
        if isinstance(node, UnionT):
            return " | ".join(self._input(m, imports, needs) for m in node.members)
        raise AssertionError(node)

    @staticmethod
    def _signature_entry(param: Param, needs: set[str], default: str | None = None) -> str:
        f = param.field
        annotation = param.annotation
        if annotation == "Any":
            return f"{f.py_name}: Any" + ("" if f.required else " = UNSET")
        tail = " | None" if f.nullable else ""
        if default is not None:
            return f"{f.py_name}: {annotation}{tail} = {default}"
        if f.required:
            return f"{f.py_name}: {annotation}{tail}"
        needs.update(("UNSET", "UnsetType"))
        return f"{f.py_name}: {annotation} | UnsetType{tail} = UNSET"

    # -- methods ---------------------------------------------------------------------------

    def _returns(self, row: "Row", imports: dict[str, set[str]], needs: set[str]) -> str:
        from codegen.generate_client import RESPONSE_NAMES

        name = RESPONSE_NAMES[(row.resource, row.method)]
        if name is None:
            return "None"
        imports.setdefault(self.types.defined_in[name], set()).add(name)
        return name

    def _docstring(self, op: "Op", extra: Iterable[str]) -> list[str]:
        from codegen.generate_client import RETRY, SAFE

        lines = [self.summaries[op.operation_id], ""]
        lines.append(f"Sends ``{op.http_method} {op.path}``.")
        if RETRY[op.operation_id] == SAFE:
            lines.append("Safe to repeat: retried on connection errors, 408, 409, 429 and 5xx.")
        elif (field := self.build.idempotency_field(op)) is not None:
            lines.append(
                f"Given no {field}, the client makes one and sends it on every attempt, so it is "
                "retried on connection errors, timeouts, 408, 409, 429 and 5xx and acts once; "
                "a failure after the last retry raises AmbiguousOutcomeError carrying the key. "
                f"Given your own {field}, it is retried only when it surely did not arrive "
                "(connection refused, 429), unless the client has retry_ambiguous_creates=True."
            )
        else:
            lines.append(
                "May act twice if repeated, so it is retried only when it surely did not arrive "
                "(connection refused, 429); any other failure raises AmbiguousOutcomeError, "
                "unless the client has retry_ambiguous_creates=True."
            )
        for paragraph in extra:
            lines += ["", paragraph]
        return lines

    @staticmethod
    def _format_doc(lines: list[str], indent: str) -> list[str]:
        """A summary line, then the rest as paragraphs (split on blank lines) wrapped to fit."""
        out = [f'{indent}"""{lines[0]}']
        paragraphs: list[list[str]] = [[]]
        for line in lines[1:]:
            if line:
                paragraphs[-1].append(line)
            elif paragraphs[-1]:
                paragraphs.append([])
        for words in paragraphs:
            if not words:
                continue
            out.append("")
            wrapped = textwrap.wrap(
                " ".join(words), width=100 - len(indent), break_long_words=False
            )
            out += [f"{indent}{line}" for line in wrapped]
        out.append(f'{indent}"""')
        return out

    def _refuses_together(self, op: "Op", names: set[str]) -> bool:
        """Whether the body schema refuses ``names`` sent together (``not: {required: [...]}``)."""
        if op.body_schema is None:
            return False
        schema, _ = self.build.model.deref(op.body_schema, "")
        refused = schema.get("not")
        return isinstance(refused, dict) and names <= set(refused.get("required") or ())

    def _checks(self, op: "Op", params: list[Param], indent: str, needs: set[str]) -> list[str]:
        lines: list[str] = []
        for name in op.path_params:
            needs.add("require_id")
            lines.append(f"{indent}{name} = require_id({name!r}, {name})")
        by_wire = {p.field.wire_name: p for p in params}
        for p in params:
            f = p.field
            if f.required and f.wire_name.endswith("_id") and p.annotation == "str":
                needs.add("require_id")
                lines.append(f"{indent}require_id({f.py_name!r}, {f.py_name})")
        e164 = E164_FIELDS.get(op.operation_id, ())
        if e164:
            needs.add("require_e164")
            checks: list[str] = []
            for wire in e164:
                param = by_wire.get(wire)
                if param is None:
                    raise SpecError(f"{op.operation_id}: E164_FIELDS names unknown field {wire!r}")
                checks.append(f"require_e164({wire!r}, {param.field.py_name})")
            skip = by_wire.get("ignore_e164_validation")
            if skip is not None:
                lines.append(f"{indent}if {skip.field.py_name} is not True:")
                lines += [f"{indent}    {c}" for c in checks]
            else:
                lines += [f"{indent}{c}" for c in checks]
        return lines

    def _builds(
        self,
        op: "Op",
        params: list[Param],
        indent: str,
        needs: set[str],
        *,
        pager: bool = False,
        defaults: Mapping[str, str] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Lines that build the request Structs, and the ``_request`` keyword arguments.

        ``defaults``: the parameters given a default of their own (never unset).
        """
        types = self.build.op_types[op.operation_id]
        lines: list[str] = []
        kwargs: list[str] = []
        if op.path_params:
            pairs = ", ".join(f"{n!r}: {n}" for n in op.path_params)
            kwargs.append(f"path={{{pairs}}}")
        files = self._file_fields(op)
        for place, name, local in (
            ("query", types.query, "sent_query"),
            ("body", types.body, "sent_body"),
        ):
            if name is None:
                continue
            needs.add("build_params")
            given = [p for p in params if p.place == place]
            lines += self._fields(place, given, indent, needs, set(defaults or ()))
            lines.append(f"{indent}{local} = build_params({name}, {place}_fields)")
            kwargs.append(f"{place}={local}")
        if files and not pager:
            lines.append(f"{indent}form = await encode_form(sent_body, {tuple(sorted(files))!r})")
            kwargs = [k for k in kwargs if not k.startswith("body=")]
            kwargs.append("form=form")
        from codegen.generate_client import RETRY, SIDE_EFFECT

        if RETRY[op.operation_id] == SIDE_EFFECT and any(
            p.field.wire_name == "metadata" and p.place == "body" for p in params
        ):
            kwargs.append("metadata=metadata")
        return lines, kwargs

    @staticmethod
    def _fields(
        place: str, given: list[Param], indent: str, needs: set[str], defaulted: set[str]
    ) -> list[str]:
        """Lines that gather the arguments given for ``place`` into ``<place>_fields``.

        Required ones (and those with a default of their own) always, the others only when
        set: one ``msgspec.convert`` then checks them all, with nothing left to filter out.
        """
        always = [p for p in given if p.field.required or p.field.py_name in defaulted]
        maybe = [p for p in given if p not in always]
        needs.update(("Any",))
        pairs = ", ".join(f"{p.field.wire_name!r}: {p.field.py_name}" for p in always)
        lines = [f"{indent}{place}_fields: dict[str, Any] = {{{pairs}}}"]
        if maybe:
            needs.add("UNSET")
        for p in maybe:
            lines += [
                f"{indent}if {p.field.py_name} is not UNSET:",
                f"{indent}    {place}_fields[{p.field.wire_name!r}] = {p.field.py_name}",
            ]
        return lines

    def _head(
        self,
        name: str,
        op: "Op",
        required: list[Param],
        optional: list[Param],
        returns: str,
        needs: set[str],
        *,
        is_async: bool = True,
        defaults: Mapping[str, str] | None = None,
    ) -> list[str]:
        entries = ["self"]
        entries += [f"{n}: str" for n in path_order(op.path_params)]
        keywords = [self._signature_entry(p, needs) for p in required]
        for p in optional:
            default = (defaults or {}).get(p.field.py_name)
            keywords.append(self._signature_entry(p, needs, default))
        if keywords:
            entries.append("*")
            entries += keywords
        prefix = "async def" if is_async else "def"
        return [
            f"    {prefix} {name}(",
            *(f"        {e}," for e in entries),
            f"    ) -> {returns}:",
        ]

    def _method(
        self, row: "Row", op: "Op", const: str, imports: dict[str, set[str]], needs: set[str]
    ) -> str:
        required, optional = self._params(op, imports, needs)
        types = self.build.op_types[op.operation_id]
        for name in (types.body, types.query):
            if name is not None:
                imports.setdefault(self.types.defined_in[name], set()).add(name)
        returns = self._returns(row, imports, needs)
        params = required + optional
        extra: list[str] = []
        if self._file_fields(op):
            extra.append(
                "Sent as multipart/form-data. A file is bytes, a path, an open binary file or a "
                "(filename, bytes) tuple."
            )
        paging = self._paging(op)
        if paging is not None:
            extra.append(f"One page; ``{row.method}_all`` iterates over every item.")
        wire_names = {p.field.wire_name for p in params}
        lines = self._head(row.method, op, required, optional, returns, needs)
        lines += self._format_doc(self._docstring(op, extra), "        ")
        indent = "        "
        lines += self._checks(op, params, indent, needs)
        if {"skip", CURSOR} <= wire_names and self._refuses_together(op, {"skip", CURSOR}):
            needs.add("UNSET")
            lines += [
                f"{indent}if skip is not UNSET and {CURSOR} is not UNSET:",
                f'{indent}    raise ValueError("pass skip or {CURSOR}, not both")',
            ]
        builds, kwargs = self._builds(op, params, indent, needs)
        lines += builds
        call = (
            f"self._client._request({const}, {', '.join(kwargs)})"
            if kwargs
            else (f"self._client._request({const})")
        )
        if returns == "None":
            lines.append(f"{indent}await {call}")
        else:
            lines.append(f"{indent}result: {returns} = await {call}")
            lines.append(f"{indent}return result")
        return "\n".join(lines)

    # -- paging ----------------------------------------------------------------------------

    def _paging(self, op: "Op") -> Paging | None:
        types = self.build.op_types[op.operation_id]
        if types.response is None:
            return None
        key = self._response_structs.get(types.response)
        if key is None:
            return None
        fields = {f.wire_name: f for f in self.types.structs[key].fields}
        if not {"items", "has_more", CURSOR} <= set(fields):
            return None
        items = fields["items"].type
        if not (isinstance(items, ListT) and isinstance(items.item, StructRef)):
            raise SpecError(f"{op.operation_id}: paged items are not a list of objects")
        place = None
        max_page = None
        for candidate, name in (("query", types.query), ("body", types.body)):
            for f in self._struct_fields(name):
                if f.wire_name == CURSOR:
                    place = candidate
                if f.wire_name == PAGE_SIZE and isinstance(f.type, Constrained):
                    bounds = dict(f.type.constraints)
                    if isinstance(bounds.get("le"), int):
                        max_page = int(bounds["le"])
        if place is None:
            raise SpecError(f"{op.operation_id}: pages answers but takes no {CURSOR}")
        return Paging(self.types.names[items.item.key], place, max_page)

    def _iterator(
        self,
        row: "Row",
        op: "Op",
        const: str,
        paging: Paging,
        imports: dict[str, set[str]],
        needs: set[str],
    ) -> str:
        required, optional = self._params(op, imports, needs)
        optional = [p for p in optional if p.field.wire_name not in NOT_IN_ITERATOR]
        item = paging.item
        imports.setdefault(self.types.defined_in[item], set()).add(item)
        needs.add("Pager")
        defaults = {}
        if paging.max_page is not None:
            defaults[PAGE_SIZE] = str(paging.max_page)
        name = f"{row.method}_all"
        lines = self._head(
            name, op, required, optional, f"Pager[{item}]", needs, is_async=False, defaults=defaults
        )
        page_note = (
            f"``{PAGE_SIZE}`` is the page size (at most {paging.max_page}, the default)."
            if paging.max_page is not None
            else f"``{PAGE_SIZE}`` is the page size."
        )
        doc = [
            f"Every item of ``{row.method}``, fetching each next page only when it is needed.",
            "",
            f"An async iterator: ``async for item in client.{row.resource}.{name}(...)``. "
            + page_note,
            f"``{CURSOR}`` resumes after that cursor; ``skip`` is not offered, since an offset",
            "and a cursor do not mix. Arguments are checked here, before the first request.",
        ]
        lines += self._format_doc(doc, "        ")
        indent = "        "
        params = required + optional
        lines += self._checks(op, params, indent, needs)
        if any(p.field.wire_name == PAGE_SIZE for p in params):
            needs.add("require_page_size")
            lines.append(f"{indent}require_page_size({PAGE_SIZE!r}, {PAGE_SIZE})")
        builds, kwargs = self._builds(op, params, indent, needs, pager=True, defaults=defaults)
        lines += builds
        kwargs.append(f"cursor_in={paging.cursor_place!r}")
        lines.append(f"{indent}return Pager(self._client, {const}, {', '.join(kwargs)})")
        return "\n".join(lines)
