"""List endpoints: filter criteria and cursor pagination.

The cursor (``pagination_key``) is the id of the last item of the previous page; pages follow
the store's creation order, reversed for ``descending`` (the default). Which ``sort_order``
values an operation takes (``ascending``/``descending``, or ``asc``/``desc`` for contacts)
and whether ``skip`` may come with a cursor is the spec's to say: requests are checked
against it before they get here (:mod:`.validation`).

Calls and chats are filtered, ordered and paged as records, and only the page is rendered:
filters read a :class:`Lazy` rendering, whose cheap fields need no full rendering (a
list-calls poll over thousands of ended calls renders the few it returns, not all of them).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator, Mapping, Reversible
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .registry import ApiError
from .state import JSON

T = TypeVar("T")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
#: ``sort_order`` values that page oldest first; any other (or none) pages newest first.
_ASCENDING = frozenset({"ascending", "asc"})


def match_filter(spec: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value`` passes one typed filter (string, number, boolean, enum, range, present)."""
    op = spec.get("op")
    target = spec.get("value")
    if op == "pr":
        return value is not None
    if op == "np":
        return value is None
    if value is None:
        return op == "ne"
    if op == "eq":
        return bool(value == target)
    if op == "ne":
        return bool(value != target)
    if op == "in":
        return isinstance(target, list) and value in target
    if isinstance(value, str) and isinstance(target, str):
        checks: dict[str, Callable[[str, str], bool]] = {
            "sw": str.startswith,
            "ew": str.endswith,
            "co": str.__contains__,
        }
        return op in checks and checks[op](value, target)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if op == "bt" and isinstance(target, list) and len(target) == 2:
            return bool(target[0] <= value <= target[1])
        if isinstance(target, (int, float)):
            compare: dict[str, bool] = {
                "gt": value > target,
                "ge": value >= target,
                "lt": value < target,
                "le": value <= target,
            }
            return compare.get(str(op), False)
    return False


def match_criteria(criteria: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    """Whether a rendered call or chat passes ``filter_criteria`` (all conditions ANDed).

    Supported: ``agent`` (list of agent ids, ORed), ``metadata`` / ``dynamic_variables`` /
    ``custom_attributes`` (lists of keyed filters), and typed filters on top-level fields.
    Criteria the emulator does not know are ignored.
    """
    for name, spec in criteria.items():
        if name == "agent":
            ids = {a.get("agent_id") for a in spec if isinstance(a, dict)}
            if item.get("agent_id") not in ids:
                return False
        elif name in ("metadata", "dynamic_variables", "custom_attributes"):
            field = "retell_llm_dynamic_variables" if name == "dynamic_variables" else name
            values = item.get(field) or {}
            for keyed in spec:
                if not match_filter(keyed, values.get(keyed.get("key"))):
                    return False
        elif isinstance(spec, dict) and "op" in spec and not match_filter(spec, _field(item, name)):
            return False
    return True


def _field(item: Mapping[str, Any], name: str) -> Any:
    if name in item:
        return item[name]
    analysis = item.get("call_analysis") or item.get("chat_analysis") or {}
    if name in analysis:
        return analysis[name]
    if name == "combined_cost":
        return (item.get("call_cost") or item.get("chat_cost") or {}).get("combined_cost")
    if name == "e2e_latency_p50":
        return ((item.get("latency") or {}).get("e2e") or {}).get("p50")
    return None


class Lazy(Mapping[str, Any]):
    """A record as a list answer would render it, for filtering: the cheap part (``head``)
    answers first, and the whole rendering is made only when a criterion asks for a field
    the head lacks. ``head``'s fields must be exactly those of the whole rendering."""

    __slots__ = ("_head", "_render", "_whole")

    def __init__(self, head: JSON, render: Callable[[], JSON]) -> None:
        self._head = head
        self._render = render
        self._whole: JSON | None = None

    def _all(self) -> JSON:
        if self._whole is None:
            self._whole = self._render()
        return self._whole

    def __getitem__(self, name: str) -> Any:
        head = self._head
        return head[name] if name in head else self._all()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._head or name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of records: the records themselves, not yet rendered."""

    items: list[T]
    has_more: bool
    #: every record that matched, on any page (counted only when asked for)
    total: int | None = None


def select(
    records: Reversible[T],
    item_id: Callable[[T], str],
    *,
    keep: Callable[[T], bool] | None = None,
    limit: Any = None,
    sort_order: Any = None,
    pagination_key: Any = None,
    skip: Any = None,
    total: bool = False,
) -> Page[T]:
    """The page of ``records`` (in creation order) that ``keep`` passes, reading no more of
    them than the page needs: the cursor's position, the page, and one more for
    ``has_more`` (all of them only for ``total``)."""
    limit = DEFAULT_LIMIT if limit is None else _int(limit, "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}")
    ordered = iter(records) if sort_order in _ASCENDING else reversed(records)
    matching = ordered if keep is None else filter(keep, ordered)
    before = 0  # matches up to the cursor (the cursor included)
    if pagination_key is not None:
        for record in matching:
            before += 1
            if item_id(record) == pagination_key:
                break
        else:
            raise ApiError(400, "pagination_key is not a valid cursor")
    skipped = 0
    if skip is not None:  # after the cursor, when both are given
        skipped = sum(1 for _ in itertools.islice(matching, max(0, _int(skip, "skip"))))
    page = list(itertools.islice(matching, limit))
    # One more match says there is another page; ``total`` counts every one.
    rest = sum(1 for _ in (matching if total else itertools.islice(matching, 1)))
    return Page(page, rest > 0, before + skipped + len(page) + rest if total else None)


def page_body(page: Page[T], items: list[JSON], id_field: str) -> JSON:
    """A paginated response: ``page``'s records rendered as ``items``."""
    out: JSON = {"items": items, "has_more": page.has_more}
    if page.has_more and items:
        out["pagination_key"] = items[-1][id_field]
    if page.total is not None:
        out["total"] = page.total
    return out


def paginate(
    items: Reversible[JSON],
    id_field: str,
    *,
    limit: Any = None,
    sort_order: Any = None,
    pagination_key: Any = None,
    skip: Any = None,
) -> JSON:
    """One page of ``items`` (already filtered, in creation order) as a paginated response."""
    page = select(
        items,
        operator.itemgetter(id_field),
        limit=limit,
        sort_order=sort_order,
        pagination_key=pagination_key,
        skip=skip,
    )
    return page_body(page, page.items, id_field)


def list_records(
    body: JSON,
    records: Reversible[T],
    id_field: str,
    *,
    item_id: Callable[[T], str],
    view: Callable[[T], Mapping[str, Any]],
    render: Callable[[T], JSON],
) -> JSON:
    """The answer of a POST list endpoint for its request ``body``: ``view`` is what
    ``filter_criteria`` reads of a record (a :class:`Lazy` rendering, say), and only the
    page's records are rendered."""
    criteria = body.get("filter_criteria") or {}
    page = select(
        records,
        item_id,
        keep=(lambda record: match_criteria(criteria, view(record))) if criteria else None,
        limit=body.get("limit"),
        sort_order=body.get("sort_order"),
        pagination_key=body.get("pagination_key"),
        skip=body.get("skip"),
        total=bool(body.get("include_total")),
    )
    return page_body(page, [render(record) for record in page.items], id_field)


def list_response(body: JSON, items: Reversible[JSON], id_field: str) -> JSON:
    """:func:`list_records` of records that are their own rendering."""
    return list_records(
        body, items, id_field, item_id=operator.itemgetter(id_field), view=_same, render=_same
    )


def _same(item: JSON) -> JSON:
    return item


def query_response(query: Mapping[str, str], items: Reversible[JSON], id_field: str) -> JSON:
    """The answer of a list endpoint paged by query parameters (list-agents, list-retell-llms)."""
    return paginate(
        items,
        id_field,
        limit=query.get("limit"),
        sort_order=query.get("sort_order"),
        pagination_key=query.get("pagination_key"),
    )


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be an integer") from None
