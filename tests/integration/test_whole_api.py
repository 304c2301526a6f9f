"""The generated surface on the emulator over real sockets: paging, uploads, escape hatch."""

from __future__ import annotations

from pathlib import Path

import msgspec

from aioretell import AsyncRetell
from aioretell.emulator import Emulator
from aioretell.types import CallListResponse


def _seed_calls(emu: Emulator, count: int) -> list[str]:
    state = emu.state
    ids = [
        state.create_call(
            "phone_call",
            "agent_emulator_default",
            from_number="+14155550100",
            to_number=f"+1415555{i:04d}",
            direction="outbound",
        ).call_id
        for i in range(count)
    ]
    return ids


async def test_list_all_over_5000_calls_makes_exactly_5_requests(
    emu: Emulator, client: AsyncRetell
) -> None:
    created = _seed_calls(emu, 5000)
    before = len(emu.requests)
    seen = [call.call_id async for call in client.call.list_all(sort_order="ascending")]
    asked = emu.requests[before:]
    assert len(asked) == 5
    assert {op for op, _, _ in asked} == {"listCalls"}
    assert len(seen) == 5000
    assert seen == created  # every call once, in creation order


async def test_list_all_stops_asking_when_the_consumer_stops(
    emu: Emulator, client: AsyncRetell
) -> None:
    _seed_calls(emu, 2500)
    before = len(emu.requests)
    taken = 0
    async for _ in client.call.list_all():
        taken += 1
        if taken == 1000:  # the whole first page, and not one item more
            break
    assert len(emu.requests) - before == 1


async def test_query_paged_lists_follow_the_cursor(emu: Emulator, client: AsyncRetell) -> None:
    for i in range(7):
        await client.llm.create(general_prompt=f"prompt {i}")
    total = len((await client.llm.list(limit=1000)).items)  # ours and the emulator's default
    assert total >= 7
    before = len(emu.requests)
    pages = [
        [llm.llm_id for llm in page.items]
        async for page in client.llm.list_all(limit=3, sort_order="ascending").pages()
    ]
    full, rest = divmod(total, 3)
    assert [len(p) for p in pages] == [3] * full + ([rest] if rest else [])
    assert len(emu.requests) - before == len(pages)
    everything = [llm.llm_id async for llm in client.llm.list_all(limit=3)]
    assert sorted(everything) == sorted(i for p in pages for i in p)
    assert len(set(everything)) == total


async def test_upload_a_file_from_disk(emu: Emulator, client: AsyncRetell, tmp_path: Path) -> None:
    doc = tmp_path / "faq.txt"
    doc.write_bytes(b"Opening hours: 9 to 5.")
    kb = await client.knowledge_base.create(
        knowledge_base_name="Support",
        knowledge_base_texts=[{"title": "Refunds", "text": "Within 30 days."}],
        knowledge_base_files=[doc, ("notes.csv", b"a,b\n1,2\n")],
    )
    sources = kb.knowledge_base_sources or []
    assert {s.filename for s in sources if s.type == "document"} == {"faq.txt", "notes.csv"}
    got = await client.knowledge_base.retrieve(kb.knowledge_base_id)
    assert got.knowledge_base_name == "Support"


async def test_escape_hatch_reaches_the_emulator(emu: Emulator, client: AsyncRetell) -> None:
    _seed_calls(emu, 3)
    page = await client.request(
        "POST", "/v3/list-calls", json={"limit": 2}, cast_to=CallListResponse
    )
    assert len(page.items) == 2 and page.has_more
    raw = await client.request("GET", "/get-concurrency")
    assert isinstance(raw, dict) and "concurrency_limit" in raw
    assert msgspec.json.encode(raw)
