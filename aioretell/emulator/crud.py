"""Table-driven in-memory CRUD: one :class:`Collection` per resource.

A collection names its store, id prefix and operations; :func:`register` installs create, get,
update, delete and list handlers for the operations it names. The id field is the path
parameter of its get/update/delete operations, so ``Collection("apps", "app_", "App",
get="getApp", ...)`` keys records by ``app_id``. Handlers for anything beyond plain CRUD use the
same helpers (:meth:`Collection.add`, :meth:`Collection.at`, :func:`list_reply`). Responses are
conformed to each operation's response type by the app, so records may hold extra fields.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Reversible
from dataclasses import dataclass, field
from typing import Any

from msgspec import inspect as mi

from aioretell._operation_table import OPERATIONS

from .conform import type_info
from .listing import list_response, query_response
from .registry import ApiError, Reply, Request, found, handles
from .state import JSON, EmulatorState

_CREATED = ("created_timestamp", "creation_timestamp")
_MODIFIED = ("user_modified_timestamp", "last_modification_timestamp")


def touch(state: EmulatorState, record: JSON, *, created: bool = False) -> JSON:
    """Set the record's modification times (and creation times when ``created``) to now.

    Resources name these differently; all names are set and the response keeps its own.
    """
    now = state.now_ms()
    for name in _MODIFIED + _CREATED if created else _MODIFIED:
        record[name] = now
    return record


@dataclass(frozen=True, slots=True)
class Collection:
    store: str
    prefix: str
    #: For messages: "App not found: app_...".
    what: str
    create: str | None = None
    get: str | None = None
    update: str | None = None
    delete: str | None = None
    list: str | None = None
    #: Fields a new record starts with; the create body overrides them.
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id_field(self) -> str:
        for operation_id in (self.get, self.update, self.delete):
            if operation_id is not None:
                return OPERATIONS[operation_id].path_params[-1]
        raise ValueError(f"collection {self.store} has no operation addressing one record")

    def records(self, state: EmulatorState) -> dict[str, JSON]:
        return state.store(self.store)

    def find(self, state: EmulatorState, record_id: str) -> JSON:
        return found(self.records(state), record_id, self.what)

    def at(self, req: Request) -> JSON:
        """The record the request's path names, or 404."""
        return self.find(req.state, req.path[self.id_field])

    def add(self, state: EmulatorState, body: JSON, record_id: str | None = None) -> JSON:
        """Store a new record made of the defaults, ``body`` and a new (or given) id."""
        records = self.records(state)
        if record_id is None:
            record_id = state.new_id(self.prefix)
        elif record_id in records:
            raise ApiError(400, f"{self.what} already exists: {record_id}")
        record = {**copy.deepcopy(dict(self.defaults)), **body, self.id_field: record_id}
        records[record_id] = touch(state, record, created=True)
        return record

    def change(self, state: EmulatorState, record: JSON, body: JSON) -> JSON:
        record.update(body)
        return touch(state, record)

    def remove(self, state: EmulatorState, record: JSON) -> None:
        del self.records(state)[record[self.id_field]]


def list_reply(req: Request, operation_id: str, items: Reversible[JSON], id_field: str) -> Reply:
    """A list operation's answer: a page for paged lists (POST body or query), else an array."""
    op = OPERATIONS[operation_id]
    if op.http_method == "POST":
        return Reply(200, list_response(req.body, items, id_field))
    if isinstance(type_info(op.response_type), mi.ListType):
        return Reply(200, list(items))
    return Reply(200, query_response(req.query, items, id_field))


def register(c: Collection) -> Collection:
    """Install the plain CRUD handlers for the operations ``c`` names; returns ``c``."""
    if c.create is not None:

        @handles(c.create)
        def create(req: Request) -> Reply:
            return Reply(201, c.add(req.state, req.body))

    if c.get is not None:

        @handles(c.get)
        def get(req: Request) -> Reply:
            return Reply(200, c.at(req))

    if c.update is not None:

        @handles(c.update)
        def update(req: Request) -> Reply:
            return Reply(200, c.change(req.state, c.at(req), req.body))

    if c.delete is not None:

        @handles(c.delete)
        def delete(req: Request) -> Reply:
            c.remove(req.state, c.at(req))
            return Reply(204)

    if c.list is not None:
        list_op = c.list

        @handles(list_op)
        def list_all(req: Request) -> Reply:
            return list_reply(req, list_op, c.records(req.state).values(), c.id_field)

    return c
