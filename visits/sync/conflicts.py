"""編集の競合 (edit conflicts): a household edit from a tablet based on a version the server had
moved past. The sync keeps both versions (visits.sync.engine.apply_household_update); here a coordinator
sees them side by side and decides: keep the server's record, take the device's, or choose field
by field. Applying goes through neighborhoods.services.update_household, so every household rule
holds (a location inside the municipality …) and the household's version moves on, which is what
brings the result to the tablets on their next pull.

Values are compared as the sync shows a household (visits.sync.engine.household_data): a location as a
GeoJSON point, no living arrangement as "", risk flags as a set.
"""

import math
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pghistory
from django.apps import apps
from django.contrib.gis.geos import Point
from django.db import transaction
from django.db.models import F, FloatField, Func, OuterRef, QuerySet, Subquery, UUIDField
from django.db.models.functions import Cast, JSONObject
from django.utils import timezone

from accounts.models import User
from api.geo import point_out
from audit.models import AuditEvent
from audit.services import record_access
from backend.errors import Conflict, InvalidInput, NotFound
from backend.versioning import lock_at_version
from neighborhoods.access import visible_households
from neighborhoods.models import Household
from neighborhoods.services import update_household
from visits import access
from visits.models import ConflictOutcome, EditConflict
from visits.sync.engine import household_data

# What household.update may propose (visits.sync.engine.HouseholdUpdate, without its id), in the order
# they are shown.
FIELDS = ("status", "living_arrangement", "risk_flags", "location")

KEEP_SERVER, TAKE_DEVICE, MERGE = "keep_server", "take_device", "merge"
SERVER, DEVICE = "server", "device"
OUTCOMES = {KEEP_SERVER: ConflictOutcome.KEPT_SERVER, TAKE_DEVICE: ConflictOutcome.APPLIED_DEVICE,
            MERGE: ConflictOutcome.MERGED}
FIELD_LABELS = {"status": "居住状況", "living_arrangement": "世帯構成", "risk_flags": "気になる点", "location": "位置"}


# --- values -----------------------------------------------------------------------------------------


def _point(value: Any) -> Point | None:
    """A proposed location: a GeoJSON Point, or the first contract's {"lon", "lat"}."""
    if not isinstance(value, dict):
        return None
    coordinates = value.get("coordinates")
    if isinstance(coordinates, list) and len(coordinates) == 2:
        return Point(coordinates[0], coordinates[1], srid=4326)
    if "lon" in value and "lat" in value:
        return Point(value["lon"], value["lat"], srid=4326)
    return None


def shown(field: str, value: Any) -> Any:
    """A proposed (or recorded) value as the sync shows a household."""
    if field == "location":
        return point_out(_point(value))
    if field == "living_arrangement" and value is None:
        return ""
    return value


def as_change(field: str, value: Any) -> Any:
    """A proposed value as update_household takes it."""
    if field == "location":
        return _point(value)
    if field == "living_arrangement":
        return value or ""
    return value


def same(field: str, a: Any, b: Any) -> bool:
    if field == "risk_flags" and isinstance(a, list) and isinstance(b, list):
        return sorted(a) == sorted(b)
    if field == "location" and isinstance(a, dict) and isinstance(b, dict):
        (ax, ay), (bx, by) = a.get("coordinates", (None, None)), b.get("coordinates", (None, None))
        return all(isinstance(v, int | float) for v in (ax, ay, bx, by)) and (
            math.isclose(ax, bx, abs_tol=1e-7) and math.isclose(ay, by, abs_tol=1e-7)
        )
    return a == b


def proposed(conflict: EditConflict) -> dict[str, Any]:
    """The fields the device proposed, as the sync shows them."""
    data = conflict.proposed if isinstance(conflict.proposed, dict) else {}
    return {f: shown(f, data[f]) for f in FIELDS if f in data}


def differing(conflict: EditConflict, now: dict[str, Any] | None) -> list[str]:
    """The proposed fields whose value differs from the server's now (all of them when the
    household is gone)."""
    return [f for f, value in proposed(conflict).items() if now is None or not same(f, now.get(f), value)]


# --- reads ------------------------------------------------------------------------------------------


class _Lon(Func):
    function = "ST_X"
    output_field = FloatField()


class _Lat(Func):
    function = "ST_Y"
    output_field = FloatField()


def _household_now() -> Subquery:
    """The conflict's household as it is now, one JSON object per row (null when it is gone)."""
    household = Household.objects.filter(pk=Cast(OuterRef("object_id"), UUIDField())).values(
        now=JSONObject(
            id=F("id"), external_id=F("external_id"), address=F("address"), version=F("version"),
            status=F("status"), living_arrangement=F("living_arrangement"), risk_flags=F("risk_flags"),
            lon=_Lon(F("location")), lat=_Lat(F("location")),
        )
    )
    return Subquery(household[:1])


def household_now(row: dict | None) -> dict | None:
    """The list's annotation in the shape of visits.sync.engine.household_data."""
    if row is None:
        return None
    now = {k: v for k, v in row.items() if k not in ("lon", "lat")}
    now["location"] = None if row.get("lon") is None else point_out(Point(row["lon"], row["lat"], srid=4326))
    return now


STATES = ("open", "resolved", "all")


def list_conflicts(user: User, *, state: str = "open", household_id: UUID | None = None) -> QuerySet[EditConflict]:
    """The municipality's edit conflicts, newest first, each with its household as it is now
    (`household_now`): one query per page."""
    access.require_conflict_reader(user)
    conflicts = access.visible_conflicts(user)
    if state == "open":
        conflicts = conflicts.filter(resolved_at__isnull=True)
    elif state == "resolved":
        conflicts = conflicts.filter(resolved_at__isnull=False)
    if household_id is not None:
        conflicts = conflicts.filter(object_id=str(household_id))
    return (
        conflicts.select_related("user", "resolved_by", "op__device")
        .annotate(household_now=_household_now())
        .order_by("-created_at", "-pk")
    )


def get_conflict(user: User, conflict_id: int) -> EditConflict:
    access.require_conflict_reader(user)
    conflict = list_conflicts(user, state="all").filter(pk=conflict_id).first()
    if conflict is None:
        raise NotFound("No such edit conflict (編集の競合).")
    return conflict


def household_of(user: User, conflict: EditConflict) -> Household | None:
    return visible_households(user).filter(pk=conflict.object_id).first()


def at_version(household_id: Any, version: int) -> dict[str, Any] | None:
    """The household as it was at `version`, from its write history (None when not recorded)."""
    history = apps.get_model("neighborhoods", "HouseholdHistory")
    event = history.objects.filter(pgh_obj_id=household_id, version=version).order_by("-pgh_id").first()
    return None if event is None else household_data(event)


@dataclass(frozen=True)
class FieldComparison:
    field: str
    label: str
    base: Any  # at the version the device started from (None when unknown)
    base_known: bool
    server_copy: Any  # the server's value when the edit arrived
    server_now: Any
    device: Any
    differs: bool  # server now and device differ


def compare(conflict: EditConflict, household: Household | None) -> list[FieldComparison]:
    """Every field the device proposed, side by side."""
    base = at_version(conflict.object_id, conflict.base_version) if household is not None else None
    now = household_data(household) if household is not None else None
    copy = conflict.server_copy if isinstance(conflict.server_copy, dict) else {}
    return [
        FieldComparison(
            field=f, label=FIELD_LABELS[f], base=base.get(f) if base else None, base_known=base is not None,
            server_copy=copy.get(f), server_now=now.get(f) if now else None, device=value,
            differs=now is None or not same(f, now.get(f), value),
        )
        for f, value in proposed(conflict).items()
    ]


# --- the decision -----------------------------------------------------------------------------------


def _field_of(exc: InvalidInput, taken: list[str]) -> str | None:
    """The proposed field a household rule refused (its details name it last in their loc)."""
    for detail in exc.details if isinstance(exc.details, list) else []:
        loc = detail.get("loc") if isinstance(detail, dict) else None
        if loc and loc[-1] in taken:
            return str(loc[-1])
    return None


def _invalid(message: str, loc: list[str]) -> InvalidInput:
    return InvalidInput(message, details=[{"loc": loc, "msg": message}])


def _taken(conflict: EditConflict, now: dict[str, Any], resolution: str, choices: dict[str, str] | None) -> list[str]:
    """The proposed fields to apply, after checking the choices against this conflict."""
    offered = proposed(conflict)
    differ = differing(conflict, now)
    if resolution != MERGE:
        if choices:
            raise _invalid("Fields are chosen one by one only when merging (resolution: merge).", ["body", "fields"])
        return differ if resolution == TAKE_DEVICE else []
    choices = choices or {}
    for name in choices:
        if name not in offered:
            raise _invalid(f"The device did not propose {name} ({FIELD_LABELS.get(name, name)}) in this edit.",
                           ["body", "fields", name])
    for name in differ:
        if name not in choices:
            raise _invalid(
                f"{name} ({FIELD_LABELS[name]}) differs between the server and the device: choose server or device.",
                ["body", "fields", name],
            )
    return [f for f in differ if choices.get(f) == DEVICE]


@transaction.atomic
def resolve_conflict(
    *,
    user: User,
    conflict_id: int,
    resolution: str,
    household_version: int,
    fields: dict[str, str] | None = None,
    note: str = "",
    device_token_id: UUID | None = None,
    ip: str | None = None,
) -> EditConflict:
    """Decide an open conflict. The household must still be at `household_version` (what the
    coordinator looked at), else 409 stale_version with its version now; a decided conflict is 409
    already_resolved. The conflict row is locked, so two coordinators deciding at once get one
    answer each: the second is already_resolved."""
    access.require_conflict_resolver(user)
    conflict = access.visible_conflicts(user).select_for_update().filter(pk=conflict_id).first()
    if conflict is None:
        raise NotFound("No such edit conflict (編集の競合).")
    if conflict.resolved_at is not None:
        raise Conflict(
            "This edit conflict was already resolved.", code="already_resolved",
            details={"resolved_at": conflict.resolved_at.isoformat(), "resolution": conflict.resolution},
        )
    household = household_of(user, conflict)
    if household is None:
        raise NotFound("The household of this edit conflict no longer exists.")
    locked = lock_at_version(Household, household.pk, household_version, "household")
    taken = _taken(conflict, household_data(locked), resolution, fields)
    if taken:
        changes = {f: as_change(f, conflict.proposed[f]) for f in taken}
        try:
            with pghistory.context(edit_conflict=conflict.pk):
                locked = update_household(household=locked, base_version=household_version, changes=changes)
        except InvalidInput as exc:  # e.g. outside_municipality: named by the field that carried it
            field = _field_of(exc, taken)
            what = f"The device's {field} ({FIELD_LABELS[field]})" if field else "The device's edit"
            raise InvalidInput(
                f"{what} cannot be applied: {exc.message}", code=exc.code,
                details=[{"loc": ["body", "fields", *([field] if field else [])], "msg": exc.message}],
            ) from exc
    conflict.resolved_at = timezone.now()
    conflict.resolved_by = user
    conflict.resolution = OUTCOMES[resolution]
    conflict.resolution_note = note
    conflict.applied_fields = taken
    conflict.resolved_version = locked.version
    conflict.save(update_fields=["resolved_at", "resolved_by", "resolution", "resolution_note", "applied_fields",
                                 "resolved_version"])
    record_access(
        actor=user, object_type="visits.editconflict", object_id=conflict.pk, basis=f"role:{user.role}",
        action=AuditEvent.Action.CHANGE, device_token_id=device_token_id, ip=ip,
        detail={
            "household_id": str(locked.pk), "resolution": conflict.resolution, "fields_taken": taken,
            "fields_kept": [f for f in proposed(conflict) if f not in taken],
            "household_version": {"before": household_version, "after": locked.version},
        },
    )
    return conflict

