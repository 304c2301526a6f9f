"""Multipart uploads: the form on the wire, every kind of file argument, and bad input."""

from __future__ import annotations

import email
import email.message
import json
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses
from yarl import URL

from aioretell import AsyncRetell
from aioretell._multipart import encode_form
from aioretell.types.knowledge_base import KnowledgeBaseCreateParams

from .mocked_api import BASE, KEY
from .mocked_api import client as client
from .mocked_api import mocked as mocked

KB = {"knowledge_base_id": "kb_1", "knowledge_base_name": "Docs", "status": "in_progress"}


def parts(body: bytes, content_type: str) -> list[email.message.Message]:
    """Parse a multipart body with the standard library, as a server would."""
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    assert message.is_multipart()
    return list(message.iter_parts())  # type: ignore[attr-defined]


def field(part: email.message.Message) -> str:
    name = part.get_param("name", header="content-disposition")
    assert isinstance(name, str)
    return name


async def test_form_fields_are_encoded_as_the_official_sdk_does(tmp_path: Path) -> None:
    path = tmp_path / "faq.txt"
    path.write_bytes(b"Q: hours? A: 9-5")
    params = KnowledgeBaseCreateParams(
        knowledge_base_name="Docs",
        knowledge_base_texts=[{"title": "t", "text": "body"}],  # type: ignore[list-item]
        knowledge_base_urls=["https://example.com"],
        enable_auto_refresh=True,
        max_chunk_size=800,
        knowledge_base_files=[b"raw", ("notes.csv", b"a,b"), path],
    )
    form = await encode_form(params, ("knowledge_base_files",))
    assert form.content_type.startswith("multipart/form-data; boundary=")
    got = parts(form.body, form.content_type)
    texts = {field(p): p.get_content() for p in got if p.get_filename() is None}
    assert texts == {
        "knowledge_base_name": "Docs",
        "knowledge_base_texts": '[{"title":"t","text":"body"}]',
        "knowledge_base_urls": '["https://example.com"]',
        "enable_auto_refresh": "true",
        "max_chunk_size": "800",
    }
    files = [
        (field(p), p.get_filename(), p.get_payload(decode=True), p.get_content_type())
        for p in got
        if p.get_filename() is not None
    ]
    assert files == [
        ("knowledge_base_files", "knowledge_base_files", b"raw", "application/octet-stream"),
        ("knowledge_base_files", "notes.csv", b"a,b", "text/csv"),
        ("knowledge_base_files", "faq.txt", b"Q: hours? A: 9-5", "text/plain"),
    ]


async def test_upload_through_the_client(
    mocked: aioresponses, client: AsyncRetell, tmp_path: Path
) -> None:
    mocked.post(BASE + "/create-knowledge-base", status=201, payload=KB)
    audio = tmp_path / "voice.wav"
    audio.write_bytes(b"RIFF....WAVE")
    mocked.post(
        BASE + "/clone-voice",
        status=201,
        payload={
            "voice_id": "v_1",
            "voice_name": "Me",
            "provider": "elevenlabs",
            "gender": "female",
        },
    )
    with audio.open("rb") as handle:
        voice = await client.voice.clone(
            files=[handle], voice_name="Me", voice_provider="elevenlabs"
        )
    assert voice.voice_id == "v_1"
    kb = await client.knowledge_base.create(
        knowledge_base_name="Docs", knowledge_base_files=[("a.pdf", b"%PDF-1.7", "application/pdf")]
    )
    assert kb.knowledge_base_id == "kb_1"
    (clone_call,) = mocked.requests[("POST", URL(BASE + "/clone-voice"))]
    headers = clone_call.kwargs["headers"]
    got = parts(clone_call.kwargs["data"], headers["Content-Type"])
    assert [(field(p), p.get_filename()) for p in got] == [
        ("voice_name", None),
        ("voice_provider", None),
        ("files", "voice.wav"),
    ]
    assert got[2].get_payload(decode=True) == b"RIFF....WAVE"
    assert headers["Authorization"] == f"Bearer {KEY}"
    (kb_call,) = mocked.requests[("POST", URL(BASE + "/create-knowledge-base"))]
    kb_parts = parts(kb_call.kwargs["data"], kb_call.kwargs["headers"]["Content-Type"])
    assert kb_parts[-1].get_content_type() == "application/pdf"


@pytest.mark.parametrize(
    ("files", "error", "match"),
    [
        (["not/a/real/file.wav"], ValueError, r"files\[0\]: cannot read"),
        ([3.5], TypeError, r"files\[0\] must be bytes, a path"),
        ([("name-only",)], TypeError, r"files\[0\] must be a \(filename, bytes\)"),
        ([("a.wav", "text, not bytes")], TypeError, r"files\[0\] must be a \(filename, bytes\)"),
    ],
)
async def test_bad_files_fail_before_anything_is_sent(
    mocked: aioresponses, client: AsyncRetell, files: list[Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await client.voice.clone(files=files, voice_name="Me", voice_provider="elevenlabs")
    assert not mocked.requests


async def test_a_text_mode_file_is_refused(
    mocked: aioresponses, client: AsyncRetell, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("name,phone\n")
    with path.open() as handle, pytest.raises(TypeError, match="binary mode"):
        await client.contact.upload_import_file(file=handle)  # type: ignore[arg-type]
    assert not mocked.requests


async def test_missing_required_form_field_is_a_type_error(
    mocked: aioresponses, client: AsyncRetell
) -> None:
    with pytest.raises(TypeError, match="voice_provider"):
        await client.voice.clone(files=[b"x"], voice_name="Me")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="voice_name"):
        await client.voice.clone(files=[b"x"], voice_name="", voice_provider="elevenlabs")
    assert not mocked.requests
    assert json.dumps(KB)  # the fixture itself stays JSON
