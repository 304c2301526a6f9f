"""Strip Retell's OpenAPI spec down to its structure: ``aioretell/_spec/retell-openapi.json``.

The committed JSON is what the code generator reads by default and what the emulator validates
request bodies against (lazily, only when the emulator runs). It keeps names, types and shape -
paths, operations, parameters, request bodies, responses, component schemas with their formats,
enums, bounds, patterns, required sets, ``nullable``, defaults, combinators and
``$ref``s - and drops every piece of prose (descriptions, summaries, titles, examples,
external docs, contact/licence info, vendor ``x-`` hints), so the spec's text never enters the
project.

Refreshing it when Retell publishes a new spec, from the repository root::

    python -m codegen.strip_spec --spec path/to/retell-openapi.yaml
    python -m codegen.generate_client
    python -m pytest -q tests/test_codegen.py tests/unit/test_generated_api.py

The first command rewrites the JSON; the second regenerates the client from it (the generator
makes byte-identical code from the full YAML and from the stripped JSON); the tests say whether
anything the client promises changed. Review the diff and commit the JSON with the regenerated
code. A keyword the stripper has not met before stops it with the key's location: decide
whether it is structure (add it to the allow-lists below) or prose (add it to ``_PROSE``).

Output is deterministic: schema keywords are sorted, while maps keyed by name (paths,
properties, components, response codes) keep the spec's order, which the generator follows.
"""

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from codegen._io import write_atomic

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "aioretell" / "_spec" / "retell-openapi.json"
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "retell-openapi.yaml"

#: Keys that only ever carry prose or documentation-tool hints; dropped wherever they appear.
_PROSE = frozenset({"description", "summary", "title", "example", "examples", "externalDocs"})

#: ``x-`` keys that carry structure the generator reads (everything else ``x-`` is dropped).
_KEPT_VENDOR_KEYS = frozenset({"x-retell-spec-revision"})

_SCHEMA_SCALARS = frozenset(
    {
        "$ref",
        "type",
        "format",
        "enum",
        "const",
        "default",
        "nullable",
        "readOnly",
        "writeOnly",
        "deprecated",
        "required",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
    }
)
_OPERATION_KEYS = frozenset(
    {"operationId", "parameters", "requestBody", "responses", "security", "deprecated"}
)
_PARAMETER_KEYS = frozenset(
    {"$ref", "name", "in", "required", "schema", "style", "explode", "deprecated"}
)
_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class StripError(Exception):
    """The spec has a key whose kind (structure or prose) has not been decided."""


def _dropped(key: str) -> bool:
    return key in _PROSE or (key.startswith("x-") and key not in _KEPT_VENDOR_KEYS)


def _keyword_object(
    raw: Mapping[str, Any],
    where: str,
    handlers: Mapping[str, Callable[[Any, str], Any]],
    scalars: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Keep the allowed keywords of one OpenAPI object, sorted; prose goes, unknown keys stop."""
    out: dict[str, Any] = {}
    for key in sorted(raw):
        value = raw[key]
        if _dropped(key):
            continue
        if key in handlers:
            out[key] = handlers[key](value, f"{where}/{key}")
        elif key in scalars or key in _KEPT_VENDOR_KEYS:
            out[key] = value
        else:
            raise StripError(f"unknown key {key!r} at {where or '/'}")
    return out


def _named(raw: Mapping[str, Any], where: str, each: Callable[[Any, str], Any]) -> dict[str, Any]:
    """A map keyed by names (properties, paths, ...): the spec's order, each value stripped."""
    return {str(name): each(value, f"{where}/{name}") for name, value in raw.items()}


def strip_schema(raw: Any, where: str) -> Any:
    if isinstance(raw, bool):  # additionalProperties: true/false
        return raw
    if not isinstance(raw, Mapping):
        raise StripError(f"expected a schema at {where}")

    def schemas(value: Any, at: str) -> list[Any]:
        return [strip_schema(item, f"{at}/{i}") for i, item in enumerate(value)]

    def properties(value: Any, at: str) -> dict[str, Any]:
        return _named(value, at, strip_schema)

    def discriminator(value: Any, at: str) -> dict[str, Any]:
        return _keyword_object(
            value,
            at,
            {"mapping": lambda m, _at: dict(m)},
            frozenset({"propertyName"}),
        )

    return _keyword_object(
        raw,
        where,
        {
            "properties": properties,
            "items": strip_schema,
            "additionalProperties": strip_schema,
            "not": strip_schema,
            "allOf": schemas,
            "oneOf": schemas,
            "anyOf": schemas,
            "discriminator": discriminator,
        },
        _SCHEMA_SCALARS,
    )


def _media_types(raw: Any, where: str) -> dict[str, Any]:
    def media(value: Any, at: str) -> dict[str, Any]:
        return _keyword_object(value, at, {"schema": strip_schema})

    return _named(raw, where, media)


def strip_parameter(raw: Any, where: str) -> dict[str, Any]:
    return _keyword_object(raw, where, {"schema": strip_schema}, _PARAMETER_KEYS)


def strip_request_body(raw: Any, where: str) -> dict[str, Any]:
    return _keyword_object(raw, where, {"content": _media_types}, frozenset({"$ref", "required"}))


def strip_response(raw: Any, where: str) -> dict[str, Any]:
    return _keyword_object(raw, where, {"content": _media_types}, frozenset({"$ref"}))


def _parameters(raw: Any, where: str) -> list[Any]:
    return [strip_parameter(p, f"{where}/{i}") for i, p in enumerate(raw)]


def strip_operation(raw: Any, where: str) -> dict[str, Any]:
    return _keyword_object(
        raw,
        where,
        {
            "parameters": _parameters,
            "requestBody": strip_request_body,
            "responses": lambda value, at: _named(value, at, strip_response),
        },
        _OPERATION_KEYS,
    )


def strip_path_item(raw: Any, where: str) -> dict[str, Any]:
    handlers: dict[str, Callable[[Any, str], Any]] = {"parameters": _parameters}
    handlers.update(dict.fromkeys(_HTTP_METHODS, strip_operation))
    return _keyword_object(raw, where, handlers)


def strip_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The structure of an OpenAPI 3 document, without its prose."""

    def info(value: Any, at: str) -> dict[str, Any]:
        kept = {k: value[k] for k in ("version", *sorted(_KEPT_VENDOR_KEYS)) if k in value}
        return dict(sorted(kept.items()))

    def servers(value: Any, at: str) -> list[dict[str, Any]]:
        return [{"url": server["url"]} for server in value]

    def security_schemes(value: Any, at: str) -> dict[str, Any]:
        scheme_keys = frozenset({"type", "scheme", "bearerFormat", "in", "name"})
        return _named(value, at, lambda s, a: _keyword_object(s, a, {}, scheme_keys))

    def components(value: Any, at: str) -> dict[str, Any]:
        return _keyword_object(
            value,
            at,
            {
                "schemas": lambda v, a: _named(v, a, strip_schema),
                "parameters": lambda v, a: _named(v, a, strip_parameter),
                "requestBodies": lambda v, a: _named(v, a, strip_request_body),
                "responses": lambda v, a: _named(v, a, strip_response),
                "securitySchemes": security_schemes,
            },
        )

    return _keyword_object(
        spec,
        "",
        {
            "info": info,
            "servers": servers,
            "components": components,
            "paths": lambda v, a: _named(v, a, strip_path_item),
        },
        frozenset({"openapi", "security"}),
    )


def render(stripped: Mapping[str, Any]) -> str:
    """One key per line (indent 1), so a spec refresh diffs readably; ends with a newline."""
    return json.dumps(stripped, indent=1, ensure_ascii=False) + "\n"


_REQUIRED_TOP_LEVEL = ("openapi", "info", "paths", "components")


def load_spec(path: Path) -> dict[str, Any]:
    """An OpenAPI document from a YAML or JSON file.

    Raises :class:`StripError` (one line, naming the file) when it cannot be read, does not
    parse, or is not an OpenAPI document, so that a wrong file never overwrites a good one.
    """
    try:
        with path.open(encoding="utf-8") as handle:
            doc = json.load(handle) if path.suffix == ".json" else yaml.safe_load(handle)
    except OSError as exc:
        raise StripError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, ValueError) as exc:  # JSONDecodeError and UnicodeError too
        raise StripError(f"{path} does not parse: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict):
        raise StripError(f"{path} is not an OpenAPI document (not a mapping)")
    missing = [key for key in _REQUIRED_TOP_LEVEL if key not in doc]
    if missing or not isinstance(doc["info"], dict) or "version" not in doc["info"]:
        what = ", ".join(missing) or "info.version"
        raise StripError(f"{path} is not an OpenAPI document (no {what})")
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codegen.strip_spec", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="Retell's OpenAPI YAML")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        return _run(args.spec, args.out)
    except KeyboardInterrupt:
        print("strip_spec: interrupted; the output is unchanged or complete", file=sys.stderr)
        return 130


def _run(spec: Path, out: Path) -> int:
    try:
        text = render(strip_spec(load_spec(spec)))
    except StripError as exc:
        print(f"strip_spec: error: {exc}", file=sys.stderr)
        return 1
    try:
        if out.exists() and out.read_text(encoding="utf-8") == text:
            print(f"strip_spec: {out} is up to date")
            return 0
        write_atomic(out, text)
    except OSError as exc:
        print(f"strip_spec: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"strip_spec: wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
