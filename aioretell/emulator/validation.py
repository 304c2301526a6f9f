"""Request bodies checked against the operation's params Struct."""

from __future__ import annotations

from typing import Any

import msgspec

from aioretell._operation import Operation

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
    missing required body reports its first missing field. Multipart bodies are not checked.
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
