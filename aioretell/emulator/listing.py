"""List endpoints: filter criteria and cursor pagination.

The cursor (``pagination_key``) is the id of the last item of the previous page; pages follow
the store's creation order, reversed for ``descending`` (the default). Which ``sort_order``
values an operation takes (``ascending``/``descending``, or ``asc``/``desc`` for contacts)
and whether ``skip`` may come with a cursor is the spec's to say: requests are checked
against it before they get here (:mod:`.validation`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .registry import ApiError
from .state import JSON

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


def match_criteria(criteria: Mapping[str, Any], item: JSON) -> bool:
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


def _field(item: JSON, name: str) -> Any:
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


def paginate(
    items: Iterable[JSON],
    id_field: str,
    *,
    limit: Any = None,
    sort_order: Any = None,
    pagination_key: Any = None,
    skip: Any = None,
) -> JSON:
    """One page of ``items`` (already filtered, in creation order) as a paginated response."""
    limit = DEFAULT_LIMIT if limit is None else _int(limit, "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}")
    ordered = list(items)
    if sort_order not in _ASCENDING:
        ordered.reverse()
    start = 0
    if pagination_key is not None:
        ids = [item[id_field] for item in ordered]
        if pagination_key not in ids:
            raise ApiError(400, "pagination_key is not a valid cursor")
        start = ids.index(pagination_key) + 1
    if skip is not None:  # after the cursor, when both are given
        start += _int(skip, "skip")
    page = ordered[start : start + limit]
    has_more = start + limit < len(ordered)
    out: JSON = {"items": page, "has_more": has_more}
    if has_more and page:
        out["pagination_key"] = page[-1][id_field]
    return out


def list_response(body: JSON, items: Iterable[JSON], id_field: str) -> JSON:
    """The answer of a POST list endpoint (list-calls, list-chats) for its request ``body``."""
    criteria = body.get("filter_criteria") or {}
    matching = [item for item in items if match_criteria(criteria, item)]
    page = paginate(
        matching,
        id_field,
        limit=body.get("limit"),
        sort_order=body.get("sort_order"),
        pagination_key=body.get("pagination_key"),
        skip=body.get("skip"),
    )
    if body.get("include_total"):
        page["total"] = len(matching)
    return page


def query_response(query: Mapping[str, str], items: Iterable[JSON], id_field: str) -> JSON:
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
