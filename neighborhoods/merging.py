"""Merging two households a coordinator judged to be one (duplicates, neighborhoods.duplicates).

`merge_households` moves everything that points at the absorbed household to the survivor, in one
transaction; the absorbed household stays as a row (its history and the facts recorded against it
stay readable) with `merged_into`, `merged_at`, and neither a point nor a 自治会, so it leaves
coverage, maps, tiles, the 自治会 lists and the field sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pghistory
import pgtrigger
from django.db import connection, models, transaction
from django.db.models import Exists, F, ForeignObjectRel, OuterRef, Q
from django.http import HttpRequest
from django.utils import timezone
from pghistory.models import Event

from accounts.access import municipality_id_of
from accounts.models import User
from backend.errors import Conflict, InvalidInput, NotFound
from neighborhoods import access
from neighborhoods.duplicates import forget_stored_pairs, record_household_change
from neighborhoods.models import DistinctHouseholds, Household, Resident


@dataclass
class MergeResult:
    survivor: Household
    absorbed: Household
    moved: dict[str, int] = field(default_factory=dict)  # "app.Model.field" -> rows moved
    kept_on_absorbed: list[str] = field(default_factory=list)  # residents judged the same person
    dropped_campaign_states: list[int] = field(default_factory=list)
    cancelled_visits: list[str] = field(default_factory=list)


# Progress of a household in a campaign: a finished state first, then more attempts at the door,
# then a leaflet due over a planned visit over nothing yet.
_STATE_RANK = {"pending": 0, "scheduled": 1, "leaflet_due": 2}
_OPEN = ("planned", "issued")


def _lock_pair(survivor_id: Any, absorbed_id: Any) -> tuple[Household, Household]:
    """Both rows locked FOR UPDATE in id order (two merges of the same pair cannot deadlock)."""
    rows = {h.pk: h for h in Household.objects.select_for_update().filter(pk__in=[survivor_id, absorbed_id]).order_by("pk")}
    return rows[survivor_id], rows[absorbed_id]


def _check_version(household: Household, version: int, loc: str) -> None:
    if household.version != version:
        raise Conflict(
            f"The household {household.external_id} changed since version {version}; it is now at version "
            f"{household.version}.", code="stale_version", details={"version": household.version, "field": loc},
        )


def _merged_error(household: Household, loc: list[str]) -> InvalidInput:
    return InvalidInput(
        f"The household {household.external_id} was already merged into another.", code="household_merged",
        details=[{"loc": loc, "msg": f"{loc[-1]}: already merged into another household"}],
    )


@transaction.atomic
def merge_households(
    *, survivor: Household, absorbed: Household, by: User, survivor_version: int, absorbed_version: int,
    request: HttpRequest | None = None,
) -> MergeResult:
    """Merge `absorbed` into `survivor` (coordinators). Everything that points at the absorbed
    household moves to the survivor; the absorbed stays, marked merged, with no point and no 自治会.
    Both versions are checked (a stale one is 409) and raised; the change is audited."""
    access.require_household_merger(by)
    if survivor.municipality_id != absorbed.municipality_id or survivor.municipality_id != municipality_id_of(by):
        raise NotFound("No such household in this municipality.", code="household_unknown",
                       details=[{"loc": ["body", "into"], "msg": "no such household"}])
    if survivor.pk == absorbed.pk:
        raise InvalidInput("A household cannot be merged into itself.", code="same_household",
                           details=[{"loc": ["body", "into"], "msg": "into: the same household as in the path"}])
    survivor, absorbed = _lock_pair(survivor.pk, absorbed.pk)
    if absorbed.merged_into_id is not None:
        raise _merged_error(absorbed, ["path", "household_id"])
    if survivor.merged_into_id is not None:
        raise _merged_error(survivor, ["body", "into"])
    _check_version(absorbed, absorbed_version, "version")
    _check_version(survivor, survivor_version, "into_version")

    result = MergeResult(survivor=survivor, absorbed=absorbed)
    with pghistory.context(merge_survivor=str(survivor.pk), merge_absorbed=str(absorbed.pk)):
        _merge_residents(result)
        _merge_campaign_states(result)
        _merge_scheduled_visits(result)
        _merge_distinct_pairs(result)
        _move_everything_else(result)
        # The stored duplicate report stops listing the merged household (its pair with the survivor
        # among them) in this transaction; pairs of the survivor stay until the next refresh.
        forget_stored_pairs(municipality_id=survivor.municipality_id, household_id=absorbed.pk)
        now = timezone.now()
        Household.objects.filter(pk=absorbed.pk).update(
            merged_into=survivor, merged_at=now, neighborhood=None, location=None,
            version=F("version") + 1, updated_at=now,
        )
        Household.objects.filter(pk=survivor.pk).update(version=F("version") + 1, updated_at=now)
    survivor.refresh_from_db()
    absorbed.refresh_from_db()
    record_household_change(by, request, survivor, basis=f"role:{by.role}", detail={
        "merged": str(absorbed.pk), "merged_external_id": absorbed.external_id, "into": str(survivor.pk),
        "moved": result.moved, "residents_kept_on_merged": result.kept_on_absorbed,
        "campaign_states_dropped": result.dropped_campaign_states, "visits_cancelled": result.cancelled_visits,
    })
    return result


def _moved(result: MergeResult, label: str, count: int) -> None:
    if count:
        result.moved[label] = result.moved.get(label, 0) + count


def _bump(model: type[models.Model]) -> dict[str, Any]:
    """What an update of a row of `model` also sets: its version raised and updated_at (so an
    offline edit based on the old version is a conflict, and the change is visible)."""
    names = {f.name for f in model._meta.concrete_fields}
    changes: dict[str, Any] = {}
    if "version" in names:
        changes["version"] = F("version") + 1
    if "updated_at" in names:
        changes["updated_at"] = timezone.now()
    return changes


_SAME_PERSON_SQL = r"""
SELECT DISTINCT ON (r.id) r.id, s.id
  FROM neighborhoods_resident r
  JOIN neighborhoods_resident s
    ON s.household_id = %(survivor)s
   AND regexp_replace(normalize(s.name, NFKC), '\s+', '', 'g') = regexp_replace(normalize(r.name, NFKC), '\s+', '', 'g')
   AND s.birth_year IS NOT DISTINCT FROM r.birth_year
 WHERE r.household_id = %(absorbed)s
 ORDER BY r.id, s.id
"""


def _merge_residents(result: MergeResult) -> None:
    """Residents move to the survivor, except a person already there (the same name, spaces and
    width aside, and the same birth year, both unknown counting as the same): that one stays on the
    absorbed household (readable with it) and whatever pointed at them (a concern, a case) points
    at the survivor's copy instead."""
    survivor, absorbed = result.survivor, result.absorbed
    with connection.cursor() as cursor:
        cursor.execute(_SAME_PERSON_SQL, {"survivor": survivor.pk, "absorbed": absorbed.pk})
        same = dict(cursor.fetchall())
    for rel in _referencing(Resident):
        for old, new in same.items():
            count = rel.related_model._base_manager.filter(**{rel.field.attname: old}).update(
                **{rel.field.attname: new}, **_bump(rel.related_model)
            )
            _moved(result, f"{rel.related_model._meta.label}.{rel.field.name} (same person)", count)
    count = Resident.objects.filter(household_id=absorbed.pk).exclude(pk__in=list(same)).update(
        household_id=survivor.pk, **_bump(Resident)
    )
    _moved(result, "neighborhoods.Resident.household", count)
    result.kept_on_absorbed = [str(pk) for pk in same]


def _rank(state: Any) -> tuple[bool, int, int]:
    from visits.models import CampaignHousehold

    return (state.state in CampaignHousehold.FINAL_STATES, state.attempts, _STATE_RANK.get(state.state, 0))


def _merge_campaign_states(result: MergeResult) -> None:
    """One state per household and campaign: where both households have one, the further along is
    kept (a finished one; else the one with more attempts; else leaflet due > scheduled > pending;
    a tie keeps the survivor's), marked priority if either was; the other row is deleted."""
    from visits.models import CampaignHousehold

    survivor, absorbed = result.survivor, result.absorbed
    rows = CampaignHousehold.objects.select_for_update().filter(household_id__in=[survivor.pk, absorbed.pk])
    by_campaign: dict[int, dict[Any, CampaignHousehold]] = {}
    for row in rows:
        by_campaign.setdefault(row.campaign_id, {})[row.household_id] = row
    for both in by_campaign.values():
        if len(both) < 2:
            continue
        kept, other = both[survivor.pk], both[absorbed.pk]
        if _rank(other) > _rank(kept):
            kept, other = other, kept
        if other.priority and not kept.priority:
            kept.priority, kept.priority_reason, kept.hearing_id = True, other.priority_reason, other.hearing_id
            kept.save(update_fields=["priority", "priority_reason", "hearing", "updated_at"])
        result.dropped_campaign_states.append(other.pk)
        other.delete()
    count = CampaignHousehold.objects.filter(household_id=absorbed.pk).update(
        household_id=survivor.pk, **_bump(CampaignHousehold)
    )
    _moved(result, "visits.CampaignHousehold.household", count)


def _merge_scheduled_visits(result: MergeResult) -> None:
    """One open visit per household and campaign: where both households have one, the one handed
    out to a device (issued) is kept over a planned one, then the earlier, then the survivor's; the
    other is cancelled (取消). A planned visit in a campaign the merged household has finished is
    cancelled too. Then every visit moves, and the survivor's campaign states say "scheduled" exactly
    where an open visit is left."""
    from visits.models import CampaignHousehold, ScheduledVisit

    survivor, absorbed = result.survivor, result.absorbed
    open_visits = ScheduledVisit.objects.select_for_update().filter(
        household_id__in=[survivor.pk, absorbed.pk], status__in=_OPEN
    )
    by_campaign: dict[int, list[ScheduledVisit]] = {}
    for visit in open_visits:
        by_campaign.setdefault(visit.campaign_id, []).append(visit)
    cancel: list[Any] = []
    for visits in by_campaign.values():
        visits.sort(key=lambda v: (v.status != "issued", v.date, v.household_id != survivor.pk, v.route_order))
        cancel += [v.pk for v in visits[1:]]
    finished = CampaignHousehold.objects.filter(
        household_id__in=[survivor.pk, absorbed.pk], state__in=CampaignHousehold.FINAL_STATES
    ).values("campaign_id")
    cancel += list(
        ScheduledVisit.objects.filter(
            household_id__in=[survivor.pk, absorbed.pk], status="planned", campaign_id__in=finished
        ).exclude(pk__in=cancel).values_list("pk", flat=True)
    )
    if cancel:
        ScheduledVisit.objects.filter(pk__in=cancel).update(status=ScheduledVisit.Status.CANCELLED, **_bump(ScheduledVisit))
    result.cancelled_visits = [str(pk) for pk in cancel]
    count = ScheduledVisit.objects.filter(household_id=absorbed.pk).update(
        household_id=survivor.pk, **_bump(ScheduledVisit)
    )
    _moved(result, "visits.ScheduledVisit.household", count)
    # The survivor's state in each campaign says whether a visit is planned, as record_outcome keeps it.
    open_visit = Exists(ScheduledVisit.objects.filter(
        campaign_id=OuterRef("campaign_id"), household_id=survivor.pk, status__in=_OPEN
    ))
    states = CampaignHousehold.objects.filter(household_id=survivor.pk)
    states.filter(open_visit, state="pending").update(state="scheduled", updated_at=timezone.now())
    states.filter(~open_visit, state="scheduled").update(state="pending", updated_at=timezone.now())


def _merge_distinct_pairs(result: MergeResult) -> None:
    """A household judged distinct from the absorbed one is distinct from the survivor too: the
    pairs are added for the survivor (the absorbed one's stay, as they were decided)."""
    survivor, absorbed = result.survivor, result.absorbed
    others = {
        pair.second_id if pair.first_id == absorbed.pk else pair.first_id: pair
        for pair in DistinctHouseholds.objects.filter(Q(first_id=absorbed.pk) | Q(second_id=absorbed.pk))
    }
    added = 0
    for other_id, pair in others.items():
        if other_id == survivor.pk:
            continue
        first, second = sorted((survivor.pk, other_id))
        _, created = DistinctHouseholds.objects.get_or_create(
            municipality_id=survivor.municipality_id, first_id=first, second_id=second,
            defaults={"decided_by_id": pair.decided_by_id},
        )
        added += created
    _moved(result, "neighborhoods.DistinctHouseholds (copied)", added)


# Referencing fields with a rule of their own above; every other one is moved as it is.
_OWN_RULES = {
    ("neighborhoods.Resident", "household"),
    ("visits.CampaignHousehold", "household"),
    ("visits.ScheduledVisit", "household"),
    ("neighborhoods.DistinctHouseholds", "first"),
    ("neighborhoods.DistinctHouseholds", "second"),
}
# Append-only tables the merge may still re-point (their household only): the trigger to pass.
_APPEND_ONLY = {("visits.VisitRecord", "household"): "visits.VisitRecord:visitrecord_append_only"}


def _referencing(model: type[models.Model]) -> list[ForeignObjectRel]:
    """The foreign keys that point at `model`, hidden ones included (related_name "+"), without
    history tables (pghistory events: what was, at the time, stays as it was)."""
    return [
        rel for rel in model._meta.get_fields(include_hidden=True)
        if isinstance(rel, ForeignObjectRel) and not rel.many_to_many and rel.field.concrete
        and getattr(rel.field, "db_constraint", False)
        and not issubclass(rel.related_model, Event)
    ]


def unique_per_household(model: type[models.Model], field_name: str) -> bool:
    """Whether rows of `model` are unique per household (moving them could collide)."""
    fld = model._meta.get_field(field_name)
    if getattr(fld, "unique", False):
        return True
    if any(field_name in group for group in model._meta.unique_together):
        return True
    return any(
        isinstance(c, models.UniqueConstraint) and field_name in (c.fields or ()) for c in model._meta.constraints
    )


def merge_rules() -> dict[str, str]:
    """Each field pointing at a household -> how a merge treats it (for the tests and the docs)."""
    rules = {}
    for rel in _referencing(Household):
        key = (rel.related_model._meta.label, rel.field.name)
        if key in _OWN_RULES:
            rules[".".join(key)] = "own rule"
        elif unique_per_household(rel.related_model, rel.field.name):
            rules[".".join(key)] = "unique per household: needs a rule"
        else:
            rules[".".join(key)] = "moved"
    return rules


def _move_everything_else(result: MergeResult) -> None:
    """Every other row pointing at the absorbed household points at the survivor, one UPDATE per
    referencing field, found from the model graph (a future model is covered; one whose rows are
    unique per household stops the merge until it has a rule). Households merged into the absorbed
    one earlier now point at the survivor."""
    survivor, absorbed = result.survivor, result.absorbed
    for rel in _referencing(Household):
        model, name = rel.related_model, rel.field.name
        key = (model._meta.label, name)
        if key in _OWN_RULES:
            continue
        if unique_per_household(model, name):
            raise RuntimeError(f"{model._meta.label}.{name} is unique per household and has no merge rule")
        rows = model._base_manager.filter(**{rel.field.attname: absorbed.pk})
        if model is Household:
            rows = rows.exclude(pk=survivor.pk)
        changes = {rel.field.attname: survivor.pk, **(_bump(model) if model is not Household else {})}
        if key in _APPEND_ONLY:
            with pgtrigger.ignore(_APPEND_ONLY[key]):
                count = rows.update(**changes)
        else:
            count = rows.update(**changes)
        _moved(result, f"{model._meta.label}.{name}", count)
