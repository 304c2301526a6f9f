"""Identifier helpers shared by the code generator."""

import keyword
import re

_WORD_SPLIT = re.compile(r"[^0-9A-Za-z]+")


def camel(text: str) -> str:
    """``custom_stt_config`` -> ``CustomSttConfig``; existing capitals are kept (``CRMConfig``)."""
    parts = [p for p in _WORD_SPLIT.split(text) if p]
    out = "".join(p[0].upper() + p[1:] for p in parts)
    if not out:
        raise ValueError(f"cannot make an identifier from {text!r}")
    if out[0].isdigit():
        out = "N" + out
    return out


def class_name(text: str) -> str:
    """A valid CamelCase class name for a spec schema name."""
    if text.isidentifier() and not keyword.iskeyword(text) and text[0].isupper():
        return text
    return camel(text)


def field_name(wire: str) -> str:
    """A safe Python attribute name for a JSON property name.

    Valid identifiers are kept as they are (the wire name is the attribute name); Python keywords
    get a trailing underscore; anything else is reduced to ``[a-z0-9_]``.
    """
    if wire.isidentifier():
        name = wire
    else:
        name = re.sub(r"[^0-9A-Za-z_]+", "_", wire).strip("_").lower() or "field"
        if name[0].isdigit():
            name = "f_" + name
    if keyword.iskeyword(name):
        name += "_"
    if name.startswith("_"):
        name = "f" + name
    return name


def method_camel(method: str) -> str:
    """An SDK method name (``import_``, ``create_phone_call``) as CamelCase."""
    return camel(method.rstrip("_"))
