"""Reading ``multipart/form-data`` bodies (knowledge bases, voice clones, assets, imports).

The wire format both the official SDK and aioretell send: one part per scalar field, as text
(booleans ``true``/``false``, numbers in decimal, lists and objects JSON-encoded), and one part
per file, with a ``filename``, under the field name (a list of files repeats the name).
:func:`read_form` only splits the body into text fields and files; turning the text back into
typed values and checking them is :func:`.validation.decode_form`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web

from .registry import ApiError

#: Uploads are kept in memory: refuse bodies above this size.
MAX_FORM_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    content_type: str
    data: bytes

    def describe(self) -> dict[str, object]:
        """The upload as a request-body value: its name, type, size and content."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
            "data": self.data,
        }


@dataclass(slots=True)
class Form:
    #: Field name -> its text values, in order (usually one).
    text: dict[str, list[str]] = field(default_factory=dict)
    #: Field name -> its files, in order.
    files: dict[str, list[Upload]] = field(default_factory=dict)


async def read_form(request: web.Request) -> Form:
    """The parts of a ``multipart/form-data`` request; 400 if the body is not one."""
    if request.content_type != "multipart/form-data":
        raise ApiError(400, "Expected a multipart/form-data body")
    form = Form()
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "Nested multipart bodies are not supported")
            if not part.name:
                raise ApiError(400, "A multipart part has no field name")
            data = await part.read()
            total += len(data)
            if total > MAX_FORM_BYTES:
                raise ApiError(413, f"Multipart body larger than {MAX_FORM_BYTES} bytes")
            # Some encoders mark list fields as "name[]"; the field is "name".
            name = part.name.removesuffix("[]")
            if part.filename is not None:
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                form.files.setdefault(name, []).append(Upload(part.filename, content_type, data))
            else:
                text = data.decode(part.get_charset("utf-8"))
                form.text.setdefault(name, []).append(text)
    # aiohttp's parser raises ValueError (bad boundary or headers, undecodable text);
    # LookupError is an unknown charset.
    except (ValueError, LookupError) as exc:
        raise ApiError(400, f"Malformed multipart body: {exc}") from None
    return form
