"""Agent tests: test case definitions, batch test runs and their per-case results.

A batch test runs instantly and every case passes: the emulator has no model to judge with.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from ..crud import Collection, list_reply, register
from ..registry import Reply, Request, handles
from ..state import JSON

DEFINITIONS = register(
    Collection(
        "test_case_definitions",
        "test_case_definition_",
        "Test case definition",
        create="createTestCaseDefinition",
        get="getTestCaseDefinition",
        update="updateTestCaseDefinition",
        delete="deleteTestCaseDefinition",
        defaults={
            "type": "simulation",
            "dynamic_variables": {},
            "tool_mocks": [],
            "llm_model": "gpt-4.1-mini",
        },
    )
)
BATCHES = register(Collection("test_batches", "test_batch_", "Batch test", get="getBatchTest"))
RUNS = register(Collection("test_runs", "test_run_", "Test run", get="getTestRun"))


def _engine_matches(items: Iterable[JSON], query: dict[str, str]) -> list[JSON]:
    """Items whose response engine fits the list query (type, llm_id, flow id, version)."""
    out = []
    for item in items:
        engine = item["response_engine"]
        wanted: dict[str, object] = {
            k: query[k] for k in ("llm_id", "conversation_flow_id") if k in query
        }
        if "version" in query:
            wanted["version"] = int(query["version"])  # the query check made sure it is one
        if engine["type"] == query["type"] and all(engine.get(k) == v for k, v in wanted.items()):
            out.append(item)
    return out


@handles("listTestCaseDefinitions")
def list_definitions(req: Request) -> Reply:
    items = _engine_matches(DEFINITIONS.records(req.state).values(), dict(req.query))
    return list_reply(req, "listTestCaseDefinitions", items, "test_case_definition_id")


@handles("createBatchTest")
def create_batch_test(req: Request) -> Reply:
    state = req.state
    stored = DEFINITIONS.records(state)  # every id is checked by .references
    cases = [stored[i] for i in req.body["test_case_definition_ids"]]
    batch = BATCHES.add(
        state,
        {
            "status": "complete",
            "response_engine": req.body["response_engine"],
            "pass_count": len(cases),
            "fail_count": 0,
            "error_count": 0,
            "total_count": len(cases),
        },
    )
    for case in cases:
        RUNS.add(
            state,
            {
                "test_case_batch_job_id": batch["test_case_batch_job_id"],
                "status": "pass",
                "test_case_definition_id": case["test_case_definition_id"],
                "test_case_definition_snapshot": copy.deepcopy(case),
                "result_explanation": "Every metric was met (emulated run).",
            },
        )
    return Reply(201, batch)


@handles("listBatchTests")
def list_batch_tests(req: Request) -> Reply:
    items = _engine_matches(BATCHES.records(req.state).values(), dict(req.query))
    return list_reply(req, "listBatchTests", items, "test_case_batch_job_id")


@handles("listTestRuns")
def list_test_runs(req: Request) -> Reply:
    batch_id = BATCHES.at(req)["test_case_batch_job_id"]
    runs = [r for r in RUNS.records(req.state).values() if r["test_case_batch_job_id"] == batch_id]
    return list_reply(req, "listTestRuns", runs, "test_case_job_id")
