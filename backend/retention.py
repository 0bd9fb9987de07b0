"""保存年限: purging the personal records whose retention period has passed.

Each kind of record is kept for a number of years (``settings.TSUNAGU_RETENTION``, from the
environment) counted on its own clock:

=========  ============================================================  =============================
kind       what goes                                                     counted from
=========  ============================================================  =============================
case       a closed case with its contacts, 支援会議, support plans and    ``closed_on``
           concerns (their transitions and write history too)
visit      visit records with their photos (rows and files); the         the end of the campaign's 年度
           hearings and the priority notes of a campaign's households    (no campaign: of visited_at)
concern    a concern closed without ever becoming a case                 the day it was closed
watch      見守り check-ins; an ended 見守り with all its check-ins        ``checked_on`` / ``ended_on``
meeting    支え愛連絡会 records                                            the end of the 年度 held
sync       resolved edit conflicts; applied sync operations              resolved / applied
=========  ============================================================  =============================

A record kept for N years from a date goes on the day after the Nth anniversary of that date; one
kept N years from the end of a 年度 goes on April 1 after N more 年度 (令和2年度 ends 2021-03-31:
with 5 years its records go on 2026-04-01).

Never purged, whatever their age:

- anything of a household with an open case: its cases, concerns, visit records and photos,
  見守り, priority notes and the hearings that named it; and any concern linked to an open case;
- a record that a record which stays still refers to: the visit record a remaining concern came
  from, an earlier record a remaining correction supersedes, the 支え愛連絡会 a remaining concern or
  見守り came from, the sync operation of a remaining visit record or edit conflict;
- concerns not closed, unresolved edit conflicts, 見守り still running (only their old check-ins).

One municipality at a time, in its tenant scope (`backend.tenancy.job_scope`) and in one transaction,
in dependency order; the photo files are deleted only after that transaction commits, so a rollback
never leaves rows whose files are gone. Each run writes one audit event per municipality holding
counts and cutoffs only, never contents.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pgtrigger
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from backend import tenancy
from backend.dates import fiscal_year_bounds, fiscal_year_of

logger = logging.getLogger("tsunagu.retention")

KINDS = ("case", "visit", "concern", "watch", "meeting", "sync")
YEARS_RANGE = (1, 30)
# What each kind reports, in display order.
COUNT_KEYS: dict[str, tuple[str, ...]] = {
    "case": (
        "cases", "case_contacts", "case_meetings", "support_plans", "case_concerns",
        "case_concern_transitions", "case_history_events",
    ),
    "visit": ("visit_records", "photos", "hearings", "priority_notes"),
    "concern": ("concerns", "concern_transitions", "concern_history_events"),
    "watch": ("watches", "watch_check_ins"),
    "meeting": ("meetings",),
    "sync": ("edit_conflicts", "sync_operations"),
}
ALL_COUNT_KEYS = tuple(key for keys in COUNT_KEYS.values() for key in keys)

ACTOR_USERNAME = "system:retention"
ACTOR_ROLE = "system"
AUDIT_OBJECT_TYPE = "retention"
AUDIT_BASIS = "保存年限 (TSUNAGU_RETENTION)"
# The append-only trigger of visit records (visits.models.VisitRecord.Meta.triggers): the purge is
# the one place allowed past it.
VISIT_RECORD_PROTECT = "visits.VisitRecord:visitrecord_append_only"
BATCH = 500


class RetentionConflict(Exception):
    """A case was opened for a household while its records were being purged: the municipality's
    transaction is rolled back and the next run decides again."""


# --- periods and cutoffs ----------------------------------------------------------------------------


def retention_years() -> dict[str, int]:
    """The configured years per kind, checked again here (tests and callers may override settings)."""
    configured = getattr(settings, "TSUNAGU_RETENTION", None)
    if not isinstance(configured, dict):
        raise ImproperlyConfigured("TSUNAGU_RETENTION must be a dict of years per kind")
    years: dict[str, int] = {}
    low, high = YEARS_RANGE
    for kind in KINDS:
        value = configured.get(kind)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ImproperlyConfigured(f"TSUNAGU_RETENTION[{kind!r}] must be {low}–{high} years, not {value!r}")
        years[kind] = value
    return years


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def start_of_day(day: dt.date) -> dt.datetime:
    """Midnight at the start of `day` in Asia/Tokyo (the project's time zone)."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=timezone.get_default_timezone())


@dataclass(frozen=True)
class Cutoffs:
    """What is old enough to go in a run on `today`: dates are exclusive (before them), 年度 inclusive."""

    today: dt.date
    years: dict[str, int]
    case_closed_before: dt.date
    concern_closed_before: dt.date
    watch_before: dt.date
    sync_before: dt.date
    visit_fiscal_year: int
    meeting_fiscal_year: int

    @classmethod
    def for_day(cls, today: dt.date, years: dict[str, int] | None = None) -> Cutoffs:
        years = years or retention_years()
        this_year = fiscal_year_of(today)
        return cls(
            today=today,
            years=dict(years),
            case_closed_before=years_before(today, years["case"]),
            concern_closed_before=years_before(today, years["concern"]),
            watch_before=years_before(today, years["watch"]),
            sync_before=years_before(today, years["sync"]),
            # Kept through N whole 年度 after their own: the 年度 ended N+1 starts ago and earlier go.
            visit_fiscal_year=this_year - years["visit"] - 1,
            meeting_fiscal_year=this_year - years["meeting"] - 1,
        )

    def describe(self) -> dict[str, str]:
        """Per kind, in words: for the command, the audit event and the task's result."""
        return {
            "case": f"closed before {self.case_closed_before.isoformat()}",
            "visit": f"年度 {self.visit_fiscal_year} and earlier (ended by "
                     f"{fiscal_year_bounds(self.visit_fiscal_year)[1].isoformat()})",
            "concern": f"closed before {self.concern_closed_before.isoformat()}",
            "watch": f"dated / ended before {self.watch_before.isoformat()}",
            "meeting": f"年度 {self.meeting_fiscal_year} and earlier (ended by "
                       f"{fiscal_year_bounds(self.meeting_fiscal_year)[1].isoformat()})",
            "sync": f"resolved / applied before {self.sync_before.isoformat()}",
        }


# --- the plan -----------------------------------------------------------------------------------------


@dataclass
class PurgePlan:
    """What a purge of one municipality removes, decided in one go (ids), with the counts per kind."""

    municipality_id: int
    cutoffs: Cutoffs
    case_ids: list[Any] = field(default_factory=list)
    case_concern_ids: list[Any] = field(default_factory=list)
    concern_ids: list[Any] = field(default_factory=list)
    visit_record_ids: list[Any] = field(default_factory=list)
    # visit record id -> the id of the record it supersedes (corrections go before what they correct)
    supersedes: dict[Any, Any] = field(default_factory=dict)
    photo_ids: list[Any] = field(default_factory=list)
    photo_paths: list[Path] = field(default_factory=list)
    hearing_ids: list[int] = field(default_factory=list)
    priority_note_ids: list[int] = field(default_factory=list)
    watch_ids: list[int] = field(default_factory=list)
    check_in_ids: list[int] = field(default_factory=list)  # old check-ins of 見守り that stay
    meeting_ids: list[int] = field(default_factory=list)
    conflict_ids: list[int] = field(default_factory=list)
    sync_op_ids: list[Any] = field(default_factory=list)
    household_ids: set[Any] = field(default_factory=set)  # whose records go (checked again at the end)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class PurgeReport:
    municipality_id: int
    today: dt.date
    dry_run: bool
    cutoffs: dict[str, str]
    counts: dict[str, int]
    audit_event_id: int | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _chunks(ids: Sequence[Any] | set[Any], size: int = BATCH) -> Iterator[list[Any]]:
    items = list(ids)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _count(model: type[models.Model], lookup: str, ids: Iterable[Any]) -> int:
    manager = model._default_manager
    return sum(manager.filter(**{f"{lookup}__in": chunk}).count() for chunk in _chunks(list(ids)))


def _history(name: str) -> type[models.Model]:
    """pghistory's event model (the tracked rows' earlier versions, with their text)."""
    return apps.get_model("outreach", name)


def plan_purge(municipality_id: int, today: dt.date | None = None) -> PurgePlan:
    """What `purge` would remove for this municipality on `today` (default: today in Asia/Tokyo)."""
    cutoffs = Cutoffs.for_day(today or timezone.localdate())
    with tenancy.job_scope(municipality_id), transaction.atomic():
        return _plan(municipality_id, cutoffs)


def _take(ids: list[Any], households: set[Any], rows: Iterable[tuple[Any, Any]]) -> None:
    """Rows of (id, household id): the id goes, and its household is one the purge touches."""
    for pk, household_id in rows:
        ids.append(pk)
        households.add(household_id)


def _plan(municipality_id: int, cutoffs: Cutoffs) -> PurgePlan:
    # The apps' models are imported here: backend/ sits below the apps and must import without them.
    from outreach.models import (
        CaseContact,
        CaseMeeting,
        Concern,
        ConcernTransition,
        Meeting,
        OutreachCase,
        SupportPlan,
        WatchArrangement,
        WatchCheckIn,
    )
    from visits.models import CampaignHousehold, EditConflict, Hearing, Photo, SyncOperation, VisitRecord
    from visits.photos.service import incoming_path, photo_dir

    mid = municipality_id
    plan = PurgePlan(municipality_id=mid, cutoffs=cutoffs)
    # Households with an open case: nothing of theirs goes.
    kept_households = OutreachCase.objects.filter(municipality_id=mid, status=OutreachCase.Status.OPEN).values(
        "household_id"
    )

    # case: closed long enough ago, with the concerns linked to it.
    cases = (
        OutreachCase.objects.filter(
            municipality_id=mid, status=OutreachCase.Status.CLOSED, closed_on__lt=cutoffs.case_closed_before
        )
        .exclude(household_id__in=kept_households)
    )
    _take(plan.case_ids, plan.household_ids, cases.values_list("pk", "household_id"))
    for chunk in _chunks(plan.case_ids):
        _take(plan.case_concern_ids, plan.household_ids, (
            Concern.objects.filter(municipality_id=mid, case_id__in=chunk)
            .exclude(household_id__in=kept_households)
            .values_list("pk", "household_id")
        ))

    # concern: closed without a case; closed when its last transition to "closed" happened.
    closed_at = Subquery(
        ConcernTransition.objects.filter(concern=OuterRef("pk"), to_status=Concern.Status.CLOSED)
        .order_by("-at")
        .values("at")[:1]
    )
    closed_concerns = (
        Concern.objects.filter(municipality_id=mid, status=Concern.Status.CLOSED, case__isnull=True)
        .annotate(closed_at=Coalesce(closed_at, "updated_at"))
        .filter(closed_at__lt=start_of_day(cutoffs.concern_closed_before))
        .exclude(household_id__in=kept_households)
    )
    _take(plan.concern_ids, plan.household_ids, closed_concerns.values_list("pk", "household_id"))
    leaving_concerns = [*plan.case_concern_ids, *plan.concern_ids]

    # visit: the campaign's 年度 (through its scheduled visit) and the visit's own 年度 both expired.
    visit_year_end = start_of_day(fiscal_year_bounds(cutoffs.visit_fiscal_year)[1] + dt.timedelta(days=1))
    staying_concerns = Concern.objects.filter(visit_record=OuterRef("pk")).exclude(pk__in=leaving_concerns)
    open_case_concerns = Concern.objects.filter(visit_record=OuterRef("pk"), case__status=OutreachCase.Status.OPEN)
    visits = (
        VisitRecord.objects.filter(municipality_id=mid, visited_at__lt=visit_year_end)
        .filter(
            Q(scheduled_visit__isnull=True)
            | Q(scheduled_visit__campaign__fiscal_year__lte=cutoffs.visit_fiscal_year)
        )
        .exclude(household_id__in=kept_households)
        .exclude(Exists(staying_concerns))
        .exclude(Exists(open_case_concerns))
    )
    rows = list(visits.values_list("pk", "supersedes_id", "superseded_by", "household_id"))
    leaving = {pk for pk, *_ in rows}
    superseded_by = {pk: by for pk, _, by, _ in rows if by is not None}
    # A correction that stays keeps what it corrects (PROTECT), and so on down the chain.
    while True:
        staying = {pk for pk in leaving if pk in superseded_by and superseded_by[pk] not in leaving}
        if not staying:
            break
        leaving -= staying
    for pk, supersedes_id, _, household_id in rows:
        if pk in leaving:
            plan.visit_record_ids.append(pk)
            plan.household_ids.add(household_id)
            if supersedes_id is not None:
                plan.supersedes[pk] = supersedes_id
    for chunk in _chunks(plan.visit_record_ids):
        for photo in Photo.objects.filter(visit_record_id__in=chunk).only("pk", "municipality_id", "sha256"):
            plan.photo_ids.append(photo.pk)
            plan.photo_paths.extend([photo_dir(photo), incoming_path(photo.pk, photo.sha256)])

    # visit (campaign side): hearings and priority notes of expired campaigns.
    hearing_names_kept = CampaignHousehold.objects.filter(hearing=OuterRef("pk"), household_id__in=kept_households)
    plan.hearing_ids = list(
        Hearing.objects.filter(municipality_id=mid, campaign__fiscal_year__lte=cutoffs.visit_fiscal_year)
        .exclude(Exists(hearing_names_kept))
        .values_list("pk", flat=True)
    )
    _take(plan.priority_note_ids, plan.household_ids, (
        CampaignHousehold.objects.filter(municipality_id=mid, campaign__fiscal_year__lte=cutoffs.visit_fiscal_year)
        .exclude(priority_reason="")
        .exclude(household_id__in=kept_households)
        .values_list("pk", "household_id")
    ))

    # watch: ended 見守り with their check-ins; old check-ins of the 見守り that stay.
    _take(plan.watch_ids, plan.household_ids, (
        WatchArrangement.objects.filter(municipality_id=mid, ended_on__lt=cutoffs.watch_before)
        .exclude(household_id__in=kept_households)
        .values_list("pk", "household_id")
    ))
    _take(plan.check_in_ids, plan.household_ids, (
        WatchCheckIn.objects.filter(arrangement__municipality_id=mid, checked_on__lt=cutoffs.watch_before)
        .exclude(arrangement_id__in=plan.watch_ids)
        .exclude(arrangement__household_id__in=kept_households)
        .values_list("pk", "arrangement__household_id")
    ))
    plan.check_in_ids = _whole_chains(WatchCheckIn, plan.check_in_ids)

    # meeting: kept while a concern or 見守り that stays came from it.
    meeting_year_end = fiscal_year_bounds(cutoffs.meeting_fiscal_year)[1]
    plan.meeting_ids = list(
        Meeting.objects.filter(municipality_id=mid, held_on__lte=meeting_year_end)
        .exclude(Exists(Concern.objects.filter(meeting=OuterRef("pk")).exclude(pk__in=leaving_concerns)))
        .exclude(Exists(WatchArrangement.objects.filter(meeting=OuterRef("pk")).exclude(pk__in=plan.watch_ids)))
        .values_list("pk", flat=True)
    )

    # sync: resolved conflicts; operations nothing that stays points at (a visit record's op is PROTECT).
    sync_before = start_of_day(cutoffs.sync_before)
    plan.conflict_ids = list(
        EditConflict.objects.filter(municipality_id=mid, resolved_at__lt=sync_before).values_list("pk", flat=True)
    )
    old_ops = SyncOperation.objects.filter(municipality_id=mid, applied_at__lt=sync_before)
    op_ids = set(old_ops.filter(visit_record__isnull=True, conflict__isnull=True).values_list("pk", flat=True))
    for chunk in _chunks(plan.visit_record_ids):
        of_visits = VisitRecord.objects.filter(pk__in=chunk, op__isnull=False).values("op_id")
        op_ids.update(old_ops.filter(pk__in=of_visits, conflict__isnull=True).values_list("pk", flat=True))
    for chunk in _chunks(plan.conflict_ids):
        of_conflicts = EditConflict.objects.filter(pk__in=chunk).values("op_id")
        op_ids.update(old_ops.filter(pk__in=of_conflicts, visit_record__isnull=True).values_list("pk", flat=True))
    plan.sync_op_ids = sorted(op_ids, key=str)

    concern_history, case_history = _history("ConcernHistory"), _history("OutreachCaseHistory")
    plan.household_ids.discard(None)
    counts = {
        "cases": len(plan.case_ids),
        "case_contacts": _count(CaseContact, "case_id", plan.case_ids),
        "case_meetings": _count(CaseMeeting, "case_id", plan.case_ids),
        "support_plans": _count(SupportPlan, "case_id", plan.case_ids),
        "case_concerns": len(plan.case_concern_ids),
        "case_concern_transitions": _count(ConcernTransition, "concern_id", plan.case_concern_ids),
        "case_history_events": _count(case_history, "pgh_obj_id", plan.case_ids)
        + _count(concern_history, "pgh_obj_id", plan.case_concern_ids),
        "visit_records": len(plan.visit_record_ids),
        "photos": len(plan.photo_ids),
        "hearings": len(plan.hearing_ids),
        "priority_notes": len(plan.priority_note_ids),
        "concerns": len(plan.concern_ids),
        "concern_transitions": _count(ConcernTransition, "concern_id", plan.concern_ids),
        "concern_history_events": _count(concern_history, "pgh_obj_id", plan.concern_ids),
        "watches": len(plan.watch_ids),
        "watch_check_ins": _count(WatchCheckIn, "arrangement_id", plan.watch_ids) + len(plan.check_in_ids),
        "meetings": len(plan.meeting_ids),
        "edit_conflicts": len(plan.conflict_ids),
        "sync_operations": len(plan.sync_op_ids),
    }
    plan.counts = {key: counts[key] for key in ALL_COUNT_KEYS}
    return plan


# --- the purge ----------------------------------------------------------------------------------------


def _delete(model: type[models.Model], ids: Iterable[Any], lookup: str = "pk") -> Counter[str]:
    """Delete through Django's collector (CASCADE, SET_NULL and PROTECT as the models declare them),
    a batch at a time. Returns the rows deleted per model label."""
    deleted: Counter[str] = Counter()
    for chunk in _chunks(list(ids)):
        _total, per_model = model._default_manager.filter(**{f"{lookup}__in": chunk}).delete()
        deleted.update(per_model)
    return deleted


def _whole_chains(model: type[models.Model], ids: list[Any]) -> list[Any]:
    """Entries corrected by superseding ones (見守り check-ins, case contacts) go with their whole
    chain of corrections or not at all: a kept correction still refers to (PROTECT) what it corrects,
    and an original left without its correction would stand again."""
    chosen = set(ids)
    while True:
        links = model._default_manager.filter(
            Q(pk__in=chosen, supersedes__isnull=False) | Q(supersedes__in=chosen)
        ).values_list("pk", "supersedes_id")
        drop = {pk for pk, earlier in links if earlier not in chosen} | {earlier for pk, earlier in links if pk not in chosen}
        if not drop & chosen:
            return [pk for pk in ids if pk in chosen]
        chosen -= drop


def _delete_corrections_first(model: type[models.Model], ids: Iterable[Any]) -> Counter[str]:
    """Delete entries linked by `supersedes` (PROTECT): a correction before what it corrects."""
    remaining, deleted = set(ids), Counter[str]()
    while remaining:
        corrected = set(
            model._default_manager.filter(pk__in=remaining, superseded_by__in=remaining).values_list("pk", flat=True)
        )
        if corrected == remaining:  # cannot happen: supersession chains end
            raise RuntimeError(f"{model._meta.label} supersession cycle")
        deleted.update(_delete(model, remaining - corrected))
        remaining = corrected
    return deleted


def _delete_visit_records(plan: PurgePlan) -> int:
    """Corrections first: a record goes once nothing left in the purge supersedes it."""
    from visits.models import VisitRecord

    remaining = set(plan.visit_record_ids)
    deleted = 0
    with pgtrigger.ignore(VISIT_RECORD_PROTECT):
        while remaining:
            corrected = {plan.supersedes[pk] for pk in remaining if plan.supersedes.get(pk) in remaining}
            batch = remaining - corrected
            if not batch:  # cannot happen: supersession chains end
                raise RuntimeError("visit record supersession cycle")
            deleted += _delete(VisitRecord, batch)["visits.VisitRecord"]
            remaining = corrected
    return deleted


def _remove_files(paths: list[Path]) -> None:
    """After commit: the photos' folders (original, resized, thumbnail) and any raw upload left."""
    for path in paths:
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            logger.exception("retention: could not remove a purged photo's file %s", path)


def _execute(plan: PurgePlan) -> dict[str, int]:
    from outreach.models import CaseContact, Concern, Meeting, OutreachCase, WatchArrangement, WatchCheckIn
    from visits.models import CampaignHousehold, EditConflict, Hearing, Photo, SyncOperation

    concern_history, case_history = _history("ConcernHistory"), _history("OutreachCaseHistory")
    counts = dict.fromkeys(ALL_COUNT_KEYS, 0)

    # Concerns before the cases and visit records they point at (no SET_NULL updates of doomed rows).
    done = _delete(Concern, plan.case_concern_ids)
    counts["case_concerns"] = done["outreach.Concern"]
    counts["case_concern_transitions"] = done["outreach.ConcernTransition"]
    counts["case_history_events"] = sum(
        _delete(concern_history, plan.case_concern_ids, "pgh_obj_id").values()
    )
    done = _delete(Concern, plan.concern_ids)
    counts["concerns"] = done["outreach.Concern"]
    counts["concern_transitions"] = done["outreach.ConcernTransition"]
    counts["concern_history_events"] = sum(_delete(concern_history, plan.concern_ids, "pgh_obj_id").values())

    contacts = _delete_corrections_first(CaseContact, CaseContact.objects.filter(case_id__in=plan.case_ids).values_list("pk", flat=True))
    done = _delete(OutreachCase, plan.case_ids)
    counts["cases"] = done["outreach.OutreachCase"]
    counts["case_contacts"] = done["outreach.CaseContact"] + contacts["outreach.CaseContact"]
    counts["case_meetings"] = done["outreach.CaseMeeting"]
    counts["support_plans"] = done["outreach.SupportPlan"]
    counts["case_history_events"] += sum(_delete(case_history, plan.case_ids, "pgh_obj_id").values())

    # Photos (PROTECT their visit record) before the records; their files once this commits.
    counts["photos"] = _delete(Photo, plan.photo_ids)["visits.Photo"]
    counts["visit_records"] = _delete_visit_records(plan)
    counts["hearings"] = _delete(Hearing, plan.hearing_ids)["visits.Hearing"]
    for chunk in _chunks(plan.priority_note_ids):
        counts["priority_notes"] += CampaignHousehold.objects.filter(pk__in=chunk).update(priority_reason="")

    check_ins = _delete_corrections_first(
        WatchCheckIn, [*WatchCheckIn.objects.filter(arrangement_id__in=plan.watch_ids).values_list("pk", flat=True),
                       *plan.check_in_ids],
    )
    done = _delete(WatchArrangement, plan.watch_ids)
    counts["watches"] = done["outreach.WatchArrangement"]
    counts["watch_check_ins"] = done["outreach.WatchCheckIn"] + check_ins["outreach.WatchCheckIn"]
    counts["meetings"] = _delete(Meeting, plan.meeting_ids)["outreach.Meeting"]

    # Conflicts before the operations they point at (PROTECT).
    counts["edit_conflicts"] = _delete(EditConflict, plan.conflict_ids)["visits.EditConflict"]
    counts["sync_operations"] = _delete(SyncOperation, plan.sync_op_ids)["visits.SyncOperation"]

    # A case opened meanwhile for one of these households: undo everything, decide again next run.
    if plan.household_ids:
        for chunk in _chunks(plan.household_ids):
            if OutreachCase.objects.filter(status=OutreachCase.Status.OPEN, household_id__in=chunk).exists():
                raise RetentionConflict("a case was opened for a household while its records were being purged")

    if plan.photo_paths:
        paths = list(plan.photo_paths)
        transaction.on_commit(lambda: _remove_files(paths))
    return counts


def _record(plan: PurgePlan, counts: dict[str, int]) -> int:
    """One audit event per municipality and run: counts and cutoffs, no names, no addresses."""
    from audit.models import AuditEvent

    event = AuditEvent.objects.create(
        municipality_id=plan.municipality_id,
        actor=None,
        actor_username=ACTOR_USERNAME,
        actor_role=ACTOR_ROLE,
        action=AuditEvent.Action.PURGE,
        object_type=AUDIT_OBJECT_TYPE,
        object_id=plan.cutoffs.today.isoformat(),
        basis=AUDIT_BASIS,
        detail={
            "operation": "purge",
            "counts": counts,
            "cutoffs": plan.cutoffs.describe(),
            "retention_years": plan.cutoffs.years,
        },
    )
    return event.pk


def purge(municipality_id: int, today: dt.date | None = None, dry_run: bool = False) -> PurgeReport:
    """Purge one municipality's expired records (see the module's docstring), or with `dry_run` only
    count them. Raises on failure, having rolled the municipality's purge back entirely."""
    cutoffs = Cutoffs.for_day(today or timezone.localdate())
    with tenancy.job_scope(municipality_id), transaction.atomic():
        plan = _plan(municipality_id, cutoffs)
        if dry_run:
            return PurgeReport(
                municipality_id=municipality_id, today=cutoffs.today, dry_run=True,
                cutoffs=cutoffs.describe(), counts=dict(plan.counts),
            )
        counts = _execute(plan)
        if counts != plan.counts:  # rows went or came between planning and deleting
            logger.warning("retention: municipality %s: planned %s, purged %s", municipality_id, plan.counts, counts)
        event_id = _record(plan, counts)
    logger.info("retention: municipality %s: purged %s records", municipality_id, sum(counts.values()))
    return PurgeReport(
        municipality_id=municipality_id, today=cutoffs.today, dry_run=False,
        cutoffs=cutoffs.describe(), counts=counts, audit_event_id=event_id,
    )
