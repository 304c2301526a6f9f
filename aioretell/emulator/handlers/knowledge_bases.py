"""Knowledge bases and their sources (texts, URLs, uploaded documents).

Sources are indexed instantly: a knowledge base is ``complete`` as soon as it is created.
Uploaded documents are recorded by name and size; their content is not kept.
"""

from __future__ import annotations

from ..crud import Collection, register, touch
from ..registry import ApiError, Reply, Request, handles
from ..state import JSON, EmulatorState

KNOWLEDGE_BASES = register(
    Collection(
        "knowledge_bases",
        "knowledge_base_",
        "Knowledge base",
        get="getKnowledgeBase",
        delete="deleteKnowledgeBase",
        list="listKnowledgeBases",
        defaults={"status": "complete", "enable_auto_refresh": False},
    )
)
_SOURCE_FIELDS = ("knowledge_base_texts", "knowledge_base_urls", "knowledge_base_files")
_FILES_URL = "https://emulator.invalid/knowledge-base-files"


def _sources(state: EmulatorState, body: JSON) -> list[JSON]:
    """One source record per text, URL and file of a create or add-sources body."""
    sources: list[JSON] = []
    for text in body.get("knowledge_base_texts") or []:
        source_id = state.new_id("source_")
        url = f"{_FILES_URL}/{source_id}.txt"
        source = {"type": "text", "source_id": source_id, "title": text["title"]}
        sources.append({**source, "content_url": url})
    for url in body.get("knowledge_base_urls") or []:
        sources.append({"type": "url", "source_id": state.new_id("source_"), "url": url})
    for file in body.get("knowledge_base_files") or []:
        source_id = state.new_id("source_")
        url = f"{_FILES_URL}/{source_id}/{file['filename']}"
        source = {"type": "document", "source_id": source_id, "file_url": url}
        sources.append({**source, "filename": file["filename"], "file_size": file["size"]})
    return sources


@handles("createKnowledgeBase")
def create_knowledge_base(req: Request) -> Reply:
    body = req.body
    low, high = body.get("min_chunk_size"), body.get("max_chunk_size")
    if low is not None and high is not None and low > high:
        raise ApiError(400, "min_chunk_size must not exceed max_chunk_size")
    settings = {k: v for k, v in body.items() if k not in _SOURCE_FIELDS}
    state = req.state
    settings["knowledge_base_sources"] = _sources(state, body)
    settings["last_refreshed_timestamp"] = state.now_ms()
    return Reply(201, KNOWLEDGE_BASES.add(state, settings))


@handles("addKnowledgeBaseSources")
def add_sources(req: Request) -> Reply:
    record = KNOWLEDGE_BASES.at(req)
    added = _sources(req.state, req.body)
    if not added:
        raise ApiError(400, "Give at least one text, URL or file to add")
    record["knowledge_base_sources"] += added
    record["last_refreshed_timestamp"] = req.state.now_ms()
    return Reply(201, touch(req.state, record))


@handles("deleteKnowledgeBaseSource")
def delete_source(req: Request) -> Reply:
    record = KNOWLEDGE_BASES.at(req)
    source_id = req.path["source_id"]
    kept = [s for s in record["knowledge_base_sources"] if s["source_id"] != source_id]
    if len(kept) == len(record["knowledge_base_sources"]):
        raise ApiError(404, f"Knowledge base source not found: {source_id}")
    record["knowledge_base_sources"] = kept
    return Reply(200, touch(req.state, record))
