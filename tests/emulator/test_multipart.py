"""Multipart bodies (knowledge bases, voice clones, assets, contact imports) over raw HTTP.

Wire format: text parts for scalars (lists and objects JSON-encoded), one part per file with a
filename, a repeated field name for a list of files.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from aioretell.emulator import Emulator, Fault


def _form(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        form.add_field(name, value)
    for name, filename, data in files:
        form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return form


async def _post(
    http: aiohttp.ClientSession,
    path: str,
    fields: dict[str, str],
    files: list[tuple[str, str, bytes]],
) -> tuple[int, Any]:
    async with http.post(path, data=_form(fields, files)) as resp:
        return resp.status, await resp.json()


async def test_knowledge_base_from_text_fields_and_files(http: aiohttp.ClientSession) -> None:
    fields = {
        "knowledge_base_name": "Docs",
        "knowledge_base_urls": json.dumps(["https://docs.example.com"]),
        "knowledge_base_texts": json.dumps([{"title": "Hours", "text": "9 to 5"}]),
        "enable_auto_refresh": "true",
        "max_chunk_size": "700",
    }
    files = [
        ("knowledge_base_files", "a.txt", b"abc"),
        ("knowledge_base_files", "b.pdf", b"%PDF-1.7 0123"),
    ]
    status, kb = await _post(http, "/create-knowledge-base", fields, files)
    assert status == 201
    assert kb["knowledge_base_name"] == "Docs"
    assert kb["enable_auto_refresh"] is True
    assert kb["max_chunk_size"] == 700
    assert kb["status"] == "complete"
    sources = kb["knowledge_base_sources"]
    assert [s["type"] for s in sources] == ["text", "url", "document", "document"]
    assert [(s.get("filename"), s.get("file_size")) for s in sources[2:]] == [
        ("a.txt", 3),
        ("b.pdf", 13),
    ]
    status, more = await _post(
        http,
        f"/add-knowledge-base-sources/{kb['knowledge_base_id']}",
        {},
        [("knowledge_base_files", "c.txt", b"hello")],
    )
    assert status == 201
    assert more["knowledge_base_sources"][-1]["filename"] == "c.txt"


@pytest.mark.parametrize(
    ("fields", "files", "named"),
    [
        ({"knowledge_base_name": "x", "max_chunk_size": "big"}, [], "max_chunk_size"),
        ({"knowledge_base_name": "x", "max_chunk_size": "100"}, [], "max_chunk_size"),
        ({"knowledge_base_name": "x", "enable_auto_refresh": "maybe"}, [], "enable_auto_refresh"),
        ({"knowledge_base_name": "x", "knowledge_base_urls": "[1, 2]"}, [], "knowledge_base_urls"),
        ({"max_chunk_size": "700"}, [], "knowledge_base_name"),
        ({"knowledge_base_name": "x", "knowledge_base_files": "abc"}, [], "knowledge_base_files"),
        ({}, [("knowledge_base_name", "name.txt", b"x")], "knowledge_base_name"),
    ],
)
async def test_bad_multipart_fields_are_400_naming_the_field(
    http: aiohttp.ClientSession,
    fields: dict[str, str],
    files: list[tuple[str, str, bytes]],
    named: str,
) -> None:
    status, body = await _post(http, "/create-knowledge-base", fields, files)
    assert status == 400
    assert named in body["message"]


async def test_a_json_body_where_multipart_is_expected_is_400(
    http: aiohttp.ClientSession,
) -> None:
    async with http.post("/create-knowledge-base", json={"knowledge_base_name": "x"}) as resp:
        assert resp.status == 400
        assert "multipart" in (await resp.json())["message"]


async def test_clone_voice_with_repeated_files(emu: Emulator, http: aiohttp.ClientSession) -> None:
    files = [("files", "one.wav", b"RIFF1"), ("files", "two.wav", b"RIFF22")]
    fields = {"voice_name": "Mine", "voice_provider": "elevenlabs"}
    status, voice = await _post(http, "/clone-voice", fields, files)
    assert status == 201
    assert (voice["voice_name"], voice["provider"]) == ("Mine", "elevenlabs")
    record = emu.state.store("voices")[voice["voice_id"]]
    assert record["sample_files"] == [
        {"filename": "one.wav", "size": 5},
        {"filename": "two.wav", "size": 6},
    ]
    status, body = await _post(http, "/clone-voice", fields, [])
    assert status == 400
    assert "files" in body["message"]


async def test_asset_upload(http: aiohttp.ClientSession) -> None:
    status, asset = await _post(http, "/create-asset", {}, [("file", "logo.png", b"PNG!")])
    assert status == 201
    assert (asset["file_name"], asset["file_size"]) == ("logo.png", 4)
    assert asset["url"].endswith("/logo.png")


async def test_contact_import_reports_bad_rows(emu: Emulator, http: aiohttp.ClientSession) -> None:
    csv = b"Phone,Name,Plan\n+14155550150,Ann,gold\nnot-a-number,Bob,\n+14155550151,,silver\n"
    status, upload = await _post(
        http, "/upload-contact-import-file", {}, [("file", "leads.csv", csv)]
    )
    assert status == 201
    assert upload["upload_id"].startswith("upload_")
    mapping = [
        {"field_name": "phone_number", "external_field_name": "Phone"},
        {"field_name": "first_name", "external_field_name": "Name"},
        {"field_name": "plan", "external_field_name": "Plan"},
    ]
    body = {"upload_id": upload["upload_id"], "column_mapping": mapping}
    async with http.post("/create-contact-import", json=body) as resp:
        assert resp.status == 202
        assert (await resp.json())["status"] == "running"
    async with http.get("/get-contact-import") as resp:
        job = await resp.json()
    assert (job["status"], job["succeeded"], job["failed"]) == ("idle", 2, 1)
    contacts = {c["phone_number"]: c for c in emu.state.store("contacts").values()}
    assert contacts["+14155550150"]["first_name"] == "Ann"
    assert contacts["+14155550151"]["custom_fields"] == {"plan": "silver"}
    unknown = {"upload_id": "upload_0badc0de", "column_mapping": mapping}
    async with http.post("/create-contact-import", json=unknown) as resp:
        assert resp.status == 400


async def test_faults_apply_to_multipart_operations(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.script("createKnowledgeBase", [Fault.status(503), Fault.malformed_body()])
    form = {"knowledge_base_name": "Faulty"}
    async with http.post("/create-knowledge-base", data=_form(form, [])) as resp:
        assert resp.status == 503
    assert emu.state.store("knowledge_bases") == {}
    async with http.post("/create-knowledge-base", data=_form(form, [])) as resp:
        assert resp.status == 201
        with pytest.raises(json.JSONDecodeError):
            json.loads(await resp.read())
    # The handler ran before the answer was cut: the knowledge base exists.
    assert [kb["knowledge_base_name"] for kb in emu.state.store("knowledge_bases").values()] == [
        "Faulty"
    ]
