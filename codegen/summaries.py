"""One-line summaries, in our own words, for the docstring of every generated API method.

Keyed by operationId. The generator (codegen) refuses to run if an operation has no entry, so a new
endpoint gets described on purpose.
"""

SUMMARIES: dict[str, str] = {
    "addCommunityVoice": (
        "Copy a voice found in a provider's community library into your own voice list."
    ),
    "addKnowledgeBaseSources": (
        "Upload more files, URLs or text snippets into an existing knowledge base."
    ),
    "agentPlaygroundCompletion": (
        "Get the agent's next messages for a conversation you pass in whole; nothing is stored."
    ),
    "backfillContactAnalysisData": (
        "Start a job that replays past call and SMS analysis onto contacts; one job at a time."
    ),
    "cloneVoice": "Make a new custom voice from uploaded audio samples of a speaker.",
    "createAgent": (
        "Create a voice agent wired to a response engine, with its voice and call settings."
    ),
    "createAgentVersion": (
        "Branch a new draft version of an agent, starting from an existing version."
    ),
    "createApp": "Connect an external system such as a CRM or calendar and store its credentials.",
    "createAsset": (
        "Upload an image or audio file, e.g. on-hold music to play during call transfers."
    ),
    "createBatchCall": (
        "Schedule outbound calls to a list of numbers in one go; every call dialled is billed."
    ),
    "createBatchTest": (
        "Run a set of test case definitions against a response engine as one batch job."
    ),
    "createChat": "Open a new text chat session with a chat agent.",
    "createChatAgent": "Create an agent for text chat, bound to a response engine.",
    "createChatCompletion": (
        "Send a user message into an open chat and get the agent's reply messages back."
    ),
    "createContact": "Add a new contact record to your organization's contact list.",
    "createContactImport": (
        "Import contacts from an uploaded CSV, adding new ones and updating those matched by phone."
    ),
    "createConversationFlow": (
        "Create a conversation flow: a node graph that can drive an agent's replies."
    ),
    "createConversationFlowComponent": (
        "Create a reusable component that many conversation flows can share."
    ),
    "createKnowledgeBase": (
        "Create a knowledge base from files, URLs or text that agents can draw answers from."
    ),
    "createPhoneCall": "Dial an outbound phone call from one of your numbers; the call is billed.",
    "createPhoneNumber": (
        "Buy a new phone number (billed monthly) and optionally attach agents to it."
    ),
    "createRetellLLM": "Create a prompt-based LLM response engine that an agent can use to reply.",
    "createSmsChat": (
        "Text a phone number from a chat agent; the agent writes and sends the first SMS itself."
    ),
    "createTestCaseDefinition": (
        "Define a new test case describing a scripted conversation and its expectations."
    ),
    "createWebCall": (
        "Start a browser-based call and get the access token a web client needs to join."
    ),
    "deleteAgent": "Delete a voice agent, including all of its versions.",
    "deleteAgentVersion": (
        "Remove a single version of an agent, leaving its other versions in place."
    ),
    "deleteApp": "Remove an app connection; refused while still in use unless force_delete is set.",
    "deleteCall": (
        "Permanently erase a call together with its recording, transcript and other data."
    ),
    "deleteChat": "Permanently erase a chat session and its messages.",
    "deleteChatAgent": "Delete a chat agent, including all of its versions.",
    "deleteContact": (
        "Delete a contact; contacts still synced two-way with a CRM cannot be removed."
    ),
    "deleteConversationFlow": (
        "Delete a conversation flow; force_delete goes ahead even if agents still use it."
    ),
    "deleteConversationFlowComponent": (
        "Delete a shared component; flows that used it each keep a private copy."
    ),
    "deleteKnowledgeBase": "Delete a knowledge base and all the sources in it.",
    "deleteKnowledgeBaseSource": (
        "Take a single source out of a knowledge base and return the updated base."
    ),
    "deletePhoneNumber": (
        "Release one of your phone numbers so it no longer belongs to your account."
    ),
    "deleteRetellLLM": "Delete an LLM response engine; force_delete also removes one still in use.",
    "deleteTestCaseDefinition": "Delete a test case definition you no longer need.",
    "endChat": "Close a chat that is still open so no further messages are exchanged.",
    "getAgent": "Fetch a voice agent's configuration, by default its latest version.",
    "getApiKeyInfo": "Identify the API key in use and the organization it belongs to.",
    "getApp": "Fetch one app connection, including its provider and connection status.",
    "getAppToolSchema": (
        "Resolve one more step of an app tool's input schema against a connected app."
    ),
    "getBackfillContactJobStatus": "Check how the contact analysis backfill job is progressing.",
    "getBatchTest": "Fetch a batch test job to see its status and how many test cases passed.",
    "getCall": "Fetch one call with its status, transcript, recording links and analysis.",
    "getChat": "Fetch one chat session with its messages, status and analysis.",
    "getChatAgent": "Fetch a chat agent's configuration, by default its latest version.",
    "getConcurrency": (
        "See how many calls your organization is running now and the most it may run."
    ),
    "getContact": "Fetch a single contact by its ID, with all of its stored fields.",
    "getContactByPhone": (
        "Look up the contact for a phone number (a number maps to at most one contact)."
    ),
    "getContactImport": (
        "Poll the newest contact import in your organization for its state and progress figures."
    ),
    "getConversationFlow": (
        "Fetch a conversation flow with its nodes and settings, latest version by default."
    ),
    "getConversationFlowComponent": "Fetch one shared conversation flow component and its nodes.",
    "getCrmConfig": (
        "Read your CRM setup: the linked app, custom contact fields and write-back rules."
    ),
    "getCrmSchema": "List the contact fields the connected CRM exposes for use in sync mappings.",
    "getKnowledgeBase": "Fetch a knowledge base with its sources and indexing status.",
    "getMCPTools": "List the tools an agent can reach through one of its configured MCP servers.",
    "getPhoneNumber": "Fetch the settings of one of your phone numbers, such as its bound agents.",
    "getRetellLLM": "Fetch an LLM response engine's prompt and tools, latest version by default.",
    "getSyncJobStatus": "Check whether a CRM contact sync is running and how far along it is.",
    "getTestCaseDefinition": "Fetch a single test case definition by its ID.",
    "getTestRun": "Fetch the result of one test case run, including its transcript and verdict.",
    "getVoice": "Fetch the details of one voice, such as its provider, accent and preview audio.",
    "importPhoneNumber": (
        "Bring a number from your own SIP trunk or carrier and optionally attach agents."
    ),
    "listAgentVersions": (
        "Fetch one page of an agent's saved versions; page on with pagination_key."
    ),
    "listAgents": "Fetch one page of agents matching the filter; page on with pagination_key.",
    "listAppUsages": "Fetch one page of the agents and knowledge bases that depend on an app.",
    "listApps": (
        "Fetch one page of your organization's app connections; page on with pagination_key."
    ),
    "listBatchTests": (
        "Fetch one page of batch test jobs, optionally narrowed to one response engine."
    ),
    "listCalls": "Fetch one page of calls matching the filter; page on with pagination_key.",
    "listChats": "Fetch one page of chats matching the filter; page on with pagination_key.",
    "listContactConversations": (
        "Fetch one page of a contact's call and chat history, latest first, matched by phone."
    ),
    "listContacts": (
        "Fetch one page of contacts matching a filter or search, with the total match count."
    ),
    "listConversationFlowComponents": "Fetch one page of shared conversation flow components.",
    "listConversationFlows": "Fetch one page of conversation flows; page on with pagination_key.",
    "listExportRequests": (
        "Fetch one page of data export requests with their status and download links."
    ),
    "listKnowledgeBases": "List every knowledge base in your organization, all in one response.",
    "listPhoneNumbers": "Fetch one page of the phone numbers you own or have imported.",
    "listRetellLLM": "Fetch one page of LLM response engines; page on with pagination_key.",
    "listTestCaseDefinitions": (
        "Fetch one page of test case definitions, optionally for one response engine."
    ),
    "listTestRuns": "Fetch one page of the individual test runs that belong to a batch test job.",
    "listVoices": (
        "List every voice your agents can use, both built-in and your own, in one response."
    ),
    "listenLiveCall": (
        "Get a listen-only token for eavesdropping on the audio of a call in progress."
    ),
    "publishAgentVersion": (
        "Mark an agent's draft version as published, without copying it to a new version."
    ),
    "registerPhoneCall": (
        "Register a call arriving over your own telephony so an agent can answer it."
    ),
    "repairAgent": (
        "Strip dangling references to deleted tools, apps or knowledge bases from a draft."
    ),
    "rerunCallAnalysis": (
        "Run post-call analysis on a finished call again; this is billed each time."
    ),
    "rerunChatAnalysis": (
        "Run post-chat analysis on a finished chat again; this is billed each time."
    ),
    "runSyncJob": (
        "Start a CRM contact sync right away rather than on schedule; fails if one is running."
    ),
    "searchCommunityVoice": "Search a voice provider's community library for voices you could add.",
    "stopCall": "Hang up a call that is still in progress.",
    "takeOverLiveCall": (
        "Silence the AI on a live call and let a listening human speak to the caller."
    ),
    "testAppAuth": "Check that an app's stored credentials still work and record the outcome.",
    "updateAgent": (
        "Change settings on a voice agent's draft version; omitted fields stay as they are."
    ),
    "updateApp": (
        "Patch an app connection's settings or credentials, touching only the fields you pass."
    ),
    "updateCallMetadata": "Change the metadata or data-storage setting of a call after the fact.",
    "updateChatAgent": (
        "Change settings on a chat agent's draft version; omitted fields stay as they are."
    ),
    "updateChatMetadata": "Change the metadata or data-storage setting of a chat after the fact.",
    "updateContact": "Change fields on an existing contact; fields you leave out are kept.",
    "updateConversationFlow": "Edit a conversation flow's nodes or settings on its draft version.",
    "updateConversationFlowComponent": (
        "Edit a shared component; the change reaches every flow that links to it."
    ),
    "updateCrmConfig": (
        "Change your CRM setup; each field you include is overwritten wholesale, others kept."
    ),
    "updateLiveCall": (
        "Adjust a running call: override variables or metadata, add context or prompt a reply."
    ),
    "updatePhoneNumber": "Change which agents answer or place calls for one of your phone numbers.",
    "updateRetellLLM": "Edit an LLM response engine's prompt, model or tools on its draft version.",
    "updateTestCaseDefinition": "Replace the contents of an existing test case definition.",
    "uploadContactImportFile": (
        "Upload a contacts CSV and get back the upload_id to start an import with."
    ),
}
