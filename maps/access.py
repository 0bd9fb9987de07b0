"""Who may see which map layer and which map data. Decided here for the maps app; the rules about
households, concerns, cases and campaigns themselves are not repeated: they are taken from their
apps' access modules (neighborhoods.access, outreach.access, visits.access) and turned into SQL
conditions for the tile and coverage queries.

- 自治会 boundaries, coverage numbers, community resources and the hexagon aggregate: every role of
  the municipality (aggregates, no person in them; hexagons with fewer than HEXAGON_MIN_COUNT
  households are left out);
- household points and their isolation indicators: the households the role may see
  (neighborhoods.access.household_scope), so none for the administrator;
- the open-concern and open-case indicators: only where the role may see that concern or case;
- the concerns and cases layers: coordinators;
- the overdue list (open cases and 見守り marked overdue): coordinators and supervisors, the whole
  municipality.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404

from accounts.access import municipality_id_of
from accounts.models import User
from accounts.roles import Role
from backend.errors import Forbidden
from neighborhoods.access import household_scope, visible_households
from visits.access import visible_campaigns
from visits.models import Campaign

COORDINATOR_LAYERS = frozenset({"concerns", "cases"})
OVERDUE_READERS = frozenset({Role.COORDINATOR, Role.SUPERVISOR})
# Hexagon cells with fewer households than this are not shown at all (so 0 and 1–4 look the same).
HEXAGON_MIN_COUNT = 5


@dataclass(frozen=True)
class SqlCondition:
    """A boolean SQL expression with its positional parameters (%s)."""

    sql: str
    params: tuple = ()


FALSE = SqlCondition("FALSE")


def _membership(queryset: QuerySet, column: str) -> SqlCondition | None:
    """`column IN (<the queryset's ids>)`, or None when the queryset is empty by rule (`.none()`,
    `pk__in=[]`): the caller may not see any."""
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return None
    return SqlCondition(f"{column} IN ({sql})", tuple(params))


def household_condition(user: User, column: str = "h.id") -> SqlCondition:
    """The households the user may see, as SQL on a household id column."""
    return _membership(visible_households(user), column) or FALSE


# What neighborhoods.access.household_scope gives a role that sees no households.
NO_HOUSEHOLDS = Q(pk__in=[])


def may_see_households(user: User) -> bool:
    """Read from the role's household condition itself rather than from its compiled SQL: every
    households tile asks, 304s and cached tiles too, and compiling took longer than their one
    statement (tests/maps/test_tile_round_trips.py holds this to the compiled answer)."""
    return household_scope(user) != NO_HOUSEHOLDS


def open_concern_condition(user: User, column: str = "h.id") -> SqlCondition | None:
    """Households with an open concern the user may see; None if the role sees no concerns."""
    from outreach.access import visible_concerns

    concerns = visible_concerns(user).exclude(status="closed").filter(household__isnull=False)
    return _household_in(concerns, column)


def open_case_condition(user: User, column: str = "h.id") -> SqlCondition | None:
    """Households with an open case the user may see; None if the role sees no cases."""
    from outreach.access import visible_cases

    cases = visible_cases(user).filter(status="open")
    return _household_in(cases, column)


def _household_in(rows: QuerySet, column: str) -> SqlCondition | None:
    """`column` is the household of one of `rows`, looked up by the household's index for each
    household a request reads (a 自治会's few hundred, a tile's), where `IN (subquery)` had the
    planner hash every open concern or case of the city first. `OFFSET 0` keeps PostgreSQL from
    turning the EXISTS back into that hashed IN. None when the role sees none of them."""
    try:
        sql, params = rows.order_by().values("household_id").query.sql_with_params()
    except EmptyResultSet:
        return None
    exists = f"EXISTS (SELECT 1 FROM ({sql}) AS s WHERE s.household_id = {column} OFFSET 0)"  # noqa: S608 - a queryset's SQL, values bound
    return SqlCondition(exists, tuple(params))


def withheld_indicators(user: User) -> tuple[str, ...]:
    """The indicators built on concerns or cases the user may not see (a 民生委員 never sees
    cases; an administrator sees neither)."""
    withheld = []
    if open_concern_condition(user) is None:
        withheld.append("open_concern")
    if open_case_condition(user) is None:
        withheld.append("open_case")
    return tuple(withheld)


def require_indicators(user: User, indicators: Iterable[str]) -> None:
    """Filtering by an indicator would reveal which households have it: refused (403) for those
    the role may not see, rather than answered with an empty or partial list."""
    withheld = withheld_indicators(user)
    refused = [name for name in indicators if name in withheld]
    if refused:
        raise Forbidden(
            f"Your role may not see or filter by these indicators: {', '.join(refused)}.",
            details={"indicators": refused},
        )


def layer_condition(user: User, layer: str, column: str) -> SqlCondition:
    """The rows of a coordinators' layer the user may see (concerns, cases), as SQL on its id."""
    from outreach.access import visible_cases, visible_concerns

    require_layer(user, layer)
    queryset = visible_concerns(user) if layer == "concerns" else visible_cases(user)
    return _membership(queryset, column) or FALSE


def require_layer(user: User, layer: str) -> None:
    if layer in COORDINATOR_LAYERS and user.role != Role.COORDINATOR:
        raise Forbidden(f"Only coordinators see the {layer} layer.", details={"layer": layer})
    if layer == "households" and not may_see_households(user):
        raise Forbidden(
            "Your role may not see households; the hexagons layer shows how many live where.",
            details={"layer": layer, "use": "hexagons"},
        )


def allowed_layers(user: User, layers: tuple[str, ...]) -> list[str]:
    out = []
    for layer in layers:
        try:
            require_layer(user, layer)
        except Forbidden:
            continue
        out.append(layer)
    return out


def campaign_for(user: User, campaign_id: int | None) -> Campaign | None:
    """The campaign a map shows: the one asked for (another municipality's answers 404), else the
    municipality's current one (current_campaign)."""
    campaigns = visible_campaigns(user)
    if campaign_id is not None:
        return get_object_or_404(campaigns, pk=campaign_id)
    return current_campaign(campaigns)


# The current campaign: the latest running, else the latest started (not a draft), else the latest
# draft. One order, for the ORM (current_campaign) and for SQL (campaign_choice_sql) alike.
CURRENT_FIRST = (  # each descending
    f"status = '{Campaign.Status.RUNNING.value}'", f"status <> '{Campaign.Status.DRAFT.value}'", "start_date", "id",
)


def current_campaign(campaigns: QuerySet[Campaign]) -> Campaign | None:
    return campaigns.order_by(*(RawSQL(term, ()).desc() for term in CURRENT_FIRST)).first()  # noqa: S611 - constants


# campaign_for in one scalar subquery. Campaigns are visible by municipality
# (visits.access.visible_campaigns); tests/maps/test_tile_campaign.py holds the two to the same
# answers for every role. Written out rather than compiled from the queryset: compiling it took
# longer than the statement that uses it.
_ASKED_SQL = "(SELECT id FROM visits_campaign WHERE municipality_id = %s AND id = %s)"
_CURRENT_SQL = (
    "(SELECT id FROM visits_campaign WHERE municipality_id = %s"  # noqa: S608 - constants
    f" ORDER BY {', '.join(f'{term} DESC' for term in CURRENT_FIRST)} LIMIT 1)"
)


def campaign_choice_sql(user: User, campaign_id: int | None) -> tuple[str, list]:
    """campaign_for as a scalar SQL subquery of the chosen campaign's id (NULL: there is none, or
    the one asked for is not the user's), for a statement that needs the campaign and its data in
    one round trip (a tile's version); the caller answers 404 when an id asked for comes back NULL."""
    if campaign_id is not None:
        return _ASKED_SQL, [municipality_id_of(user), campaign_id]
    return _CURRENT_SQL, [municipality_id_of(user)]


def check_filter_ids(
    user: User, *, neighborhood: int | None = None, daily_life_area: int | None = None, district: int | None = None,
    partner: int | None = None,
) -> None:
    """Ids given as filters must name the user's own municipality's objects (else 404)."""
    from neighborhoods.access import visible_daily_life_areas, visible_districts, visible_neighborhoods
    from visits.access import visible_partners

    for value, visible in (
        (neighborhood, visible_neighborhoods), (daily_life_area, visible_daily_life_areas),
        (district, visible_districts), (partner, visible_partners),
    ):
        if value is not None:
            get_object_or_404(visible(user).only("pk"), pk=value)


def require_overdue_reader(user: User) -> int:
    """The municipality whose overdue list the user may read."""
    if user.role not in OVERDUE_READERS:
        raise Forbidden("Only coordinators and supervisors read the overdue list.")
    return municipality_id_of(user)


# Roles whose household scope is the whole municipality; for the others the scope also depends on
# allocations, campaigns' status and the commissioner's 自治会 (neighborhoods.access), so those
# tables' versions go into their tiles' ETags.
WHOLE_MUNICIPALITY_SCOPE = frozenset({Role.COORDINATOR, Role.SUPERVISOR})


def scope_version_parts(user: User) -> tuple[str, ...]:
    if user.role in WHOLE_MUNICIPALITY_SCOPE:
        return ()
    return ("allocation", "campaign", "commission")


def scope_key(user: User) -> str:
    """What makes one caller's view differ from another's (part of every tile's ETag); the data
    version covers the tables the scope rules read (allocations, campaigns, commissioners' 自治会)."""
    return f"m{user.municipality_id}:u{user.pk}:{user.role}:p{user.partner_organization_id or 0}"
