"""What is overdue: the one reader behind every overdue list (/outreach/overdue, /outreach/me/overdue,
/maps/overdue). The rule is outreach.models' (case_overdue_sql / watch_overdue_sql, applied by the
querysets' `overdue()`); this module says whose cases and 見守り are listed, in what order, and
builds the map's page of both from the same querysets."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from accounts.access import municipality_id_of
from accounts.models import User
from accounts.roles import Role
from backend.db import capped_count, fetch_dicts
from outreach import access
from outreach.models import CaseQuerySet, OutreachCase, WatchArrangement, WatchQuerySet

KINDS = ("case", "watch")


@dataclass(frozen=True)
class OverdueScope:
    """Whose overdue list: a municipality's, or one person's (what outreach.access lets them see,
    narrowed to what is theirs), and which kinds."""

    municipality_id: int
    kinds: tuple[str, ...] = KINDS
    user: User | None = None


def of_municipality(municipality_id: int, *, kind: str | None = None) -> OverdueScope:
    """Everything overdue in the municipality (coordinators and supervisors; the caller checks)."""
    return OverdueScope(municipality_id=municipality_id, kinds=(kind,) if kind else KINDS)


def of_user(user: User) -> OverdueScope:
    """/me/overdue: an outreach worker's, the cases they lead; a 民生委員's, the 見守り of households
    in their 自治会; anyone else's, nothing (only outreach workers lead cases)."""
    municipality_id = municipality_id_of(user)
    if user.role == Role.OUTREACH_WORKER:
        return OverdueScope(municipality_id=municipality_id, kinds=("case",), user=user)
    if user.role == Role.COMMISSIONER:
        return OverdueScope(municipality_id=municipality_id, kinds=("watch",), user=user)
    return OverdueScope(municipality_id=municipality_id, kinds=())


def cases(scope: OverdueScope, today: dt.date) -> CaseQuerySet:
    """The scope's overdue cases (annotated overdue_today), the longest overdue first."""
    if "case" not in scope.kinds:
        return OutreachCase.objects.none()
    if scope.user is None:
        qs = OutreachCase.objects.filter(municipality_id=scope.municipality_id)
    else:  # the cases the worker may see and leads
        qs = access.visible_cases(scope.user).filter(lead_worker=scope.user)
    return qs.overdue(today=today).order_by("next_contact_due", "pk")


def watches(scope: OverdueScope, today: dt.date) -> WatchQuerySet:
    """The scope's overdue 見守り (annotated overdue_today), the longest overdue first."""
    if "watch" not in scope.kinds:
        return WatchArrangement.objects.none()
    if scope.user is None:
        qs = WatchArrangement.objects.filter(municipality_id=scope.municipality_id)
    else:  # the 見守り of the 民生委員's 自治会
        qs = access.visible_watches(scope.user)
    return qs.overdue(today=today).order_by("next_due", "pk")


# --- one page of both, for the map ------------------------------------------------------------------

_CASE_ITEMS = """
  SELECT 'case' AS kind, c.id::text AS id, c.household_id, h.neighborhood_id, n.name AS neighborhood_name,
         c.title AS label, c.stage AS detail, c.next_contact_due AS due, c.last_contact_on AS last_contact,
         p.name AS responsible, h.location
    FROM outreach_outreachcase c
    JOIN neighborhoods_household h ON h.id = c.household_id
    LEFT JOIN neighborhoods_neighborhood n ON n.id = h.neighborhood_id
    LEFT JOIN visits_partnerorganization p ON p.id = c.lead_partner_id
   WHERE c.id IN ({ids})"""

_WATCH_ITEMS = """
  SELECT 'watch' AS kind, w.id::text AS id, w.household_id, h.neighborhood_id, n.name AS neighborhood_name,
         w.watcher_name AS label, w.watcher_role AS detail, w.next_due AS due, w.last_check_in AS last_contact,
         w.watcher_name AS responsible, h.location
    FROM outreach_watcharrangement w
    JOIN neighborhoods_household h ON h.id = w.household_id
    LEFT JOIN neighborhoods_neighborhood n ON n.id = h.neighborhood_id
   WHERE w.id IN ({ids})"""

_PAGE = """
WITH x AS ({items}
)
SELECT x.*, ST_X(x.location) AS lon, ST_Y(x.location) AS lat
  FROM x
 ORDER BY x.due, x.kind, x.id
 LIMIT %s OFFSET %s
"""


def _page_sql(scope: OverdueScope, today: dt.date, *, first: int) -> tuple[str, list] | None:
    """One statement over the first `first` ids of cases() and of watches() in due order (each an
    index-ordered subquery: a page reads at most offset + limit rows of each kind, however much is
    overdue in the town)."""
    parts: list[str] = []
    params: list = []
    for kind, template, qs in (("case", _CASE_ITEMS, cases(scope, today)), ("watch", _WATCH_ITEMS, watches(scope, today))):
        if kind not in scope.kinds:
            continue
        ids_sql, ids_params = qs.values("pk")[:first].query.sql_with_params()
        parts.append(template.format(ids=ids_sql))
        params.extend(ids_params)
    if not parts:
        return None
    return _PAGE.format(items="\n  UNION ALL".join(parts)), params


def count(scope: OverdueScope, today: dt.date) -> tuple[int, bool]:
    """How many cases and 見守り of the scope are overdue, capped as every list's count
    (backend.db.capped_count): (count, whether more are overdue than it says)."""
    total = 0
    for qs in (cases(scope, today), watches(scope, today)):
        n, more = capped_count(qs)
        total += n + more  # one past the cap when a kind has more
    cap = settings.TSUNAGU_LIST_COUNT_CAP
    return min(total, cap), total > cap


def page(scope: OverdueScope, *, today: dt.date, limit: int, offset: int) -> tuple[list[dict], int, bool]:
    """Cases and 見守り of the scope as one list (by due date), a page of it and the count (capped,
    with whether it is), with each item's household, 自治会, who is responsible and where."""
    built = _page_sql(scope, today, first=offset + limit)
    if built is None:
        return [], 0, False
    sql, params = built
    rows = fetch_dicts(sql, [*params, limit, offset])
    items = [{
        "kind": r["kind"], "id": r["id"], "household_id": r["household_id"], "neighborhood_id": r["neighborhood_id"],
        "neighborhood_name": r["neighborhood_name"] or "", "label": r["label"], "detail": r["detail"],
        "due": r["due"], "days_overdue": max(0, (today - r["due"]).days), "last_contact": r["last_contact"],
        "responsible": r["responsible"] or "",
        "location": {"type": "Point", "coordinates": [round(r["lon"], 7), round(r["lat"], 7)]}
        if r["lon"] is not None else None,
    } for r in rows]
    return items, *count(scope, today)
