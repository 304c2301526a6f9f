"""``multipart/form-data`` bodies for the upload operations.

The form is encoded to bytes once, before the first attempt, so a retry resends exactly the same
body and the pipeline keeps a single ``bytes`` body type. (aiohttp's ``FormData`` is a one-shot
stream, which a retry could not resend.) Fields are encoded as the official SDK encodes them:
text as is, booleans as ``true``/``false``, numbers in decimal, lists and objects as JSON, and
each file as its own part under the field's name.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeAlias

import anyio.to_thread
import msgspec

#: A file argument: its bytes, a path, an open binary file, or ``(filename, bytes)`` with an
#: optional content type as a third item.
FileInput: TypeAlias = (
    bytes
    | bytearray
    | memoryview
    | str
    | os.PathLike[str]
    | IO[bytes]
    | tuple[str, bytes]
    | tuple[str, bytes, str]
)

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Form:
    """An encoded form: the body and its ``Content-Type`` (which names the boundary)."""

    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class FilePart:
    filename: str
    content: bytes
    content_type: str


def _is_bytes(value: object) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def check_file(name: str, value: object) -> None:
    """A clear ``TypeError`` for anything that is not a file argument (runs before any I/O)."""
    if _is_bytes(value) or isinstance(value, (str, os.PathLike)):
        return
    if isinstance(value, tuple):
        if (
            len(value) in (2, 3)
            and isinstance(value[0], str)
            and _is_bytes(value[1])
            and (len(value) == 2 or isinstance(value[2], str))
        ):
            return
        raise TypeError(
            f"{name} must be a (filename, bytes) or (filename, bytes, content_type) tuple"
        )
    if callable(getattr(value, "read", None)):
        return
    raise TypeError(
        f"{name} must be bytes, a path, an open binary file or a (filename, bytes) tuple, "
        f"not {type(value).__name__}"
    )


def _guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


async def read_file(name: str, value: Any, *, default_filename: str = "file") -> FilePart:
    """The file's name, bytes and content type; paths and open files are read off the loop.

    ``value`` has passed :func:`check_file`. ``name`` names the argument in errors; bare bytes
    are sent as ``default_filename``.
    """
    if _is_bytes(value):
        return FilePart(default_filename, bytes(value), "application/octet-stream")
    if isinstance(value, tuple):
        content_type = value[2] if len(value) == 3 else _guess_type(value[0])
        return FilePart(value[0], bytes(value[1]), content_type)
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        try:
            content = await anyio.to_thread.run_sync(path.read_bytes)
        except OSError as exc:
            raise ValueError(f"{name}: cannot read {str(path)!r}: {exc.strerror}") from exc
        return FilePart(path.name, content, _guess_type(path.name))
    content = await anyio.to_thread.run_sync(value.read)
    if not _is_bytes(content):
        raise TypeError(f"{name} must be opened in binary mode ('rb'), it gave {type(content)}")
    label = getattr(value, "name", None)
    filename = os.path.basename(label) if isinstance(label, str) and label else default_filename
    return FilePart(filename, bytes(content), _guess_type(filename))


def _text(value: Any) -> str | None:
    """A non-file field as form text, the way the official SDK sends it."""
    value = msgspec.to_builtins(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return _encoder.encode(value).decode()
    return str(value)


def _quote(text: str) -> str:
    # Header values may not hold quotes or line breaks; percent-escape them as browsers do.
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


async def encode_form(params: msgspec.Struct, file_fields: tuple[str, ...]) -> Form:
    """Encode a multipart request Struct; ``file_fields`` (wire names) hold files."""
    texts: list[tuple[str, str]] = []
    files: list[tuple[str, str, Any]] = []  # (argument name for errors, field, file)
    for info in msgspec.structs.fields(params):
        value = getattr(params, info.name)
        if value is msgspec.UNSET:
            continue
        wire = info.encode_name
        if wire in file_fields:
            if isinstance(value, list):
                files += [(f"{wire}[{i}]", wire, item) for i, item in enumerate(value)]
            else:
                files.append((wire, wire, value))
            continue
        text = _text(value)
        if text is not None:
            texts.append((wire, text))
    # Every file argument is checked before the first one is read.
    for label, _, value in files:
        check_file(label, value)
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for wire, text in texts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(wire)}"\r\n\r\n'
        chunks.append(head.encode() + text.encode() + b"\r\n")
    for label, wire, value in files:
        part = await read_file(label, value, default_filename=wire)
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(wire)}"; '
            f'filename="{_quote(part.filename)}"\r\nContent-Type: {part.content_type}\r\n\r\n'
        )
        chunks.append(head.encode() + part.content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return Form(b"".join(chunks), f"multipart/form-data; boundary={boundary}")
