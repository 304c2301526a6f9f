"""Contacts: CRUD, lookup by phone, their calls, CSV imports and analysis backfills.

Imports and backfills are jobs that finish as soon as they start (see ``run_job``).
"""

from __future__ import annotations

import csv
import io

from aioretell._validation import is_e164

from ..catalog import ORG_ID
from ..crud import Collection, list_reply, register
from ..registry import ApiError, Reply, Request, handles
from ..render import render_call
from ..state import JSON, EmulatorState
from ._shared import run_job
from .crm import crm_config

CONTACTS = register(
    Collection(
        "contacts",
        "contact_",
        "Contact",
        get="getContact",
        delete="deleteContact",
        defaults={"org_id": ORG_ID, "do_not_call": False, "custom_fields": {}},
    )
)
#: Uploaded CSV files, kept for the import that names them.
UPLOADS = Collection("contact_uploads", "upload_", "Upload")
#: Contact fields a CSV column may map to; other mapped names become custom fields.
_CONTACT_FIELDS = ("phone_number", "first_name", "last_name", "contact_memory")


def _with_tags(state: EmulatorState, body: JSON) -> JSON:
    """``body`` plus ``contact_tags`` resolved from ``contact_tag_ids`` (CRM config tags)."""
    if "contact_tag_ids" not in body:
        return body
    labels = {tag["id"]: tag["label"] for tag in crm_config(state).get("contact_tags") or []}
    unknown = [t for t in body["contact_tag_ids"] if t not in labels]
    if unknown:
        raise ApiError(400, f"Unknown contact tag ids: {', '.join(unknown)}")
    return {
        **body,
        "contact_tags": [{"id": t, "label": labels[t]} for t in body["contact_tag_ids"]],
    }


def _by_phone(state: EmulatorState, phone_number: str) -> JSON | None:
    for contact in CONTACTS.records(state).values():
        if contact["phone_number"] == phone_number:
            return contact
    return None


def add_contact(state: EmulatorState, body: JSON) -> JSON:
    phone = body["phone_number"]
    if not is_e164(phone):
        raise ApiError(400, f"phone_number must be in E.164 form: {phone!r}")
    if _by_phone(state, phone) is not None:
        raise ApiError(400, f"A contact with phone number {phone} already exists")
    return CONTACTS.add(state, _with_tags(state, body))


@handles("createContact")
def create_contact(req: Request) -> Reply:
    return Reply(201, add_contact(req.state, req.body))


@handles("updateContact")
def update_contact(req: Request) -> Reply:
    contact = CONTACTS.at(req)
    return Reply(200, CONTACTS.change(req.state, contact, _with_tags(req.state, req.body)))


@handles("listContacts")
def list_contacts(req: Request) -> Reply:
    """Filters: ``search_query`` (names and number), ``excluded_contact_ids``, criteria."""
    needle = (req.body.get("search_query") or "").lower()
    excluded = set(req.body.get("excluded_contact_ids") or ())
    items = [
        c
        for c in CONTACTS.records(req.state).values()
        if c["contact_id"] not in excluded and needle in _searchable(c)
    ]
    return list_reply(req, "listContacts", items, "contact_id")


def _searchable(contact: JSON) -> str:
    parts = (contact.get("first_name"), contact.get("last_name"), contact["phone_number"])
    return " ".join(p for p in parts if p).lower()


@handles("getContactByPhone")
def get_by_phone(req: Request) -> Reply:
    phone = req.path["phone_number"]
    contact = _by_phone(req.state, phone)
    if contact is None:
        raise ApiError(404, f"Contact not found: {phone}")
    return Reply(200, contact)


@handles("listContactConversations")
def list_conversations(req: Request) -> Reply:
    """The calls placed to or received from the contact's number."""
    phone = CONTACTS.at(req)["phone_number"]
    state = req.state
    items = [
        _conversation(render_call(call, state, transcript=False))
        for call in state.calls.values()
        if phone in (call.to_number, call.from_number)
    ]
    return list_reply(req, "listContactConversations", items, "call_id")


def _conversation(call: JSON) -> JSON:
    analysis = call.get("call_analysis") or {}
    return {
        "type": "call",
        "call_id": call["call_id"],
        "start_timestamp": call.get("start_timestamp"),
        "duration_ms": call.get("duration_ms"),
        "direction": call.get("direction"),
        "disconnection_reason": call.get("disconnection_reason"),
        "summary": analysis.get("call_summary"),
        "sentiment": analysis.get("user_sentiment"),
        "successful": analysis.get("call_successful"),
    }


# -- imports and backfills ----------------------------------------------------------------


@handles("uploadContactImportFile")
def upload_import_file(req: Request) -> Reply:
    file = req.body["file"]
    upload_id = req.state.new_id(UPLOADS.prefix)
    UPLOADS.records(req.state)[upload_id] = {
        "upload_id": upload_id,
        "file_name": file["filename"],
        "data": file["data"],
    }
    return Reply(201, {"upload_id": upload_id, "file_name": file["filename"]})


@handles("createContactImport")
def create_import(req: Request) -> Reply:
    """Create a contact per CSV row (mapped by ``column_mapping``) with a new E.164 number."""
    state = req.state
    upload = UPLOADS.records(state)[req.body["upload_id"]]  # checked by .references
    try:
        rows = list(csv.DictReader(io.StringIO(upload["data"].decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ApiError(400, f"The uploaded file is not a UTF-8 CSV: {exc}") from None
    mapping = {m["external_field_name"]: m["field_name"] for m in req.body["column_mapping"]}
    succeeded = failed = 0
    for row in rows:
        fields = {mapping[k]: v for k, v in row.items() if k in mapping and v}
        body: JSON = {k: v for k, v in fields.items() if k in _CONTACT_FIELDS}
        custom = {k: v for k, v in fields.items() if k not in _CONTACT_FIELDS}
        if custom:
            body["custom_fields"] = custom
        if "phone_number" not in body:
            failed += 1
            continue
        try:
            add_contact(state, body)
        except ApiError:  # a bad or duplicate number fails this row, not the import
            failed += 1
        else:
            succeeded += 1
    return Reply(202, run_job(state, "contact_import", succeeded, failed))


@handles("getContactImport")
def get_import(req: Request) -> Reply:
    return Reply(200, req.state.jobs.get("contact_import", {"status": "idle"}))


@handles("backfillContactAnalysisData")
def backfill(req: Request) -> Reply:
    """Counts one success per contact; the analysis data itself is not synthesised."""
    count = len(CONTACTS.records(req.state))
    return Reply(201, run_job(req.state, "contact_backfill", count, 0))


@handles("getBackfillContactJobStatus")
def get_backfill_status(req: Request) -> Reply:
    return Reply(200, req.state.jobs.get("contact_backfill", {"status": "idle"}))
