"""Emitters: module assignment and Python source for the generated files."""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from codegen._model import (
    Constrained,
    DictT,
    FieldDef,
    ListT,
    Prim,
    SpecError,
    StructDef,
    StructKey,
    StructRef,
    TNode,
    UnionT,
    iter_struct_refs,
    uses_any,
    uses_constraints,
)

if TYPE_CHECKING:
    from codegen.generate_client import AliasDef, Build

PACKAGE = "aioretell.types"
#: Suffix of the response flavour of a schema that is also emitted as a request Struct.
RESPONSE_FLAVOUR_SUFFIX = "Out"


class Emitter:
    def __init__(self, build: "Build", shared: str, header: str) -> None:
        self.build = build
        self.shared = shared
        self.header = header
        self.structs = build.model.structs
        self.names = self._final_names()
        self.module_of = self._assign_modules()
        self.defined_in: dict[str, str] = {}
        for key, module in self.module_of.items():
            self.defined_in[self.names[key]] = module
        for alias in build.aliases:
            if alias.name in self.defined_in:
                raise SpecError(f"alias {alias.name!r} collides with another generated name")
            self.defined_in[alias.name] = alias.module
        self.class_names = {self.names[key] for key in self.structs}

    # -- naming and placement ------------------------------------------------------------

    def _final_names(self) -> dict[StructKey, str]:
        flavours: dict[str, set[str]] = {}
        for name, flavour in self.structs:
            flavours.setdefault(name, set()).add(flavour)
        names: dict[StructKey, str] = {}
        for key in sorted(self.structs):
            name, flavour = key
            dual = len(flavours[name]) == 2
            names[key] = name + RESPONSE_FLAVOUR_SUFFIX if dual and flavour == "response" else name
        seen: dict[str, StructKey] = {}
        for key, name in sorted(names.items()):
            if name in seen:
                raise SpecError(f"{seen[name]} and {key} would both be named {name!r}")
            seen[name] = key
        return names

    def _assign_modules(self) -> dict[StructKey, str]:
        edges: dict[StructKey, set[StructKey]] = {
            key: {ref for f in struct.fields for ref in iter_struct_refs(f.type)}
            for key, struct in self.structs.items()
        }
        reached_by: dict[StructKey, set[str]] = {key: set() for key in self.structs}
        for noun, roots in sorted(self.build.roots.items()):
            stack = list(roots)
            seen: set[StructKey] = set()
            while stack:
                key = stack.pop()
                if key in seen:
                    continue
                seen.add(key)
                reached_by[key].add(noun)
                stack.extend(edges[key])
        out: dict[StructKey, str] = {}
        for key, nouns in reached_by.items():
            if not nouns:
                raise SpecError(f"internal: {key} is not reachable from any operation")
            out[key] = next(iter(nouns)) if len(nouns) == 1 else self.shared
        return out

    def modules(self) -> list[str]:
        nouns = {row.resource for op in self.build.ops for row in op.rows}
        return sorted(nouns | set(self.module_of.values()))

    # -- rendering -----------------------------------------------------------------------

    def render(self) -> dict[str, str]:
        files: dict[str, str] = {}
        exports: dict[str, list[str]] = {}
        for module in self.modules():
            text, public = self._render_module(module)
            files[f"aioretell/types/{module}.py"] = text
            exports[module] = public
        files["aioretell/types/__init__.py"] = self._render_init(exports)
        files["aioretell/_operation_table.py"] = self._render_table()
        return files

    def _type(self, node: TNode) -> str:
        if isinstance(node, Prim):
            return node.expr
        if isinstance(node, ListT):
            return f"list[{self._type(node.item)}]"
        if isinstance(node, DictT):
            return f"dict[str, {self._type(node.value)}]"
        if isinstance(node, StructRef):
            return self.names[node.key]
        if isinstance(node, UnionT):
            return " | ".join(self._type(m) for m in node.members)
        if isinstance(node, Constrained):
            meta = ", ".join(f"{k}={v!r}" for k, v in node.constraints)
            return f"Annotated[{self._type(node.inner)}, msgspec.Meta({meta})]"
        raise AssertionError(node)

    def _order(self, keys: Iterable[StructKey], module: str) -> list[StructKey]:
        """Dependencies first; cycles are broken by quoting (see :meth:`_field`)."""
        ordered: list[StructKey] = []
        done: set[StructKey] = set()
        active: set[StructKey] = set()

        def visit(key: StructKey) -> None:
            if key in done or key in active:
                return
            active.add(key)
            deps = {
                ref
                for f in self.structs[key].fields
                for ref in iter_struct_refs(f.type)
                if self.module_of[ref] == module
            }
            for dep in sorted(deps, key=lambda k: self.names[k]):
                visit(dep)
            active.discard(key)
            done.add(key)
            ordered.append(key)

        for key in sorted(keys, key=lambda k: self.names[k]):
            visit(key)
        return ordered

    def _field(self, f: FieldDef, flavour: str, later: set[str]) -> str:
        expr = self._type(f.type)
        is_any = f.type == Prim("Any")
        if flavour == "response":
            if f.required and not f.nullable:
                annotation, default = expr, None
            else:
                annotation, default = (expr if is_any else f"{expr} | None"), "None"
        else:
            none = " | None" if f.nullable and not is_any else ""
            if f.required:
                annotation, default = expr + none, None
            elif is_any:
                annotation, default = expr, "msgspec.UNSET"
            else:
                annotation, default = f"{expr} | msgspec.UnsetType{none}", "msgspec.UNSET"
        if any(self.names[ref] in later for ref in iter_struct_refs(f.type)):
            annotation = f'"{annotation}"'
        if f.py_name != f.wire_name:
            args = ([f"default={default}"] if default else []) + [f"name={f.wire_name!r}"]
            return f"    {f.py_name}: {annotation} = msgspec.field({', '.join(args)})"
        if default is None:
            return f"    {f.py_name}: {annotation}"
        return f"    {f.py_name}: {annotation} = {default}"

    def _struct(self, struct: StructDef, later: set[str]) -> str:
        name, flavour = self.names[struct.key], struct.key[1]
        options = "gc=False" if flavour == "response" else "omit_defaults=True"
        lines = [f"class {name}(msgspec.Struct, kw_only=True, {options}):"]
        if name.startswith("Test"):
            lines.append("    __test__ = False  # not a pytest test class")
        lines += [self._field(f, flavour, later) for f in struct.fields] or ["    pass"]
        return "\n".join(lines)

    def _render_module(self, module: str) -> tuple[str, list[str]]:
        keys = self._order((k for k, m in self.module_of.items() if m == module), module)
        aliases = sorted(
            (a for a in self.build.aliases if a.module == module), key=lambda a: a.name
        )
        imports: dict[str, set[str]] = {}
        public: set[str] = {self.names[k] for k in keys} | {a.name for a in aliases}
        need_any = need_annotated = need_alias = False

        def need(name: str) -> None:
            owner = self.defined_in[name]
            if owner != module:
                imports.setdefault(owner, set()).add(name)

        for key in keys:
            for f in self.structs[key].fields:
                need_any |= uses_any(f.type)
                need_annotated |= uses_constraints(f.type)
                for ref in iter_struct_refs(f.type):
                    need(self.names[ref])
        alias_lines: list[str] = []
        for alias in aliases:
            alias_lines.append(self._alias(alias, need))
            if alias.node is not None:
                need_any |= uses_any(alias.node)
                need_annotated |= uses_constraints(alias.node)
                need_alias |= not isinstance(alias.node, StructRef)
            elif alias.target is not None and alias.target not in self.class_names:
                need_alias = True
        # Re-export the types this resource's operations use but another module defines.
        for op in self.build.ops:
            if op.primary.resource != module:
                continue
            types = self.build.op_types[op.operation_id]
            for name in (types.body, types.query, types.response):
                if name is not None:
                    need(name)
                    public.add(name)

        typing_names = [
            n
            for n, used in (
                ("Annotated", need_annotated),
                ("Any", need_any),
                ("TypeAlias", need_alias),
            )
            if used
        ]
        out = [self.header, "# ruff: noqa: E501"]
        if module == self.shared:
            out.append('"""Types used by more than one resource."""')
        else:
            out.append(f'"""Request and response types of the ``{module}`` resource."""')
        out.append("")
        if typing_names:
            out.append(f"from typing import {', '.join(typing_names)}")
        out.append("import msgspec")
        for owner in sorted(imports):
            names = ", ".join(sorted(imports[owner]))
            out.append(f"from {PACKAGE}.{owner} import {names}")
        out.append("")
        out.append("__all__ = [" + ", ".join(repr(n) for n in sorted(public)) + "]")
        later = {self.names[k] for k in keys}
        for key in keys:
            later.discard(self.names[key])
            out += ["", "", self._struct(self.structs[key], later)]
        if alias_lines:
            out += ["", "", *alias_lines]
        return "\n".join(out) + "\n", sorted(public)

    def _alias(self, alias: "AliasDef", need: "_Need") -> str:
        if alias.target is not None:
            need(alias.target)
            if alias.target in self.class_names:
                return f"{alias.name} = {alias.target}"
            return f"{alias.name}: TypeAlias = {alias.target}"
        assert alias.node is not None
        for ref in iter_struct_refs(alias.node):
            need(self.names[ref])
        expr = self._type(alias.node)
        if isinstance(alias.node, StructRef):
            return f"{alias.name} = {expr}"
        return f"{alias.name}: TypeAlias = {expr}"

    def _render_init(self, exports: dict[str, list[str]]) -> str:
        owner: dict[str, str] = {}
        for module in sorted(exports):
            for name in exports[module]:
                if self.defined_in[name] == module:
                    owner[name] = module
        out = [
            self.header,
            "# ruff: noqa: E501",
            '"""Request and response types of the Retell API.',
            "",
            "Names are resolved on first access: importing this package imports no model module.",
            '"""',
            "",
            "import importlib",
            "from typing import TYPE_CHECKING, Any",
            "",
            "if TYPE_CHECKING:",
        ]
        for module in sorted(set(owner.values())):
            names = sorted(n for n, m in owner.items() if m == module)
            out.append(f"    from {PACKAGE}.{module} import {', '.join(names)}")
        out += [
            "",
            "__all__ = [" + ", ".join(repr(n) for n in sorted(owner)) + "]",
            "",
            "_MODULE_OF: dict[str, str] = {"
            + ", ".join(f"{n!r}: {owner[n]!r}" for n in sorted(owner))
            + "}",
            "",
            "",
            "def __getattr__(name: str) -> Any:",
            "    try:",
            "        module = _MODULE_OF[name]",
            "    except KeyError:",
            '        message = f"module {__name__!r} has no attribute {name!r}"',
            "        raise AttributeError(message) from None",
            '    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)',
            "    globals()[name] = value",
            "    return value",
            "",
            "",
            "def __dir__() -> list[str]:",
            "    return sorted({*globals(), *__all__})",
        ]
        return "\n".join(out) + "\n"

    def _render_table(self) -> str:
        build = self.build
        out = [
            self.header,
            "# ruff: noqa: E501",
            '"""Every Retell API operation as data (see :mod:`aioretell._operation`)."""',
            "",
            "from aioretell._operation import Operation, RetrySafety",
            "",
            "OPERATIONS: dict[str, Operation] = {",
        ]
        from codegen.generate_client import RETRY, STARTS_CONVERSATION

        def ref(module: str, name: str | None) -> str:
            return "None" if name is None else repr(f"{PACKAGE}.{module}:{name}")

        for op in build.ops:
            types = build.op_types[op.operation_id]
            module = op.primary.resource
            out += [
                f"    {op.operation_id!r}: Operation(",
                f"        operation_id={op.operation_id!r},",
                f"        http_method={op.http_method!r},",
                f"        path={op.path!r},",
                f"        path_params={op.path_params!r},",
                f"        retry=RetrySafety.{RETRY[op.operation_id]},",
                f"        starts_conversation={op.operation_id in STARTS_CONVERSATION},",
                f"        body_kind={op.body_kind!r},",
                f"        body_ref={ref(module, types.body)},",
                f"        query_ref={ref(module, types.query)},",
                f"        response_ref={ref(module, types.response)},",
            ]
            field = build.idempotency_field(op)
            if field is not None:
                out.append(f"        idempotency_field={field!r},")
            out += ["    ),"]
        out += ["}", "", "METHODS: dict[tuple[str, str], str] = {"]
        methods = sorted(
            ((row.resource, row.method), op.operation_id) for op in build.ops for row in op.rows
        )
        out += [f"    {key!r}: {op_id!r}," for key, op_id in methods]
        out.append("}")
        return "\n".join(out) + "\n"


if TYPE_CHECKING:
    from collections.abc import Callable

    _Need = Callable[[str], None]
