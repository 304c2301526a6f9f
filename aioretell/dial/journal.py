"""The campaign journal: the interface the dialer drives, whatever stores it.

One row per lead, moved through a checked state machine::

    pending ──claim──> dispatching ──> created(call_id) ──> ended(outcome)
       ^                 │   │  │             │
       └──── release ────┘   │  └──> failed   └── requeue / redial (attempt + 1) ──> pending
                             └── mark_placed (a 2xx that could not be read: stays dispatching)

``claim`` is committed durably before the create is sent and ``mark_created`` right after it
returns, so after any crash a ``dispatching`` row is the only kind whose outcome is unknown;
the dialer looks it up by its metadata before sending it again, and then only with the same
idempotency key. ``rejected`` rows (bad CSV lines) are terminal from the start.

Three counters per row, each with its own limit: ``retries`` (creates sent again after a
failure that placed nothing), ``requeues`` (calls that ended without getting a line) and
``redials`` (busy or no answer, with ``--redial``). ``attempt`` is ``1 + requeues + redials``:
it names the call in the metadata and the idempotency key, and changes only when a new call is
wanted.

A journal is held by one dialer at a time: :meth:`Journal.acquire_lease` records the process,
the host and a heartbeat, refuses a second dialer, and takes over the lease of one that died.
Every write checks the lease is still ours (a fence), so a dialer that lost it stops.

:class:`Journal` is abstract; :mod:`.journal_sqlite` is the file-backed implementation.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import msgspec

from .leads import LeadFile

PENDING = "pending"
DISPATCHING = "dispatching"
CREATED = "created"
ENDED = "ended"
FAILED = "failed"
REJECTED = "rejected"
TERMINAL = frozenset({ENDED, FAILED, REJECTED})

#: Which state may follow which. Anything else is a bug and raises :class:`TransitionError`.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    PENDING: frozenset({DISPATCHING}),
    DISPATCHING: frozenset({CREATED, PENDING, FAILED}),
    CREATED: frozenset({ENDED, PENDING}),
    ENDED: frozenset(),
    FAILED: frozenset(),
    REJECTED: frozenset(),
}


class JournalError(Exception):
    """The journal cannot be used for this run; the message says why."""


class JournalUnavailableError(JournalError):
    """The journal's database cannot be reached (or failed mid-run): nothing is wrong with the
    campaign; run again once it answers."""


class LeaseHeldError(JournalError):
    """Another dialer holds the journal's lease and is alive."""


class LeaseLostError(JournalError):
    """This dialer's lease was taken over: it must stop writing."""


class TransitionError(RuntimeError):
    """A state change the state machine does not allow, or a row not in the expected state."""


class ClaimLostError(TransitionError):
    """The stored row moved on without this dialer: another worker (or the reconciler, after
    this one's claim expired) owns it now. Nothing was written; the row is not ours to touch."""


@dataclass(slots=True)
class Row:
    ref: str
    line: int
    to_number: str | None
    variables: dict[str, str]
    state: str
    attempt: int = 1
    requeues: int = 0
    redials: int = 0
    retries: int = 0
    not_before: float = 0.0
    #: when the latest ``claim`` was committed (wall clock), ``None`` before the first
    dispatched_at: float | None = None
    #: the create answered 2xx but its body could not be read: the call exists
    placed: bool = False
    call_id: str | None = None
    call_status: str | None = None
    disconnection_reason: str | None = None
    reason: str | None = None
    create_ms: float | None = None
    #: the claim token of a shared journal (a fence: results are recorded only while the
    #: stored row still carries it); ``None`` where one dialer holds the whole journal
    claim: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


#: The fields of :class:`Row` every journal stores as columns of the same names.
ROW_FIELDS = (
    "ref",
    "line",
    "to_number",
    "variables",
    "state",
    "attempt",
    "requeues",
    "redials",
    "retries",
    "not_before",
    "dispatched_at",
    "placed",
    "call_id",
    "call_status",
    "disconnection_reason",
    "reason",
    "create_ms",
)


class Record(Protocol):
    """A stored row's columns by name (a mapping, a ``sqlite3.Row``)."""

    def __getitem__(self, name: str, /) -> Any: ...


def stored_row(found: Record, *, claim: str | None = None) -> Row:
    """A :class:`Row` from a stored record of :data:`ROW_FIELDS` (``variables`` as JSON text
    or already decoded, ``placed`` as a boolean or 0/1)."""
    values = {name: found[name] for name in ROW_FIELDS}
    variables = values["variables"]
    if isinstance(variables, str | bytes):
        variables = msgspec.json.decode(variables or "{}")
    values["variables"] = dict(variables or {})
    values["placed"] = bool(values["placed"])
    return Row(**values, claim=claim)


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """What a journal belongs to. A run with another number, agent or server is refused."""

    campaign_id: str
    csv_sha256: str
    csv_name: str
    from_number: str
    agent_id: str
    target: str


@dataclass(frozen=True, slots=True)
class LeadChanges:
    """What :meth:`Journal.add_leads` did with a changed CSV."""

    #: leads new to the campaign, now pending
    added: int = 0
    #: leads of the file the campaign already had (left as they are, finished or not)
    known: int = 0
    #: leads of the campaign the file no longer has (kept; still dialled if pending)
    missing: int = 0
    #: refs given to added leads whose ``L<line>`` was taken by an earlier row
    renamed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Opened:
    """The campaign a run works on: new, resumed, or resumed with leads added."""

    info: CampaignInfo
    new: bool
    changes: LeadChanges | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    """A shared journal's admission said not now: try again in ``seconds`` (``why``: the
    pause after a 429, the calls-per-second pace, the concurrency, or no lead due yet)."""

    seconds: float
    why: str


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One dialer of a campaign, as :meth:`Journal.status` shows it."""

    worker_id: str
    pid: int
    host: str
    started_at: float
    heartbeat_at: float
    #: ``None`` while it runs (or died without signing off)
    stopped_at: float | None
    #: calls this worker recorded created
    placed: int
    leader: bool


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    """A campaign as a whole, whoever dials it: see ``aioretell campaign``."""

    info: CampaignInfo
    where: str
    #: leads by state, and ended leads by ``disconnection_reason`` (failed ones by reason)
    states: dict[str, int]
    outcomes: dict[str, int]
    #: calls recorded created in the last ``window_s`` seconds
    recent_creates: int
    window_s: float
    workers: list[WorkerInfo]
    #: the database clock (or this host's) when read, in epoch seconds
    now: float
    #: the account's shared pause after a 429, until then (epoch seconds), if any
    paused_until: float | None = None
    concurrency_limit: int | None = None

    @property
    def live(self) -> int:
        """Calls being created or live, as the journal counts them."""
        return self.states.get(DISPATCHING, 0) + self.states.get(CREATED, 0)


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    pid: int
    host: str
    started_at: float
    heartbeat_at: float


def campaign_problems(found: CampaignInfo, expected: CampaignInfo) -> list[str]:
    """Why a run cannot resume ``found``: another number, agent or server (the CSV may grow)."""
    problems = []
    for name, label in (
        ("from_number", "--from-number"),
        ("agent_id", "--agent-id"),
        ("target", "server"),
    ):
        old, new = getattr(found, name), getattr(expected, name)
        if old != new:
            problems.append(f"its {label} was {old or '(none)'!r}, now {new or '(none)'!r}")
    return problems


class NewRefs:
    """Refs for rows added to a journal: a lead's ``L<line>`` unless an earlier row has it,
    then ``L<line>_2``, ``_3``... (refs go into idempotency keys: ``[A-Za-z0-9_-]``)."""

    def __init__(self, taken: set[str]) -> None:
        self._taken = set(taken)
        #: the leads' refs given anew, old -> new
        self.renamed: dict[str, str] = {}

    def free(self, ref: str, *, note: bool = True) -> str:
        """``ref``, or the first free one after it (``note``: remember it in :attr:`renamed`)."""
        fresh, n = ref, 1
        while fresh in self._taken:
            n += 1
            fresh = f"{ref}_{n}"
        self._taken.add(fresh)
        if fresh != ref and note:
            self.renamed[ref] = fresh
        return fresh


def lead_changes(
    leads: LeadFile, known: AbstractSet[str | None], renamed: dict[str, str]
) -> LeadChanges:
    """What adding ``leads`` did to a campaign that had the numbers ``known``."""
    in_file = {lead.to_number for lead in leads.leads}
    added = sum(1 for lead in leads.leads if lead.to_number not in known)
    return LeadChanges(
        added=added,
        known=len(leads.leads) - added,
        missing=len(known - in_file),
        renamed=renamed,
    )


def process_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def check_move(row: Row, source: str, to: str) -> None:
    """Refuse a transition method's move unless ``row`` is in the state it moves rows from
    (``source``) and :data:`TRANSITIONS` allows ``source -> to`` (or it stays in place)."""
    if row.state != source or (to != source and to not in TRANSITIONS[source]):
        raise TransitionError(
            f"{row.ref}: {row.state} -> {to} is not allowed (this move is from {source})"
        )


def apply_move(row: Row, to: str, fields: Mapping[str, Any]) -> None:
    """Update ``row`` in place with a move that was stored."""
    row.state = to
    for name, value in fields.items():
        setattr(row, name, value)


class Journal(abc.ABC):
    """One campaign's journal. Every method commits before it returns.

    Transition methods take the caller's :class:`Row`, check the move against
    :data:`TRANSITIONS` and that the stored row is still in ``row.state``, and update ``row``
    in place. Not safe for concurrent use from several tasks of one dialer beyond what the
    event loop serialises; one dialer per journal is enforced by the lease.
    """

    #: where the journal lives, for messages (a path or a redacted URL)
    where: str
    #: several dialers work on it at once (each a worker with its own lease), admitted by the
    #: journal itself; otherwise one dialer holds it whole
    shared: bool = False

    # -- lifecycle -----------------------------------------------------------------------

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the campaign --------------------------------------------------------------------

    @abc.abstractmethod
    async def campaign(self) -> CampaignInfo | None:
        """The campaign recorded, ``None`` for a new journal."""

    @abc.abstractmethod
    async def start(self, info: CampaignInfo, leads: LeadFile) -> None:
        """Record a new campaign and all its rows at once."""

    @abc.abstractmethod
    async def add_leads(self, leads: LeadFile) -> LeadChanges:
        """Take a changed CSV: rows only for numbers new to the campaign, everything else kept.

        A lead is its normalized number: one the campaign has, finished or not, is never
        added again. The file's rejected lines replace the ones recorded before. The campaign
        records the new file's digest.
        """

    async def open_campaign(self, expected: CampaignInfo, leads: LeadFile) -> Opened:
        """Start ``expected``, or resume the recorded campaign (adding new leads of a changed
        CSV). Raises :class:`JournalError` when the number, agent or server differ."""
        found = await self.campaign()
        if found is None:
            await self.start(expected, leads)
            return Opened(expected, new=True)
        problems = campaign_problems(found, expected)
        if problems:
            raise JournalError(self.refusal(found, problems, await self.count_called()))
        if found.csv_sha256 == expected.csv_sha256:
            return Opened(found, new=False)
        changes = await self.add_leads(leads)
        return Opened(await self.campaign() or found, new=False, changes=changes)

    def refusal(self, found: CampaignInfo, problems: list[str], called: int) -> str:
        """Why a run cannot resume ``found`` (see :func:`campaign_problems`), as one line."""
        return (
            f"{self.where} belongs to campaign {found.campaign_id}, which this run is "
            "not: " + "; ".join(problems) + ". Run with the same options to resume it "
            f"(a new --journal would start a new campaign that dials again the {called} "
            "leads this one has already called)."
        )

    # -- reading -------------------------------------------------------------------------

    @abc.abstractmethod
    async def rows(self) -> list[Row]:
        """Every row, in file order."""

    @abc.abstractmethod
    async def get(self, ref: str) -> Row:
        """One row; :class:`KeyError` when there is none."""

    @abc.abstractmethod
    async def counts(self) -> dict[str, int]:
        """Rows by state."""

    @abc.abstractmethod
    async def count_called(self) -> int:
        """Leads with at least one create that may have placed a call."""

    @abc.abstractmethod
    async def next_due(self) -> float | None:
        """The earliest ``not_before`` of a pending row; ``None`` when none is pending."""

    # -- transitions ---------------------------------------------------------------------

    @abc.abstractmethod
    async def claim(self, now: float) -> Row | None:
        """The next pending row due at ``now`` (earliest ``not_before``, then file order),
        moved to ``dispatching`` and committed durably (it survives a power loss) before
        it is returned; ``None`` when no row is due."""

    async def mark_created(self, row: Row, call_id: str, *, create_ms: float | None) -> None:
        """dispatching -> created: the call exists."""
        await self._move(
            row, DISPATCHING, CREATED, {"call_id": call_id, "create_ms": create_ms, "reason": None}
        )

    async def mark_placed(self, row: Row) -> None:
        """The create answered 2xx but unreadably: stays dispatching, flagged as placed."""
        await self._move(row, DISPATCHING, DISPATCHING, {"placed": True})

    async def mark_ended(
        self, row: Row, *, call_status: str, disconnection_reason: str | None
    ) -> None:
        """created -> ended, with the call's outcome."""
        await self._move(
            row,
            CREATED,
            ENDED,
            {"call_status": call_status, "disconnection_reason": disconnection_reason},
        )

    async def mark_failed(self, row: Row, reason: str) -> None:
        """dispatching -> failed: no call, and none will be made for this lead."""
        await self._move(row, DISPATCHING, FAILED, {"reason": reason})

    async def release(self, row: Row, *, not_before: float, reason: str, retry: bool) -> None:
        """dispatching -> pending with the same attempt (same idempotency key): the create
        placed nothing. ``retry`` counts it in ``retries`` (account-wide stops do not)."""
        await self._move(
            row,
            DISPATCHING,
            PENDING,
            {
                "not_before": not_before,
                "reason": reason,
                "retries": row.retries + (1 if retry else 0),
            },
        )

    async def requeue(
        self,
        row: Row,
        *,
        not_before: float,
        call_status: str,
        disconnection_reason: str | None,
        redial: bool,
    ) -> None:
        """created -> pending with ``attempt + 1``: a new call is wanted, counted in
        ``redials`` (``redial``) or ``requeues`` (the call never got a line)."""
        counter = "redials" if redial else "requeues"
        await self._move(
            row,
            CREATED,
            PENDING,
            {
                "not_before": not_before,
                "attempt": row.attempt + 1,
                "call_status": call_status,
                "disconnection_reason": disconnection_reason,
                "placed": False,
                counter: getattr(row, counter) + 1,
            },
        )

    async def _move(self, row: Row, source: str, to: str, fields: dict[str, Any]) -> None:
        """Check the move of a transition method, store it, then apply it to ``row``."""
        check_move(row, source, to)
        await self._store_move(row, to, fields)
        apply_move(row, to, fields)

    @abc.abstractmethod
    async def _store_move(self, row: Row, to: str, fields: dict[str, Any]) -> None:
        """Commit ``row``'s move from ``row.state`` to ``to`` with ``fields``, only while the
        stored row is still in ``row.state``; :class:`TransitionError` otherwise."""

    @abc.abstractmethod
    async def status(self, *, window_s: float = 60.0) -> CampaignStatus | None:
        """The whole campaign (``None`` for a journal that holds none yet)."""

    # -- the lease -----------------------------------------------------------------------

    @abc.abstractmethod
    async def acquire_lease(self, *, ttl_s: float) -> LeaseHolder | None:
        """Hold the journal for this process; returns the dead holder taken over, if any.

        Raises :class:`LeaseHeldError` while another live dialer holds it: one that
        heartbeated within ``ttl_s`` seconds and, on this host, whose process exists.
        """

    @abc.abstractmethod
    async def heartbeat(self) -> None:
        """Renew the lease; :class:`LeaseLostError` when it was taken over."""

    @abc.abstractmethod
    async def release_lease(self) -> None:
        """Let the next dialer in at once."""
