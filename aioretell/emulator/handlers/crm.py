"""The account's CRM settings: config, field schema and the sync job."""

from __future__ import annotations

from ..catalog import DEFAULT_MEMORY_PROMPT, ORG_ID, STANDARD_CRM_FIELDS
from ..registry import ApiError, Reply, Request, handles
from ..state import JSON, EmulatorState
from ._shared import run_job
from .apps import APPS


def crm_config(state: EmulatorState) -> JSON:
    """The account's single CRM config record, created with defaults on first use."""
    return state.store("crm").setdefault(
        "config",
        {
            "org_id": ORG_ID,
            "default_contact_memory_update_prompt": DEFAULT_MEMORY_PROMPT,
            "custom_fields": [],
            "crm_analysis_data_mappings": [],
            "contact_tags": [],
            "contact_columns_order": [],
        },
    )


@handles("getCrmConfig")
def get_config(req: Request) -> Reply:
    return Reply(200, crm_config(req.state))


@handles("updateCrmConfig")
def update_config(req: Request) -> Reply:
    config = crm_config(req.state)  # app_id names a stored app (checked by .references)
    config.update(req.body)
    return Reply(200, config)


@handles("getCrmSchema")
def get_schema(req: Request) -> Reply:
    """The standard contact fields plus the configured custom ones, for the given app."""
    config = crm_config(req.state)
    app_id = req.query.get("app_id") or config.get("app_id")
    provider = "retell" if app_id is None else APPS.find(req.state, app_id)["provider"]
    fields = [*STANDARD_CRM_FIELDS, *(config.get("custom_fields") or [])]
    return Reply(200, {"provider": provider, "fields": fields})


@handles("runSyncJob")
def run_sync_job(req: Request) -> Reply:
    """Sync every contact with the configured app (nothing leaves the emulator)."""
    config = crm_config(req.state)
    if config.get("app_id") is None:
        raise ApiError(400, "No CRM app is configured; set app_id with update-crm-config")
    config["last_sync_timestamp"] = req.state.now_ms()
    return Reply(201, run_job(req.state, "crm_sync", len(req.state.store("contacts")), 0))


@handles("getSyncJobStatus")
def get_sync_job_status(req: Request) -> Reply:
    return Reply(200, req.state.jobs.get("crm_sync", {"status": "idle"}))
