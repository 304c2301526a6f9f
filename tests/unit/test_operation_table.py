"""Retry safety is classified on purpose: this list changes only by a deliberate edit."""

from __future__ import annotations

from aioretell._operation import RetrySafety
from aioretell._operation_table import METHODS, OPERATIONS

NOT_SAFE_TO_REPEAT = {
    "addCommunityVoice",
    "addKnowledgeBaseSources",
    "agentPlaygroundCompletion",
    "backfillContactAnalysisData",
    "cloneVoice",
    "createAgent",
    "createAgentVersion",
    "createApp",
    "createAsset",
    "createBatchCall",
    "createBatchTest",
    "createChat",
    "createChatAgent",
    "createChatCompletion",
    "createContact",
    "createContactImport",
    "createConversationFlow",
    "createConversationFlowComponent",
    "createKnowledgeBase",
    "createPhoneCall",
    "createPhoneNumber",
    "createRetellLLM",
    "createSmsChat",
    "createTestCaseDefinition",
    "createWebCall",
    "importPhoneNumber",
    "listenLiveCall",
    "publishAgentVersion",
    "registerPhoneCall",
    "runSyncJob",
    "takeOverLiveCall",
    "testAppAuth",
    "updateLiveCall",
    "uploadContactImportFile",
}


def test_unsafe_operations_by_name() -> None:
    unsafe = {k for k, op in OPERATIONS.items() if op.retry is RetrySafety.SIDE_EFFECT}
    assert unsafe == NOT_SAFE_TO_REPEAT


def test_post_reads_are_safe() -> None:
    for op_id in ("listCalls", "listChats", "listAgents", "searchCommunityVoice", "getCall"):
        assert OPERATIONS[op_id].is_safe, op_id


def test_table_covers_the_api() -> None:
    assert len(OPERATIONS) == 109
    assert len(METHODS) == 113
    assert METHODS[("call", "create_phone_call")] == "createPhoneCall"
    assert OPERATIONS["createWebCall"].path == "/v3/create-web-call"
