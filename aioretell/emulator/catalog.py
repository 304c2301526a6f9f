"""Fixed content of the emulated account: voices, the community voice library, CRM fields.

Invented for the emulator (names and ids are made up); enough variety for filters and searches.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]  # as in .state, which imports this module

ORG_ID = "org_emulator"
ORG_NAME = "Emulated organisation"

#: Voices every account has; ``list-voices`` starts with these.
BUILTIN_VOICES: tuple[JSON, ...] = (
    {"voice_id": "11labs-Adrian", "voice_name": "Adrian", "provider": "elevenlabs",
     "gender": "male", "accent": "American", "age": "Young"},
    {"voice_id": "11labs-Maya", "voice_name": "Maya", "provider": "elevenlabs",
     "gender": "female", "accent": "British", "age": "Middle Aged"},
    {"voice_id": "openai-Nova", "voice_name": "Nova", "provider": "openai",
     "gender": "female", "accent": "American", "age": "Young"},
    {"voice_id": "cartesia-Theo", "voice_name": "Theo", "provider": "cartesia",
     "gender": "male", "accent": "Australian", "age": "Middle Aged"},
)  # fmt: skip

#: The community library that ``search-community-voice`` searches and voices are added from.
COMMUNITY_VOICES: tuple[JSON, ...] = (
    {"provider_voice_id": "cv_warm_narrator", "name": "Warm Narrator",
     "description": "Calm, low male voice for long explanations", "gender": "male"},
    {"provider_voice_id": "cv_bright_support", "name": "Bright Support",
     "description": "Friendly female voice for customer support", "gender": "female"},
    {"provider_voice_id": "cv_crisp_news", "name": "Crisp News",
     "description": "Clear, fast female voice for announcements", "gender": "female"},
)  # fmt: skip

#: Contact fields every CRM schema reports, before the account's custom fields.
STANDARD_CRM_FIELDS: tuple[JSON, ...] = (
    {"name": "first_name", "label": "First name", "type": "string"},
    {"name": "last_name", "label": "Last name", "type": "string"},
    {"name": "phone_number", "label": "Phone number", "type": "string"},
    {"name": "do_not_call", "label": "Do not call", "type": "boolean"},
)

DEFAULT_MEMORY_PROMPT = (
    "Keep short notes about the contact that will help the next conversation, "
    "and drop notes that are no longer true."
)

#: What an MCP server answers when an agent asks for its tools.
MCP_TOOLS: tuple[JSON, ...] = (
    {
        "name": "lookup_order",
        "description": "Find an order by its number",
        "inputSchema": {
            "type": "object",
            "properties": {"order_number": {"type": "string"}},
            "required": ["order_number"],
        },
    },
)
