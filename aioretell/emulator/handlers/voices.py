"""Voices: the account's voices (built-in, added from the community library, cloned)."""

from __future__ import annotations

from ..catalog import COMMUNITY_VOICES
from ..crud import Collection, register
from ..registry import ApiError, Reply, Request, handles

VOICES = register(Collection("voices", "custom_voice_", "Voice", get="getVoice", list="listVoices"))
#: The community library is modelled as one provider's.
_COMMUNITY_PROVIDER = "elevenlabs"


@handles("searchCommunityVoice")
def search(req: Request) -> Reply:
    """Community voices whose name or description contains the query (case-insensitive)."""
    provider = req.body.get("voice_provider", _COMMUNITY_PROVIDER)
    needle = req.body["search_query"].lower()
    found = [
        v
        for v in COMMUNITY_VOICES
        if provider == _COMMUNITY_PROVIDER
        and (needle in v["name"].lower() or needle in v["description"].lower())
    ]
    return Reply(200, {"voices": found})


@handles("addCommunityVoice")
def add_community_voice(req: Request) -> Reply:
    body = req.body
    wanted = body["provider_voice_id"]
    library = {v["provider_voice_id"]: v for v in COMMUNITY_VOICES}
    if wanted not in library:
        raise ApiError(404, f"Community voice not found: {wanted}")
    voice = {
        "voice_name": body["voice_name"],
        "provider": body.get("voice_provider", _COMMUNITY_PROVIDER),
        "gender": library[wanted]["gender"],
        "provider_voice_id": wanted,
    }
    return Reply(200, VOICES.add(req.state, voice))


@handles("cloneVoice")
def clone(req: Request) -> Reply:
    body = req.body
    voice = {
        "voice_name": body["voice_name"],
        "provider": body["voice_provider"],
        # A clone's gender is unknown; the schema requires one.
        "gender": "female",
        "sample_files": [{"filename": f["filename"], "size": f["size"]} for f in body["files"]],
    }
    return Reply(201, VOICES.add(req.state, voice))
