"""Account-level odds and ends: the API key's identity, export requests, uploaded assets."""

from __future__ import annotations

from ..catalog import ORG_ID, ORG_NAME
from ..crud import Collection, list_reply
from ..registry import Reply, Request, handles

#: Export requests are made in Retell's dashboard, not through the API, so the store starts
#: empty; tests may fill it through ``state.store("export_requests")``.
EXPORT_REQUESTS = Collection("export_requests", "export_", "Export request")
ASSETS = Collection("assets", "asset_", "Asset")
_ASSET_URL = "https://emulator.invalid/assets"


@handles("getApiKeyInfo")
def get_api_key_info(req: Request) -> Reply:
    # Metadata only: the key itself (or any part of it) is never echoed.
    return Reply(200, {"org_id": ORG_ID, "org_name": ORG_NAME, "api_key_name": "Emulator key"})


@handles("listExportRequests")
def list_export_requests(req: Request) -> Reply:
    items = EXPORT_REQUESTS.records(req.state).values()
    return list_reply(req, "listExportRequests", items, "export_request_id")


@handles("createAsset")
def create_asset(req: Request) -> Reply:
    file = req.body["file"]
    asset_id = req.state.new_id(ASSETS.prefix)
    record = {
        "asset_id": asset_id,
        "file_name": file["filename"],
        "content_type": file["content_type"],
        "file_size": file["size"],
        "url": f"{_ASSET_URL}/{asset_id}/{file['filename']}",
        "created_timestamp": req.state.now_ms(),
    }
    ASSETS.records(req.state)[asset_id] = record
    return Reply(201, record)
