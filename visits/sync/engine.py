"""Offline sync with the field tablets (the contract: ../shared/SYNC.md).

Push: each operation is applied at most once. The batch's op_ids are claimed with one INSERT … ON
CONFLICT DO NOTHING, so a retry, or the same batch sent ten times in parallel, meets the primary key
instead of a read-then-write race; the same op_id with other content is refused. Rejections give
their claim back (a corrected retry is judged afresh). Runs of new visits are checked in Python and
written together in a few statements (visits.sync.bulk); every other op, and every op of a batch
whose set-based write fails, is applied alone in its own savepoint, with the same results.

Pull: the server knows what each device holds (DeviceHolding). A pull compares that with what the
user may see now: rows not held or changed since (a higher change_seq) are sent, held rows no
longer visible are listed for purging. A page's next_cursor confirms the page when presented, so a
lost response is pulled again with the previous cursor and gives the same page.
"""

import contextlib
import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID, uuid5

import orjson
import pghistory
from django.apps import apps
from django.contrib.gis.geos import Point
from django.core.exceptions import EmptyResultSet
from django.db import DataError, IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from pydantic import BaseModel, Field, ValidationError, field_validator

from accounts.access import municipality_id_of
from accounts.models import User
from accounts.roles import Role
from api.geo import DeviceFixIn, SyncPointIn, point_out
from api.schemas import PayloadModel, Unchanged
from backend.dates import FactDateTime
from backend.errors import Conflict, InvalidInput, PayloadTooLarge
from backend.text import Line, Note
from backend.vocabulary import CONCERN_CATEGORIES
from neighborhoods.access import visible_households
from neighborhoods.models import Household, HouseholdStatus, LivingArrangement, RiskFlag
from visits import access, forms, services
from visits.distances import haversine_m
from visits.models import (
    Campaign,
    Device,
    DeviceHolding,
    EditConflict,
    PullPage,
    ScheduledVisit,
    SurveyForm,
    SyncOperation,
    VisitRecord,
)
from visits.sync import bulk

logger = logging.getLogger("tsunagu.sync")

MAX_OPS = 500
MAX_PULL_LIMIT = 500
# A worker's device holds their schedule from a week back to four weeks ahead, not the town.
SCHEDULE_WINDOW = (dt.timedelta(days=7), dt.timedelta(days=28))
IMPLAUSIBLE_MIN_M = 150.0
KINDS = ["form", "household", "scheduled_visit"]  # others register theirs (see VISIBLE_PROVIDERS)


class Rejected(Exception):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details if details is not None else {}


class ConflictResult(Exception):
    def __init__(self, result: dict) -> None:
        super().__init__("conflict")
        self.result = result


# --- devices --------------------------------------------------------------------------------------


# Device ids are made by the tablets and named by each user in their own space: the row's key is
# derived from (user, device id), so registering an id that another user (of any municipality)
# registered simply registers it for you, and neither learns that the other exists.
_DEVICE_NAMESPACE = UUID("4c0f3b8e-6a1d-5d2e-9a57-2f1e0c7b9d31")


def _device_key(user: User, device_id: UUID) -> UUID:
    return uuid5(_DEVICE_NAMESPACE, f"{user.pk}:{device_id}")


def _own_device(user: User, device_id: UUID, *, lock: bool = False) -> Device | None:
    """The user's device with this id. Rows registered before ids were per user are keyed by the
    bare id; they are found only for their own user."""
    devices = Device.objects.select_for_update() if lock else Device.objects.all()
    found = {d.pk: d for d in devices.filter(pk__in=[_device_key(user, device_id), device_id], user=user)}
    return found.get(_device_key(user, device_id)) or found.get(device_id)


@transaction.atomic
def register_device(*, user: User, token, device_id: UUID, name: str, platform: str) -> Device:
    access.require_device_registrar(user)
    device = _own_device(user, device_id, lock=True)
    if device is None:
        device, _ = Device.objects.get_or_create(
            id=_device_key(user, device_id), user=user,
            defaults={"municipality_id": municipality_id_of(user), "token": token, "name": name,
                      "platform": platform},
        )
        return device
    device.token, device.name, device.platform = token, name or device.name, platform or device.platform
    device.save(update_fields=["token", "name", "platform"])
    return device


def device_for(*, user: User, device_id: UUID) -> Device:
    device = _own_device(user, device_id)
    if device is None:
        raise InvalidInput(
            "This device is not registered for this user: POST /api/v1/sync/devices first.",
            code="device_not_registered", details=[{"loc": ["body", "device_id"]}],
        )
    return device


# --- push -----------------------------------------------------------------------------------------


DEVICE_CORRECTION = "端末からの訂正（訪問記録の差し替え）"  # the reason when a superseding record gives none


class VisitCreate(PayloadModel):
    id: UUID
    household_id: UUID
    scheduled_visit_id: UUID | None = None
    outcome: VisitRecord.Outcome
    visited_at: FactDateTime
    form_key: Line = Field("household-visit", max_length=50)
    form_version: int | None = Field(None, ge=1, le=2**31 - 1)
    answers: dict = Field(default_factory=dict, max_length=500)
    notes: Note = Field("", max_length=10_000)
    met_person: Line = Field("", max_length=200)
    concerns: list[str] = Field(default_factory=list, max_length=len(CONCERN_CATEGORIES))
    location: DeviceFixIn | None = None
    supersedes: UUID | None = None
    correction_reason: Line | None = Field(None, min_length=1, max_length=300)

    @field_validator("concerns")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CONCERN_CATEGORIES]
        if unknown:
            raise ValueError(f"unknown concern categories {unknown}; known: {sorted(CONCERN_CATEGORIES)}")
        return value


class HouseholdUpdate(PayloadModel):
    """Absent fields stay as they are; null clears only the living arrangement and the location."""

    id: UUID
    status: HouseholdStatus = Unchanged()
    living_arrangement: LivingArrangement | None = Unchanged()
    risk_flags: list[RiskFlag] = Unchanged(max_length=len(RiskFlag))
    location: SyncPointIn | None = Unchanged()


# The digests stored with the claims are compared with those of retries: this text must never
# change. One encoder for every op (json.dumps with these options would build one per call).
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_hash(op: dict) -> str:
    body = {"kind": op.get("kind"), "data": op.get("data"), "base_version": op.get("base_version")}
    # surrogatepass: a lone surrogate in a payload is rejected by the op's schema, not a 500 here.
    text = _CANONICAL_JSON.encode(body)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def push(*, user: User, device: Device, ops: list[dict]) -> list[dict]:
    """Apply a batch: one transaction (one durable commit before the device hears "applied"),
    each op in its own savepoint so one op's failure never undoes another's. If the database
    aborts the batch (a deadlock with a parallel batch in another order), the whole batch is
    tried again: nothing of the aborted attempt was kept. A set-based write has no savepoint of
    its own (two statements fewer for every batch): when one fails, the batch is tried again with
    every op in its own savepoint."""
    access.require_pusher(user)
    if len(ops) > MAX_OPS:
        raise PayloadTooLarge(f"At most {MAX_OPS} operations per push; this one has {len(ops)}.", code="too_many_ops")
    set_based, deadlocks = True, 0
    while True:
        try:
            with transaction.atomic():
                return _apply_batch(user, device, ops, BatchContext(user, ops, set_based=set_based))
        except SetBasedWriteFailed as failed:
            logger.info("sync push: a set-based group of %d visits failed (%s); applied one by one", failed.size, failed.__cause__)
            set_based = False
        except OperationalError as exc:
            deadlocks += 1
            if deadlocks == 3:
                raise
            logger.warning("sync push of %d ops retried after %s", len(ops), exc)


class SetBasedWriteFailed(Exception):
    """The database refused a set-based group (a record id that exists already): the batch's
    transaction is aborted, and the batch is applied again one op at a time."""

    def __init__(self, size: int) -> None:
        super().__init__(f"a set-based group of {size} visits failed")
        self.size = size


class BatchContext:
    """Lookups shared by the ops of one batch, so each op costs a few statements, not a dozen."""

    def __init__(self, user: User, ops: list[dict], *, set_based: bool = True) -> None:
        # False once a set-based write of this batch failed: every op is then applied alone.
        self.set_based = set_based
        ids: set[UUID] = set()
        for op in ops:
            raw = op.get("data")
            data = raw if isinstance(raw, dict) else {}
            # A household is named by household_id, or by id in an edit of the household itself.
            for key in ("household_id", "id") if op.get("kind") == "household.update" else ("household_id",):
                with contextlib.suppress(ValueError):
                    ids.add(UUID(str(data.get(key))))
        self.households = _visible_locations(user, ids) if ids else {}
        self.forms: dict[tuple[str, int], SurveyForm | None] = {}
        # Scheduled visits locked for a set-based group (bulk.py), as this transaction left them.
        self.scheduled: dict[str, ScheduledVisit] = {}
        # Each visit's data parsed once (by op_id: only an op_id's first copy is ever applied),
        # whether it is first read for its expected result, its group or its own savepoint.
        self._visits: dict[str, VisitCreate | Rejected] = {}
        self._fixes: dict[str, DeviceFix] = {}

    def visit_data(self, op: dict) -> VisitCreate:
        key = str(op["op_id"])
        if key not in self._visits:
            try:
                self._visits[key] = _parse(VisitCreate, op.get("data"))
            except Rejected as rejected:
                self._visits[key] = rejected
        parsed = self._visits[key]
        if isinstance(parsed, Rejected):
            raise Rejected(parsed.code, parsed.message, parsed.details)
        return parsed

    def device_fix(self, op: dict, data: VisitCreate) -> "DeviceFix":
        """Where the device was for a visit of a household the pusher may see, worked out once (for
        its expected result and again for its row)."""
        key = str(op["op_id"])
        if key not in self._fixes:
            self._fixes[key] = DeviceFix.of(self.household_at(data.household_id), data)
        return self._fixes[key]

    def visible(self, household_id: UUID) -> bool:
        return household_id in self.households

    def household_at(self, household_id: UUID) -> tuple[float, float] | None:
        """Where a household the pusher may see is; one they may not see is `not_assigned`."""
        if not self.visible(household_id):
            raise Rejected("not_assigned", "This household is not one you may record visits for.")
        return self.households[household_id]

    def form(self, municipality_id: int, key: str, version: int) -> SurveyForm | None:
        if (key, version) not in self.forms:
            self.forms[(key, version)] = SurveyForm.objects.filter(
                municipality_id=municipality_id, key=key, version=version
            ).first()
        return self.forms[(key, version)]

    def lock_scheduled(self, user: User, ops: list[dict]) -> None:
        """Lock the scheduled visits a group's visits name, in one statement (in id order, as
        parallel batches would), with their campaigns: a first outcome needs max_attempts."""
        ids = set()
        for op in ops:
            with contextlib.suppress(ValueError):
                ids.add(UUID(str(op["data"].get("scheduled_visit_id"))))
        if not ids:
            return
        visits = (
            ScheduledVisit.objects.select_for_update(of=("self",)).select_related("campaign")
            .filter(pk__in=ids, municipality_id=municipality_id_of(user)).order_by("pk")
        )
        self.scheduled.update({str(v.pk): v for v in visits})


def _visible_locations(user: User, ids: set[UUID]) -> dict[UUID, tuple[float, float] | None]:
    """The households among `ids` the user may see, with their (lon, lat): read as numbers, no
    model instances or geometries (a batch names up to 500). Who may see a household is
    neighborhoods.access's condition, compiled alone; the ids go as one array parameter, where a
    queryset's `pk__in` binds and quotes each of them (a third of the lookup's time)."""
    scope = visible_households(user)
    try:
        condition, params = scope.query.get_compiler(connection=connection).compile(scope.query.where)
    except EmptyResultSet:  # a role that sees no households
        return {}
    sql = (
        'SELECT "neighborhoods_household".id, ST_X(location), ST_Y(location) FROM "neighborhoods_household"'  # noqa: S608 - the ORM's condition
        f' WHERE "neighborhoods_household".id = ANY(%s::uuid[]) AND {condition}'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ["{" + ",".join(map(str, ids)) + "}", *params])
        return {pk: (x, y) if x is not None else None for pk, x, y in cursor.fetchall()}


def _rejected(op: dict, code: str, message: str, details: Any = None) -> dict:
    error = {"code": code, "message": message, "details": details if details is not None else {}}
    return {"op_id": str(op.get("op_id")), "status": "rejected", "error": error}


APPLIERS = {}


def _apply_batch(user: User, device: Device, ops: list[dict], context: BatchContext) -> list[dict]:
    """Claim the batch's op_ids in one statement, each with the result it is expected to have;
    apply the claimed ops in order, consecutive new visits together in a few set-based statements
    (bulk.py) and every other op in its own savepoint; then release the claims of rejected ops and
    store the results that differ from the expected ones, again one statement each (none when
    every new visit was applied as expected). A second copy of an op_id in the batch answers like a
    retry, from its first."""
    digests = [canonical_hash(op) for op in ops]
    claimable: dict[str, tuple[str, str, dict]] = {}
    for op, digest in zip(ops, digests, strict=True):
        op_id = str(op["op_id"])
        if op["kind"] in APPLIERS and op_id not in claimable:
            claimable[op_id] = (op["kind"], digest, _expected_result(user, op, context))
    claimed = _claim(user, device, claimable)
    # A retried batch is mostly ops applied before: read them all at once, not one query each.
    unclaimed = [op_id for op_id in claimable if op_id not in claimed]
    earlier = {str(o.pk): o for o in SyncOperation.objects.filter(pk__in=unclaimed)} if unclaimed else {}
    results: list[dict] = [{} for _ in ops]
    first: dict[str, tuple[str, int]] = {}  # op_id → (digest, position) of its first copy in this batch
    repeats: list[int] = []
    group: list[int] = []  # positions of consecutive new visits, written together
    for position, (op, digest) in enumerate(zip(ops, digests, strict=True)):
        op_id = str(op["op_id"])
        if op["kind"] not in APPLIERS:
            results[position] = _rejected(op, "unsupported_kind", f"Unknown operation kind {op['kind']!r}; known: {sorted(APPLIERS)}.")
        elif op_id in first:
            repeats.append(position)
        elif op_id not in claimed:
            results[position] = _earlier_result(op, digest, user, earlier.get(op_id))
        else:
            first[op_id] = (digest, position)
            if context.set_based and _groupable(op):
                group.append(position)
                continue
            _apply_group(user, device, ops, group, results, context)
            group = []
            results[position] = _apply_claimed(user, device, op, context)
    _apply_group(user, device, ops, group, results, context)
    for position in repeats:
        first_digest, first_position = first[str(ops[position]["op_id"])]
        results[position] = _repeat(ops[position], digests[position], first_digest, results[first_position])
    released = [op_id for op_id, (_d, p) in first.items() if results[p]["status"] == "rejected"]
    stored = {}
    for op_id, (_d, p) in first.items():
        result = {k: v for k, v in results[p].items() if k != "op_id"}
        if result["status"] != "rejected" and result != claimable[op_id][2]:
            stored[op_id] = result
    with connection.cursor() as cursor:
        if released:  # a rejected op is judged afresh when sent again
            cursor.execute("DELETE FROM visits_syncoperation WHERE op_id = ANY(%s::uuid[])", [released])
        if stored:
            cursor.execute(  # one JSON object {op_id: result}: one parameter, written by orjson
                "UPDATE visits_syncoperation s SET result = v.value"
                " FROM jsonb_each(%s::jsonb) AS v WHERE s.op_id = v.key::uuid",
                [orjson.dumps(stored, option=orjson.OPT_NON_STR_KEYS).decode()],
            )
    return results


def _expected_result(user: User, op: dict, context: BatchContext) -> dict:
    """What an op will answer when it goes as most do: a new visit of a household the pusher may
    see, applied by the set-based write. Stored with the claim, so that such a batch writes no
    results afterwards; any other op, or one that ends otherwise, has its result written after it
    is applied (and a rejected op gives its claim back). Reads only what the batch's context has."""
    if not _groupable(op) or not access.may_record_visits(user):
        return {}
    try:
        data = context.visit_data(op)
    except Rejected:
        return {}
    if not context.visible(data.household_id):
        return {}
    fix = context.device_fix(op, data)
    return {"status": "applied", "id": str(data.id), "version": 1, "flags": fix.flags()}


def _groupable(op: dict) -> bool:
    """A new visit that corrects nothing may join a set-based group; whether it really can is
    decided when the group is checked (_apply_group)."""
    data = op.get("data")
    return op["kind"] == "visit.create" and isinstance(data, dict) and not data.get("supersedes")


def _apply_group(
    user: User, device: Device, ops: list[dict], positions: list[int], results: list[dict], context: BatchContext
) -> None:
    """Check a run of new visits in Python and write those whose effect is certain together; a
    visit the set-based write does not cover (after a reassignment, or its scheduled visit already
    recorded, cancelled or named twice) is applied alone in its place, after what came before it
    is written, so the results are those of applying the ops one by one."""
    if not positions:
        return
    context.lock_scheduled(user, [ops[p] for p in positions])
    pending: list[int] = []
    group = bulk.VisitGroup()
    for position in positions:
        op = ops[position]
        try:
            planned = _plan_visit(user, op, context)
        except Rejected as rejected:
            results[position] = _rejected(op, rejected.code, rejected.message, rejected.details)
            continue
        if planned is None or (planned[1] is not None and planned[1].visit in group.visits()):
            _write_group(user, device, ops, pending, group)
            pending, group = [], bulk.VisitGroup()
            results[position] = _apply_claimed(user, device, op, context)
            continue
        row, outcome, flags = planned
        pending.append(position)
        group.rows.append(row)
        if outcome is not None:
            group.outcomes.append(outcome)
        results[position] = {"op_id": str(op["op_id"]), "status": "applied", "id": str(row.id), "version": 1, "flags": flags}
    _write_group(user, device, ops, pending, group)


def _write_group(user: User, device: Device, ops: list[dict], positions: list[int], group: bulk.VisitGroup) -> None:
    """The group's records and first outcomes, with no savepoint: if the database refuses them (a
    record id that exists already), the batch's transaction is aborted and push() applies the
    batch again, each op in its own savepoint."""
    if not group:
        return
    try:
        bulk.insert_visit_records(
            municipality_id=municipality_id_of(user), worker_id=user.pk, device_id=device.pk, rows=group.rows
        )
        if group.outcomes:
            op_ids = [str(ops[p]["op_id"]) for p in positions]
            with pghistory.context(user=user.pk, device=str(device.pk), ops=op_ids):
                bulk.record_first_outcomes(group.outcomes)
    except (IntegrityError, DataError) as exc:
        raise SetBasedWriteFailed(len(positions)) from exc


def _claim(user: User, device: Device, claimable: dict[str, tuple[str, str, dict]]) -> set[str]:
    """INSERT … ON CONFLICT DO NOTHING: an op_id already applied (or being applied by a parallel
    batch, which this statement waits for) is not claimed again. Each claim holds its expected
    result until the batch's end corrects it. The same statement notes the device's push (its
    last_push_at), which locks the device's row: pushes of one device take turns."""
    claims = [
        {"op_id": op_id, "kind": kind, "digest": digest, "result": expected}
        for op_id, (kind, digest, expected) in claimable.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH pushed AS (UPDATE visits_device SET last_push_at = now() WHERE id = %s)"
            " INSERT INTO visits_syncoperation (op_id, municipality_id, device_id, user_id, kind, payload_sha256, result, applied_at)"
            " SELECT v.op_id, %s, %s, %s, v.kind, v.digest, v.result, now()"
            " FROM jsonb_to_recordset(%s::jsonb) AS v(op_id uuid, kind text, digest text, result jsonb)"
            " ON CONFLICT (op_id) DO NOTHING RETURNING op_id",
            [str(device.pk), municipality_id_of(user), str(device.pk), user.pk, orjson.dumps(claims).decode()],
        )
        return {str(row[0]) for row in cursor.fetchall()}


def _repeat(op: dict, digest: str, first_digest: str, first_result: dict) -> dict:
    """The same op_id twice in one batch: the second copy answers like a retry would."""
    if digest != first_digest:
        return _rejected(op, "op_id_reused", "This op_id was used before for a different operation.")
    result = dict(first_result)
    if result.get("status") == "applied":
        result["status"] = "duplicate"
    return result


def _apply_claimed(user: User, device: Device, op: dict, context: BatchContext) -> dict:
    op_id = op["op_id"]
    applier = APPLIERS[op["kind"]]
    try:
        with transaction.atomic():  # the op's savepoint
            try:
                if _touches_tracked_tables(op):
                    with pghistory.context(user=user.pk, device=str(device.pk), op=str(op_id)):
                        result = applier(user=user, device=device, op=op, context=context)
                else:
                    result = applier(user=user, device=device, op=op, context=context)
            except ConflictResult as conflict:
                result = conflict.result
            return {"op_id": str(op_id), **result}
    except Rejected as rejected:
        return _rejected(op, rejected.code, rejected.message, rejected.details)
    except IntegrityError:
        # e.g. a record id already used by another operation: this op's savepoint is undone.
        return _rejected(op, "id_exists", "A record with this id exists (from another operation).")


def _touches_tracked_tables(op: dict) -> bool:
    """Ops that change rows with a write history (households, scheduled visits) run inside a
    pghistory context naming the user, device and op."""
    raw = op.get("data")
    data = raw if isinstance(raw, dict) else {}
    return op.get("kind") == "household.update" or bool(data.get("scheduled_visit_id"))


def _earlier_result(op: dict, digest: str, user: User, earlier: SyncOperation | None) -> dict:
    # None: the op_id is another municipality's (row-level security hides it); told like any reuse.
    if earlier is None or earlier.payload_sha256 != digest or earlier.user_id != user.pk:
        return _rejected(op, "op_id_reused", "This op_id was used before for a different operation.")
    result = dict(earlier.result)
    if result.get("status") == "applied":
        result["status"] = "duplicate"
    return {"op_id": str(op["op_id"]), **result}


P = TypeVar("P", bound=BaseModel)


def _parse(model: type[P], data: Any) -> P:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [{"loc": ["data", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()]
        raise Rejected("invalid", "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details), details) from exc


def _visit_data(user: User, op: dict, context: BatchContext) -> VisitCreate:
    if not access.may_record_visits(user):
        raise Rejected("forbidden", "Only outreach workers and coordinators record visits.")
    return context.visit_data(op)


def _visit_form(user: User, data: VisitCreate, context: BatchContext) -> SurveyForm | None:
    """The form the answers were made with, and the answers checked against it."""
    if data.form_version is None:
        if data.answers:
            raise Rejected("invalid_answers", "Answers need the form_version they were made with.")
        return None
    form = context.form(municipality_id_of(user), data.form_key, data.form_version)
    if form is None:
        raise Rejected("unknown_form", f"No form {data.form_key!r} version {data.form_version}.")
    errors = forms.answer_errors(form.definition, data.answers, complete=data.outcome == "met")
    if errors:
        raise Rejected("invalid_answers", "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors), errors)
    return form


@dataclass
class DeviceFix:
    """Where the device was, and how far that is from the household (great-circle metres)."""

    lon: float | None
    lat: float | None
    accuracy_m: float | None
    distance_m: float | None
    implausible: bool

    @classmethod
    def of(cls, household_at: tuple[float, float] | None, data: VisitCreate) -> "DeviceFix":
        if data.location is None:
            return cls(None, None, None, None, False)
        lon, lat, accuracy = data.location.lon, data.location.lat, data.location.accuracy_m
        distance = haversine_m(*household_at, lon, lat) if household_at is not None else None
        implausible = distance is not None and distance > max(IMPLAUSIBLE_MIN_M, 3 * (accuracy or 0))
        return cls(lon, lat, accuracy, distance, implausible)

    def point(self) -> Point | None:
        return Point(self.lon, self.lat, srid=4326) if self.lon is not None and self.lat is not None else None

    def flags(self, *, after_reassignment: bool = False) -> dict[str, Any]:
        flags: dict[str, Any] = {
            "location_implausible": self.implausible,
            "distance_m": round(self.distance_m) if self.distance_m is not None else None,
        }
        if after_reassignment:
            flags["after_reassignment"] = True
        return flags


def lon_lat(point: Point | None) -> tuple[float, float] | None:
    if point is None:
        return None
    lon, lat = point.coords[:2]
    return lon, lat


def _not_in_corporation(user: User, scheduled: ScheduledVisit | None, household_id: UUID) -> bool:
    return (
        scheduled is None or scheduled.household_id != household_id
        or (user.role == Role.OUTREACH_WORKER and scheduled.partner_organization_id != user.partner_organization_id)
    )


NOT_IN_CORPORATION = "No such scheduled visit for this household in your corporation."
OPEN_STATUSES = (ScheduledVisit.Status.PLANNED, ScheduledVisit.Status.ISSUED)


def _plan_visit(user: User, op: dict, context: BatchContext) -> tuple[bulk.VisitRow, bulk.FirstOutcome | None, dict] | None:
    """A new visit checked as apply_visit_create checks it (the same rejections, in the same
    order), for the set-based write: its row, the first outcome it brings to its scheduled visit,
    its flags. None when the set-based write does not cover it: the op is applied alone."""
    data = _visit_data(user, op, context)
    if not context.visible(data.household_id):
        return None  # perhaps recorded before a reassignment: _left_after_visit decides, alone
    outcome = None
    if data.scheduled_visit_id:
        scheduled = context.scheduled.get(str(data.scheduled_visit_id))
        if scheduled is None or _not_in_corporation(user, scheduled, data.household_id):
            raise Rejected("not_assigned", NOT_IN_CORPORATION)
        if scheduled.status not in OPEN_STATUSES:
            return None  # recorded or cancelled: services.record_outcome decides, alone
        outcome = bulk.FirstOutcome(visit=scheduled, outcome=data.outcome)
    form = _visit_form(user, data, context)
    fix = context.device_fix(op, data)
    row = bulk.VisitRow(
        id=data.id, op_id=str(op["op_id"]), household_id=data.household_id, scheduled_visit_id=data.scheduled_visit_id,
        outcome=data.outcome, met_person=data.met_person, form_id=form.pk if form else None, answers=data.answers,
        notes=data.notes, concerns=data.concerns, visited_at=data.visited_at,
        lon=fix.lon, lat=fix.lat,
        accuracy_m=fix.accuracy_m, distance_m=fix.distance_m, implausible=fix.implausible,
    )
    return row, outcome, fix.flags()


def apply_visit_create(*, user: User, device: Device, op: dict, context: BatchContext) -> dict:
    """One visit, alone in its savepoint: every case, corrections and records made before a
    reassignment included (the set-based path, _plan_visit, covers the common ones)."""
    data = _visit_data(user, op, context)
    after_reassignment = not context.visible(data.household_id)
    if after_reassignment:  # recorded offline before the household left this worker? (SYNC.md)
        household_at, scheduled = _left_after_visit(user, data)
    else:
        household_at, scheduled = context.household_at(data.household_id), None
    if data.scheduled_visit_id and not after_reassignment:
        scheduled = ScheduledVisit.objects.filter(
            pk=data.scheduled_visit_id, household_id=data.household_id, municipality_id=municipality_id_of(user)
        ).first()
        if _not_in_corporation(user, scheduled, data.household_id):
            raise Rejected("not_assigned", NOT_IN_CORPORATION)
    form = _visit_form(user, data, context)
    earlier = None
    if data.supersedes:
        earlier = VisitRecord.objects.filter(pk=data.supersedes, municipality_id=municipality_id_of(user), household_id=data.household_id).first()
        if earlier is None:
            raise Rejected("unknown_record", "The record to supersede does not exist for this household.")
        if VisitRecord.objects.filter(supersedes=earlier).exists():
            raise Rejected("already_superseded", "That record was already corrected; supersede the newest correction.")
    fix = DeviceFix.of(household_at, data)
    record = VisitRecord.objects.create(
        id=data.id, municipality_id=municipality_id_of(user), household_id=data.household_id, scheduled_visit=scheduled,
        worker=user, device=device, op_id=op["op_id"], outcome=data.outcome, met_person=data.met_person,
        form=form, answers=data.answers, notes=data.notes, concerns=data.concerns, visited_at=data.visited_at,
        location=fix.point(), accuracy_m=fix.accuracy_m, distance_m=fix.distance_m,
        location_implausible=fix.implausible, supersedes=earlier,
    )
    # The scheduled visit's outcome: recorded by a first record, corrected by one that supersedes a
    # record of the same visit (with its reason, kept with who and when); a second record of a visit
    # with another outcome that supersedes nothing is refused (outcome_recorded), never dropped.
    target = scheduled if scheduled is not None else (earlier.scheduled_visit if earlier is not None else None)
    if target is not None and not after_reassignment:
        correcting = (
            earlier is not None and earlier.scheduled_visit_id == target.pk
            and target.status in (ScheduledVisit.Status.DONE, ScheduledVisit.Status.ABSENT)
        )
        try:
            services.record_outcome(
                visit=target, outcome=data.outcome, by=user,
                correction_reason=(data.correction_reason or DEVICE_CORRECTION) if correcting else None,
                visit_record=record if correcting else None,
            )
        except (Conflict, InvalidInput) as exc:
            raise Rejected(exc.code, exc.message, exc.details) from exc
    return {"status": "applied", "id": str(record.pk), "version": 1, "flags": fix.flags(after_reassignment=after_reassignment)}


def _left_after_visit(user: User, data: VisitCreate) -> tuple[tuple[float, float] | None, ScheduledVisit]:
    """A visit to a household this worker may no longer see is kept when it was recorded while the
    household was still theirs: the op names a scheduled visit that was this worker's (whatever its
    status now, cancelled by the reassignment included) and `visited_at` is not after the moment
    that visit left them (its write history: reassigned to someone else, or cancelled). Anything
    else is `not_assigned`, as for a household the worker never had."""
    not_assigned = Rejected("not_assigned", "This household is not one you may record visits for.")
    if not data.scheduled_visit_id or user.role != Role.OUTREACH_WORKER:
        raise not_assigned
    scheduled = ScheduledVisit.objects.filter(
        pk=data.scheduled_visit_id, household_id=data.household_id, municipality_id=municipality_id_of(user)
    ).select_related("household").first()
    if scheduled is None:
        raise not_assigned
    was_theirs, left_at = False, None
    history = apps.get_model("visits", "ScheduledVisitHistory").objects.filter(pgh_obj_id=scheduled.pk)
    for worker_id, status, at in history.order_by("pgh_id").values_list("worker_id", "status", "pgh_created_at"):
        if worker_id == user.pk and status != ScheduledVisit.Status.CANCELLED:
            was_theirs, left_at = True, None
        elif was_theirs and left_at is None:
            left_at = at
    if not was_theirs or (left_at is not None and data.visited_at > left_at):
        raise not_assigned
    return lon_lat(scheduled.household.location), scheduled


def household_data(h: Household) -> dict:
    return {
        "id": str(h.pk), "external_id": h.external_id, "address": h.address, "address_kana": h.address_kana,
        "location": point_out(h.location), "neighborhood_id": h.neighborhood_id, "status": h.status,
        "living_arrangement": h.living_arrangement, "risk_flags": list(h.risk_flags), "version": h.version,
    }


def apply_household_update(*, user: User, device: Device, op: dict, context: BatchContext) -> dict:
    if not access.may_edit_households_in_field(user):
        raise Rejected("forbidden", "Only outreach workers and coordinators edit households.")
    data: HouseholdUpdate = _parse(HouseholdUpdate, op.get("data"))
    base = op.get("base_version")
    if not isinstance(base, int) or isinstance(base, bool) or base < 1:
        raise Rejected("invalid", "household.update needs base_version: the version the edit was based on.")
    context.household_at(data.id)  # not_assigned unless the pusher may see it
    locked = Household.objects.select_for_update().get(pk=data.id)
    changes = data.model_dump(exclude_unset=True, exclude={"id"})
    if "location" in changes:
        changes["location"] = data.location.to_geos() if data.location else None
    if "living_arrangement" in changes and changes["living_arrangement"] is None:
        changes["living_arrangement"] = ""
    if locked.version != base:
        EditConflict.objects.create(
            municipality_id=municipality_id_of(user), kind="household", object_id=str(locked.pk), base_version=base,
            server_version=locked.version, proposed=_jsonable(op.get("data")), server_copy=household_data(locked),
            op_id=op["op_id"], user=user,
        )
        raise ConflictResult({
            "status": "conflict",
            "error": {"code": "stale_version",
                      "message": f"The household is at version {locked.version}; this edit was based on {base}. "
                                 "Both versions are kept for a coordinator to resolve."},
            "server": {"version": locked.version, "data": household_data(locked)},
        })
    from neighborhoods.services import update_household

    try:
        updated = update_household(household=locked, base_version=base, changes=changes)
    except (InvalidInput, Conflict) as exc:  # outside_municipality, household_merged: this op alone is rejected
        raise Rejected(exc.code, exc.message, exc.details) from exc
    return {"status": "applied", "id": str(updated.pk), "version": updated.version}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


APPLIERS.update({"visit.create": apply_visit_create, "household.update": apply_household_update})


# --- pull -----------------------------------------------------------------------------------------


@dataclass
class PullResult:
    changes: list[dict]
    purge: list[dict]
    next_cursor: str
    has_more: bool


def visible_set(user: User) -> dict[tuple[str, str], int]:
    """What this user's device may hold now, with each row's change_seq. Bounded: a worker's
    schedule window and its households, a commissioner's 自治会, and the forms."""
    visible: dict[tuple[str, str], int] = {}
    for form_id, seq in SurveyForm.objects.filter(municipality_id=municipality_id_of(user), published=True).values_list("pk", "change_seq"):
        visible[("form", str(form_id))] = seq
    if user.role == Role.OUTREACH_WORKER:
        today = timezone.localdate()
        visits = (
            ScheduledVisit.objects.filter(
                worker=user, date__gte=today - SCHEDULE_WINDOW[0], date__lte=today + SCHEDULE_WINDOW[1],
                partner_organization_id=user.partner_organization_id,
            )
            .exclude(status=ScheduledVisit.Status.CANCELLED)
            .filter(campaign__status=Campaign.Status.RUNNING)  # only started campaigns reach the field
        )
        rows = list(visits.values_list("pk", "change_seq", "household_id"))
        households = visible_households(user).filter(pk__in={household_id for _, _, household_id in rows})
        seen = dict(households.values_list("pk", "change_seq"))
        for hid, seq in seen.items():
            visible[("household", str(hid))] = seq
        # A visit goes with its household: one the worker may no longer see (its 自治会 moved to
        # another corporation) takes its visits with it, purged in the same page.
        for visit_id, seq, household_id in rows:
            if household_id in seen:
                visible[("scheduled_visit", str(visit_id))] = seq
    elif user.role == Role.COMMISSIONER:
        for hid, seq in visible_households(user).values_list("pk", "change_seq"):
            visible[("household", str(hid))] = seq
    for provider in VISIBLE_PROVIDERS:
        visible.update(provider(user))
    return visible


# Other apps add kinds to the sync (outreach: concerns and cases) through these registries, filled
# in their AppConfig.ready(): APPLIERS[kind] for push, a provider of (kind, id) → change_seq for
# what a user's device may hold, and SERIALIZERS[kind] turning ids into {id: {"version", "data"}}.
VISIBLE_PROVIDERS: list = []
SERIALIZERS: dict = {}


def _serialize(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    by_kind: dict[str, list[str]] = {}
    for kind, oid in keys:
        by_kind.setdefault(kind, []).append(oid)
    out: dict[tuple[str, str], dict] = {}
    for h in Household.objects.filter(pk__in=by_kind.get("household", [])):
        out[("household", str(h.pk))] = {"version": h.version, "data": household_data(h)}
    for v in ScheduledVisit.objects.filter(pk__in=by_kind.get("scheduled_visit", [])):
        out[("scheduled_visit", str(v.pk))] = {"version": v.version, "data": {
            "id": str(v.pk), "campaign_id": v.campaign_id, "household_id": str(v.household_id),
            "date": v.date.isoformat(), "time_band": v.time_band, "route_order": v.route_order,
            "attempt": v.attempt, "priority": v.priority, "status": v.status, "version": v.version,
        }}
    for f in SurveyForm.objects.filter(pk__in=by_kind.get("form", [])):
        out[("form", str(f.pk))] = {"version": f.version, "data": {
            "id": f.pk, "key": f.key, "version": f.version, "title": f.title, "definition": f.definition,
        }}
    for kind, serializer in SERIALIZERS.items():
        for oid, body in serializer(by_kind.get(kind, [])).items():
            out[(kind, oid)] = body
    return out


def pull(*, user: User, device: Device, cursor: str, limit: int) -> PullResult:
    limit = max(1, min(limit, MAX_PULL_LIMIT))
    with transaction.atomic():
        Device.objects.select_for_update().filter(pk=device.pk).first()  # one pull per device at a time
        if not cursor:
            DeviceHolding.objects.filter(device=device).delete()
        else:
            _confirm(device, cursor)
        if user.role == Role.OUTREACH_WORKER:
            # What the worker's device now holds for today counts as handed out: re-planning keeps it.
            services.issue_visits(worker=user, date=timezone.localdate())
        visible = visible_set(user)
        held = {(k, o): s for k, o, s in DeviceHolding.objects.filter(device=device).values_list("kind", "object_id", "seq")}
        delta = sorted(
            (seq, kind, oid) for (kind, oid), seq in visible.items() if held.get((kind, oid), -1) < seq
        )
        purge = sorted(key for key in held if key not in visible)
        page = delta[:limit]
        payloads = _serialize([(k, o) for _, k, o in page])
        changes = []
        items = []
        for seq, kind, oid in page:
            body = payloads.get((kind, oid))
            if body is None:  # deleted between the two queries: it will be purged next time
                continue
            changes.append({"kind": kind, "id": oid, **body})
            items.append([kind, oid, seq])
        purges = [[k, o] for k, o in purge]
        token = hashlib.sha256(
            json.dumps([str(device.pk), cursor, items, purges], separators=(",", ":")).encode()
        ).hexdigest()[:40]
        PullPage.objects.get_or_create(id=token, defaults={"device": device, "items": items, "purges": purges})
        PullPage.objects.filter(device=device, created_at__lt=timezone.now() - dt.timedelta(days=7)).delete()
        Device.objects.filter(pk=device.pk).update(last_pull_at=timezone.now())
    return PullResult(
        changes=changes, purge=[{"kind": k, "id": o} for k, o in purge], next_cursor=token, has_more=len(delta) > limit
    )


def _confirm(device: Device, cursor: str) -> None:
    """The device presents a page's cursor: it stored that page. Its rows join the holdings and its
    purges leave them. Confirming the same page twice changes nothing."""
    page = PullPage.objects.filter(pk=cursor, device=device).first()
    if page is None:
        raise Conflict("Unknown or expired cursor: drop local data and pull from an empty cursor.", code="resync_required")
    # Set-based: one upsert for the page's rows and one delete for its purges, whatever their number.
    with connection.cursor() as cur:
        if page.items:
            cur.execute(
                "INSERT INTO visits_deviceholding (device_id, kind, object_id, seq)"
                " SELECT %s, v.kind, v.object_id, v.seq FROM unnest(%s::text[], %s::text[], %s::bigint[])"
                " AS v(kind, object_id, seq)"
                " ON CONFLICT (device_id, kind, object_id) DO UPDATE SET seq = EXCLUDED.seq",
                [str(device.pk), *map(list, zip(*page.items, strict=True))],
            )
        if page.purges:
            cur.execute(
                "DELETE FROM visits_deviceholding h USING unnest(%s::text[], %s::text[]) AS v(kind, object_id)"
                " WHERE h.device_id = %s AND h.kind = v.kind AND h.object_id = v.object_id",
                [*map(list, zip(*page.purges, strict=True)), str(device.pk)],
            )


def holdings_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def check(*, device: Device, holdings: dict[str, str]) -> None:
    """The device's digest of what it holds per kind against the server's record. A mismatch
    clears the server's record and tells the device to resync from scratch."""
    held: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for kind, oid in DeviceHolding.objects.filter(device=device).values_list("kind", "object_id"):
        held.setdefault(kind, []).append(oid)
    mismatched = [kind for kind in sorted(set(held) | set(holdings)) if holdings.get(kind, holdings_digest([])) != holdings_digest(held.get(kind, []))]
    if mismatched:
        DeviceHolding.objects.filter(device=device).delete()
        raise Conflict(
            "The device's data differs from what the server sent it: drop local data and pull from an empty cursor.",
            code="resync_required", details={"kinds": mismatched},
        )


