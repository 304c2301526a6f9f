"""Stored records to response bodies that decode with the operation's response type.

Records hold what clients sent plus what the emulator generated; a response must instead carry
every required field of the response schema, and only the schema's fields (write-only request
fields such as SIP passwords stay in the record). :func:`conform` walks the response type with
``msgspec.inspect``: it keeps the record's known fields (recursively), drops unknown ones and
fills each missing required field with a plausible value of its type.
"""

from __future__ import annotations

import functools
from typing import Any

from msgspec import inspect as mi

#: Integer or float fields with these name endings are times; they get "now" when missing.
_TIME_SUFFIXES = ("_timestamp", "expires_at")


@functools.cache
def type_info(tp: Any) -> mi.Type:
    """``msgspec.inspect.type_info``, cached: it is slow and the types are fixed."""
    return mi.type_info(tp)


def conform(tp: Any, value: Any, *, now_ms: int) -> Any:
    """``value`` shaped like ``tp``; ``tp=None`` (no response body) gives ``None``."""
    if tp is None:
        return None
    return _conform(type_info(tp), value, "", now_ms)


def _conform(t: mi.Type, value: Any, name: str, now_ms: int) -> Any:
    if isinstance(t, mi.StructType):
        return _struct(t, value, now_ms) if isinstance(value, dict) else value
    if isinstance(t, mi.ListType) and isinstance(value, list):
        return [_conform(t.item_type, item, name, now_ms) for item in value]
    if isinstance(t, mi.DictType) and isinstance(value, dict):
        return {k: _conform(t.value_type, v, name, now_ms) for k, v in value.items()}
    if isinstance(t, mi.UnionType):
        member = _member_for(t, value)
        return value if member is None else _conform(member, value, name, now_ms)
    if isinstance(t, mi.IntType) and isinstance(value, float) and value.is_integer():
        return int(value)  # a float-typed request field echoed into an integer response field
    return value


def _struct(t: mi.StructType, value: dict[str, Any], now_ms: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in t.fields:
        if f.encode_name in value:
            out[f.encode_name] = _conform(f.type, value[f.encode_name], f.encode_name, now_ms)
        elif f.required:
            out[f.encode_name] = placeholder(f.type, f.encode_name, now_ms)
    if t.tag_field is not None:
        out[t.tag_field] = t.tag
    return out


def _member_for(t: mi.UnionType, value: Any) -> mi.Type | None:
    """The union member a JSON value belongs to (structs and dicts for objects, and so on)."""
    wanted: tuple[type[mi.Type], ...]
    if isinstance(value, dict):
        wanted = (mi.StructType, mi.DictType)
    elif isinstance(value, list):
        wanted = (mi.ListType,)
    elif isinstance(value, float):
        wanted = (mi.FloatType, mi.IntType)
    else:
        return None
    for member in t.types:
        if isinstance(member, wanted) and _tag_matches(member, value):
            return member
    return None


def _tag_matches(member: mi.Type, value: Any) -> bool:
    if isinstance(member, mi.StructType) and member.tag_field is not None:
        return bool(value.get(member.tag_field) == member.tag)
    return True


def placeholder(t: mi.Type, name: str, now_ms: int) -> Any:
    """A plausible value of type ``t`` for a required field called ``name``."""
    if isinstance(t, mi.StructType):
        return _struct(t, {}, now_ms)
    if isinstance(t, mi.UnionType):
        members = [m for m in t.types if not isinstance(m, mi.NoneType)]
        return placeholder(members[0], name, now_ms) if members else None
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.StrType):
        text = f"emulated_{name}" if name else "emulated"
        return text.ljust(t.min_length or 0, "_")
    if isinstance(t, mi.BoolType):
        return False
    if isinstance(t, (mi.IntType, mi.FloatType)):
        if name.endswith(_TIME_SUFFIXES):
            number: float = now_ms
        else:
            number = max(t.ge if t.ge is not None else 0, t.gt + 1 if t.gt is not None else 0)
        return int(number) if isinstance(t, mi.IntType) else float(number)
    if isinstance(t, mi.ListType):
        return [placeholder(t.item_type, name, now_ms) for _ in range(t.min_length or 0)]
    if isinstance(t, mi.DictType):
        return {}
    return None  # Any and exotic types: null is valid JSON for them
