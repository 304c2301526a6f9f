"""Requests checked against Retell's OpenAPI spec: path and query parameters, JSON and
multipart bodies (see :mod:`.spec`). Whatever the spec refuses is a 400 in Retell's error
shape, naming the field: enums, ``oneOf`` members, bounds, patterns, nested objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import inspect as mi

from aioretell._operation import Operation

from . import spec
from .conform import type_info
from .multipart import Form
from .registry import ApiError
from .state import JSON


def _operation_spec(op: Operation) -> spec.OperationSpec | None:
    """The spec of ``op``; ``None`` for an operation the spec does not have (a test's own)."""
    try:
        return spec.operation_spec(op.operation_id)
    except KeyError:
        return None


def _check_body(op: Operation, body: JSON) -> None:
    described = _operation_spec(op)
    if described is None or described.body is None:
        return
    error = spec.first_error(described.body, body)
    if error is not None:
        raise ApiError(400, f"Invalid request body: {spec.describe(error)}")


def decode_body(op: Operation, raw: bytes) -> JSON:
    """The JSON body as plain data, after checking it against the operation's schema.

    An empty body counts as ``{}``, so optional bodies (list endpoints) may be left out and a
    missing required body reports its first missing field. Multipart bodies go through
    :func:`decode_form` instead.
    """
    if op.body_kind != "json":
        return {}
    try:
        data = msgspec.json.decode(raw.strip() or b"{}")
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid request body: expected a JSON object")
    _check_body(op, data)
    return data


def check_params(op: Operation, path: Mapping[str, str], query: Mapping[str, str]) -> None:
    """400 unless the path and query parameters fit their schemas (read from text as
    :meth:`.spec.Param.error` says). Unknown query parameters are ignored."""
    described = _operation_spec(op)
    if described is None:
        return
    for param in described.params:
        text = (path if param.location == "path" else query).get(param.name)
        problem = None
        if text is None:
            if param.required:
                problem = f"{param.name!r} is a required property"
        else:
            error = param.error(text)
            if error is not None:
                problem = f"{param.name}: {spec.describe(error)}"
        if problem is not None:
            raise ApiError(400, f"Invalid {param.location} parameters: {problem}")


def decode_form(op: Operation, form: Form) -> JSON:
    """A multipart body as plain data, checked against the operation's schema like JSON.

    Text parts become typed values by ``op.body_type`` (a field typed ``str`` stays text,
    anything else is parsed as JSON: ``true``, ``600``, ``["a"]``); files become
    ``Upload.describe()`` dicts under their field name, a list of them when the field is a
    list. File fields are the ones typed ``Any``. The spec types a file as a binary string, so
    the schema check sees each file as its file name.
    """
    fields = {f.encode_name: f.type for f in _struct_info(op.body_type).fields}
    body: JSON = {}
    checked: JSON = {}
    for name, texts in form.text.items():
        field_type = fields.get(name)
        if field_type is not None and _is_file_field(field_type):
            raise ApiError(400, f"Invalid request body: '{name}' must be a file upload")
        body[name] = _text_value(name, texts, field_type)
    for name, uploads in form.files.items():
        field_type = fields.get(name)
        if field_type is None or not _is_file_field(field_type):
            raise ApiError(400, f"Invalid request body: '{name}' does not take a file")
        described = [upload.describe() for upload in uploads]
        names = [upload.filename for upload in uploads]
        if _is_list(field_type):
            body[name], checked[name] = described, names
        elif len(described) == 1:
            body[name], checked[name] = described[0], names[0]
        else:
            raise ApiError(400, f"Invalid request body: '{name}' takes one file")
    _check_body(op, {**body, **checked})
    return body


def _struct_info(body_type: Any) -> mi.StructType:
    info = type_info(body_type)
    if not isinstance(info, mi.StructType):
        raise TypeError(f"multipart body type {body_type!r} is not a Struct")
    return info


def _members(t: mi.Type) -> list[mi.Type]:
    """``t`` without the optional wrappers (UNSET, None) of a union."""
    if isinstance(t, mi.UnionType):
        return [m for m in t.types if not isinstance(m, (mi.NoneType, mi.CustomType))]
    return [t]


def _is_list(t: mi.Type) -> bool:
    return any(isinstance(m, mi.ListType) for m in _members(t))


def _is_file_field(t: mi.Type) -> bool:
    for member in _members(t):
        if isinstance(member, mi.ListType):
            member = member.item_type
        if isinstance(member, mi.AnyType):
            return True
    return False


def _is_text(t: mi.Type) -> bool:
    return all(isinstance(m, mi.StrType) for m in _members(t))


def _text_value(name: str, texts: list[str], field_type: mi.Type | None) -> Any:
    if field_type is None:  # not in the schema; validation ignores it
        return texts[0] if len(texts) == 1 else texts
    if len(texts) > 1:
        # A list sent as one part per item: each part is one element.
        lists = [m for m in _members(field_type) if isinstance(m, mi.ListType)]
        if not lists:
            raise ApiError(400, f"Invalid request body: '{name}' given {len(texts)} times")
        return [_parse(name, text, lists[0].item_type) for text in texts]
    return _parse(name, texts[0], field_type)


def _parse(name: str, text: str, field_type: mi.Type) -> Any:
    if _is_text(field_type):
        return text
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        if any(isinstance(m, mi.StrType) for m in _members(field_type)):
            return text  # e.g. ``str | int``: a bare word is the string
        raise ApiError(
            400, f"Invalid request body: '{name}' must be a number, boolean or JSON, not {text!r}"
        ) from None
