"""Request bodies and query strings checked against the operation's params Structs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import inspect as mi

from aioretell._operation import Operation

from .conform import type_info
from .multipart import Form
from .registry import ApiError
from .state import JSON

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(body_type: Any) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(body_type)
    if decoder is None:
        decoder = _decoders[body_type] = msgspec.json.Decoder(body_type)
    return decoder


def decode_body(op: Operation, raw: bytes) -> JSON:
    """The body as plain JSON data, after checking it against ``op.body_type``.

    An empty body counts as ``{}``, so optional bodies (list endpoints) may be left out and a
    missing required body reports its first missing field. Multipart bodies go through
    :func:`decode_form` instead.
    """
    if op.body_kind != "json":
        return {}
    body_type = op.body_type
    try:
        value = _decoder(Any if body_type is None else body_type).decode(raw.strip() or b"{}")
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: catch it first
        raise ApiError(400, f"Invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    data = msgspec.to_builtins(value)
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid request body: expected a JSON object")
    return data


def check_query(op: Operation, query: Mapping[str, str]) -> None:
    """400 unless the query string fits ``op.query_type`` (numbers and booleans from text).

    A parameter typed ``str | int`` (agent versions: ``latest`` or ``3``) would take ``"3"``
    as a string and fail the string's pattern, so a failing query is tried once more with
    its digit strings as integers.
    """
    if op.query_type is None:
        return
    try:
        msgspec.convert(dict(query), op.query_type, strict=False)
    except msgspec.ValidationError as exc:
        numbers = {k: int(v) if v.isdigit() else v for k, v in query.items()}
        try:
            msgspec.convert(numbers, op.query_type, strict=False)
        except msgspec.ValidationError:
            raise ApiError(400, f"Invalid query parameters: {exc}") from None


def decode_form(op: Operation, form: Form) -> JSON:
    """A multipart body as plain data, checked against ``op.body_type`` like a JSON body.

    Text parts become typed values (a field typed ``str`` stays text, anything else is parsed
    as JSON: ``true``, ``600``, ``["a"]``); files become ``Upload.describe()`` dicts under their
    field name, a list of them when the field is a list. File fields are the ones typed ``Any``.
    """
    fields = {f.encode_name: f.type for f in _struct_info(op.body_type).fields}
    body: JSON = {}
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
        if _is_list(field_type):
            body[name] = described
        elif len(described) == 1:
            body[name] = described[0]
        else:
            raise ApiError(400, f"Invalid request body: '{name}' takes one file")
    try:
        msgspec.convert(body, op.body_type)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"Invalid request body: {exc}") from None
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
