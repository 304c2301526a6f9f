"""Argument checks that run before anything is sent. Errors name the parameter."""

from __future__ import annotations

import os
import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_e164 = _E164.fullmatch
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING = re.compile(r"Object missing required field `([^`]*)`")


def resolve_api_key(api_key: object) -> str:
    """``api_key``, else ``$RETELL_API_KEY``; a clear error when neither is set."""
    key = api_key if api_key is not None else os.environ.get("RETELL_API_KEY")
    if not key:
        raise ValueError(
            "api_key is required: pass api_key=... or set the RETELL_API_KEY environment variable"
        )
    if not isinstance(key, str):
        raise TypeError(f"api_key must be a str, not {type(key).__name__}")
    return key


def require_id(name: str, value: object) -> str:
    """A path id: a non-empty string without surrounding whitespace."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must be a non-empty id")
    return value


def require_page_size(name: str, value: object) -> None:
    """A page size of at least 1 (the upper bound is the request Struct's)."""
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def is_e164(value: str) -> bool:
    """``+`` then 2 to 15 digits, no leading zero."""
    return _E164.fullmatch(value) is not None


def require_e164(name: str, value: object) -> None:
    """A phone number in E.164 form: ``+`` then 2 to 15 digits, no leading zero."""
    if isinstance(value, str) and _e164(value) is not None:
        return  # the common case, in as few steps as it takes
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str in E.164 form, not {type(value).__name__}")
    raise ValueError(f"{name} must be an E.164 phone number like +14155550100, got {value!r}")


def build_params(params_type: type[T], fields: dict[str, Any]) -> T:
    """Check keyword arguments against the operation's request Struct, in one conversion.

    ``fields`` are the arguments given (the generated caller leaves unset ones out); nested
    parameters may be plain dicts or request Structs. A wrong type raises ``TypeError``, a
    value outside the spec's bounds ``ValueError``; both name the parameter path
    (``agent_override.agent.voice_id``).
    """
    try:
        return msgspec.convert(fields, params_type)
    except msgspec.ValidationError as exc:
        raise _argument_error(str(exc)) from None


def _argument_error(message: str) -> TypeError | ValueError:
    missing = _MISSING.match(message)
    if missing:
        return TypeError(f"missing required argument {missing.group(1)!r}")
    at = _AT_PATH.search(message)
    where = at.group(1) if at else ""
    detail = _AT_PATH.sub("", message)
    text = f"{where}: {detail}" if where else detail
    if ", got `" in detail:
        return TypeError(text)
    return ValueError(text)
