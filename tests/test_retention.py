"""保存年限: the retention purge (backend/retention.py), its command and its daily job."""

import datetime as dt
import io
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, transaction
from PIL import Image

from audit.models import AuditEvent
from backend import retention
from outreach import services as outreach
from outreach.models import (
    CaseContact,
    CaseMeeting,
    Concern,
    ConcernHistory,
    ConcernTransition,
    Meeting,
    OutreachCase,
    OutreachCaseHistory,
    SupportPlan,
    WatchArrangement,
    WatchCheckIn,
)
from tests import factories
from visits.models import (
    CampaignHousehold,
    Device,
    EditConflict,
    Hearing,
    Photo,
    SyncOperation,
    VisitRecord,
)
from visits.photos.service import VARIANTS, incoming_path, photo_dir, receive_photo, variant_path

ROOT = Path(__file__).resolve().parent.parent
JST = ZoneInfo("Asia/Tokyo")
TODAY = dt.date(2026, 6, 1)  # 年度 2026; defaults: cases closed before 2021-06-01, visits of 年度 ≤ 2020 …
YEARS = {"case": 5, "visit": 5, "concern": 3, "watch": 3, "meeting": 5, "sync": 1}
# Personal text written into the records: none of it may reach the audit event.
SECRETS = ("ひきこもりの長男", "独居で心配", "最近見かけない", "玄関先で面談", "民生委員 山根", "会のメモ")


@pytest.fixture(autouse=True)
def retention_years(settings):
    settings.TSUNAGU_RETENTION = dict(YEARS)


def at(y: int, m: int, d: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hour, minute, tzinfo=JST)


@dataclass
class World:
    """Old and new records of every kind in one town, and what a purge on TODAY must leave."""

    town: object
    gone: dict[type, set] = field(default_factory=dict)
    kept: dict[type, set] = field(default_factory=dict)
    gone_photos: list = field(default_factory=list)
    kept_photos: list = field(default_factory=list)
    household_old: object = None
    household_open: object = None
    campaign_2020: object = None

    def expect(self, obj, *, goes: bool):
        (self.gone if goes else self.kept).setdefault(type(obj), set()).add(obj.pk)
        return obj


def _visit(w: World, household, *, visited_at, scheduled=None, supersedes=None, op=None, goes: bool, notes="玄関先で面談"):
    record = VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=w.town.municipality, household=household, scheduled_visit=scheduled,
        worker=w.town.users["outreach_worker"], outcome="met", notes=notes, visited_at=visited_at,
        supersedes=supersedes, op=op,
    )
    return w.expect(record, goes=goes)


def _photo(w: World, record, *, goes: bool):
    photo = factories.ready_photo(record, by=w.town.users["coordinator"])
    assert photo.status == Photo.Status.READY
    w.expect(photo, goes=goes)
    (w.gone_photos if goes else w.kept_photos).append(photo)
    return photo


def _concern(w: World, household, *, closed_on: dt.datetime | None, goes: bool, **kw):
    coordinator = w.town.users["coordinator"]
    kw.setdefault("categories", ["living_alone"])
    kw.setdefault("description", "最近見かけない")
    concern = outreach.raise_concern(
        user=coordinator, source="commissioner", household_id=household.pk if household else None, **kw
    )
    if closed_on is not None:
        outreach.transition_concern(concern=concern, to=Concern.Status.CLOSED, reason="解消", by=coordinator)
        ConcernTransition.objects.filter(concern=concern, to_status="closed").update(at=closed_on)
    return w.expect(concern, goes=goes)


def _case(w: World, household, *, opened_on: dt.date, closed_on: dt.date | None, goes: bool, concern=None):
    coordinator = w.town.users["coordinator"]
    if concern is not None:
        concern = outreach.transition_concern(concern=concern, to=Concern.Status.TRIAGED, reason="確認", by=coordinator)
    case = outreach.open_case(
        by=coordinator, household_id=household.pk, title="長期ひきこもり", opened_on=opened_on, concern=concern,
        notes="ひきこもりの長男",
    )
    w.expect(outreach.log_contact(case=case, by=coordinator, kind="visit", contacted_on=opened_on, reached=True,
                                  note="玄関先で面談"), goes=goes)
    w.expect(outreach.hold_case_meeting(case=case, kind="support", held_on=opened_on, members=[], notes="会のメモ",
                                        by=coordinator, confidentiality_acknowledged=True), goes=goes)
    w.expect(outreach.add_plan(case=case, goals="居場所へ", roles=[], by=coordinator), goes=goes)
    if closed_on is not None:
        case = outreach.close_case(case=case, reason="resolved", evaluation="つながった", by=coordinator,
                                   closed_on=closed_on)
    if concern is not None:
        w.expect(concern, goes=goes)
    return w.expect(case, goes=goes)


def _sync_op(w: World, *, applied_at: dt.datetime, goes: bool, kind="household.update"):
    worker = w.town.users["outreach_worker"]
    device, _ = Device.objects.get_or_create(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"device-{w.town.municipality.pk}"),
        defaults={"municipality": w.town.municipality, "user": worker},
    )
    op = SyncOperation.objects.create(
        op_id=uuid.uuid4(), municipality=w.town.municipality, device=device, user=worker, kind=kind,
        payload_sha256="0" * 64, result={"status": "conflict", "server": {"data": {"address": "テスト町1番地"}}},
    )
    SyncOperation.objects.filter(pk=op.pk).update(applied_at=applied_at)
    return w.expect(op, goes=goes)


def _conflict(w: World, op, *, resolved_at: dt.datetime | None, goes: bool):
    conflict = EditConflict.objects.create(
        municipality=w.town.municipality, kind="household", object_id=str(w.household_old.pk), base_version=1,
        server_version=2, proposed={"address": "テスト町2番地"}, server_copy={"address": "テスト町1番地"}, op=op,
        user=w.town.users["outreach_worker"], resolved_at=resolved_at,
        resolution="kept_server" if resolved_at else "",
    )
    return w.expect(conflict, goes=goes)


def build_world(town) -> World:
    """Records of `town`, each marked as going or staying in a purge on TODAY with the default years."""
    w = World(town=town)
    muni, hood = town.municipality, town.neighborhood
    coordinator, worker = town.users["coordinator"], town.users["outreach_worker"]
    w.household_old = factories.household(muni, at=factories.centre(hood))
    w.household_open = town.household  # gets an open case below: nothing of it goes
    household_recent = factories.household(muni, at=factories.centre(hood))
    old, open_ = w.household_old, w.household_open

    camp_2020 = w.campaign_2020 = factories.campaign(
        muni, fiscal_year=2020, start_date=dt.date(2020, 10, 1), end_date=dt.date(2021, 3, 31), status="closed"
    )
    camp_2021 = factories.campaign(
        muni, fiscal_year=2021, start_date=dt.date(2021, 10, 1), end_date=dt.date(2022, 3, 31), status="closed"
    )
    sv_old = factories.scheduled_visit(camp_2020, old, worker, dt.date(2020, 11, 10), status="done")
    sv_open = factories.scheduled_visit(camp_2020, open_, worker, dt.date(2020, 11, 10), status="done")
    sv_new = factories.scheduled_visit(camp_2021, old, worker, dt.date(2021, 11, 1), status="done")

    # --- case: closed past retention goes with everything in it; closed recently / open stays.
    old_case_concern = outreach.raise_concern(
        user=coordinator, source="commissioner", household_id=old.pk, categories=["hikikomori"],
        description="ひきこもりの長男",
    )
    _case(w, old, opened_on=dt.date(2018, 4, 10), closed_on=dt.date(2021, 5, 31), goes=True, concern=old_case_concern)
    _case(w, household_recent, opened_on=dt.date(2019, 4, 10), closed_on=dt.date(2021, 6, 1), goes=False)
    open_case_concern = outreach.raise_concern(
        user=coordinator, source="commissioner", household_id=open_.pk, categories=["hikikomori"],
        description="ひきこもりの長男",
    )
    _case(w, open_, opened_on=dt.date(2015, 4, 1), closed_on=None, goes=False, concern=open_case_concern)
    # An old closed case of the household with an open case: stays with the household.
    _case(w, open_, opened_on=dt.date(2012, 4, 1), closed_on=dt.date(2013, 3, 1), goes=False)

    # --- concern closed without a case: 3 years from closing.
    _concern(w, old, closed_on=at(2023, 5, 31), goes=True)
    _concern(w, old, closed_on=at(2023, 6, 1), goes=False)
    _concern(w, None, closed_on=at(2020, 1, 1), goes=True, pin=Point(*factories.centre(hood), srid=4326))
    _concern(w, open_, closed_on=at(2019, 1, 1), goes=False)

    # --- visit: the end of the campaign's 年度 (through its scheduled visit), else of visited_at.
    op_old = _sync_op(w, applied_at=at(2020, 11, 10), goes=True, kind="visit.create")
    vr_old = _visit(w, old, visited_at=at(2020, 11, 10), scheduled=sv_old, op=op_old, goes=True)
    _photo(w, vr_old, goes=True)
    vr_fixed = _visit(w, old, visited_at=at(2020, 11, 10, 11), scheduled=sv_old, goes=True)
    _visit(w, old, visited_at=at(2020, 11, 11), scheduled=sv_old, supersedes=vr_fixed, goes=True)
    # A correction made in 年度 2021 keeps the record it corrects.
    vr_a = _visit(w, old, visited_at=at(2020, 12, 1), goes=False)
    _visit(w, old, visited_at=at(2021, 4, 5), supersedes=vr_a, goes=False)
    op_new = _sync_op(w, applied_at=at(2021, 11, 1), goes=False, kind="visit.create")
    vr_new = _visit(w, old, visited_at=at(2021, 11, 1), scheduled=sv_new, op=op_new, goes=False)
    _photo(w, vr_new, goes=False)
    _visit(w, old, visited_at=at(2021, 3, 31, 23, 59), goes=True)  # 年度 2020, Tokyo time
    _visit(w, old, visited_at=at(2021, 4, 1, 0, 1), goes=False)  # 年度 2021
    _visit(w, old, visited_at=at(2021, 5, 1), scheduled=sv_old, goes=False)  # a 2020 campaign, visited in 2021
    vr_open = _visit(w, open_, visited_at=at(2020, 11, 10), scheduled=sv_open, goes=False)
    _photo(w, vr_open, goes=False)
    # A concern still being followed keeps the visit it came from.
    vr_source = _visit(w, old, visited_at=at(2019, 6, 1), goes=False)
    _concern(w, old, closed_on=None, goes=False, visit_record_id=vr_source.pk)
    # An old closed concern that came from an old visit goes with it.
    vr_source_old = _visit(w, old, visited_at=at(2019, 7, 1), goes=True)
    _concern(w, old, closed_on=at(2019, 8, 1), goes=True, visit_record_id=vr_source_old.pk)

    # hearings and priority notes of the 2020 campaign
    hearing_old = w.expect(Hearing.objects.create(
        municipality=muni, campaign=camp_2020, neighborhood=hood, held_on=dt.date(2020, 9, 1), notes="独居で心配"
    ), goes=True)
    hearing_open = w.expect(Hearing.objects.create(
        municipality=muni, campaign=camp_2020, neighborhood=hood, held_on=dt.date(2020, 9, 2), notes="独居で心配"
    ), goes=False)
    w.expect(town.hearing, goes=False)
    note_old = CampaignHousehold.objects.create(
        municipality=muni, campaign=camp_2020, household=old, neighborhood=hood, priority=True,
        priority_reason="独居で心配", hearing=hearing_old,
    )
    note_open = CampaignHousehold.objects.create(
        municipality=muni, campaign=camp_2020, household=open_, neighborhood=hood, priority=True,
        priority_reason="独居で心配", hearing=hearing_open,
    )
    w.gone.setdefault("priority_notes", set()).add(note_old.pk)
    w.kept.setdefault("priority_notes", set()).add(note_open.pk)

    # --- watch: ended 3 years ago goes whole; old check-ins of a running one go.
    meeting_old = w.expect(outreach.record_meeting(
        user=coordinator, neighborhood=hood, held_on=dt.date(2020, 6, 1), attendees=[], notes="会のメモ",
        concerns=[], watches=[],
    ), goes=True)
    meeting_kept = w.expect(outreach.record_meeting(
        user=coordinator, neighborhood=hood, held_on=dt.date(2020, 7, 1), attendees=[], notes="会のメモ",
        concerns=[], watches=[],
    ), goes=False)
    w.expect(outreach.record_meeting(
        user=coordinator, neighborhood=hood, held_on=dt.date(2021, 4, 1), attendees=[], notes="会のメモ",
        concerns=[], watches=[],
    ), goes=False)
    ended = outreach.add_watch(user=coordinator, household_id=old.pk, watcher_name="民生委員 山根",
                               watcher_role="commissioner", cadence_days=7, started_on=dt.date(2019, 4, 1),
                               meeting=meeting_old)
    WatchArrangement.objects.filter(pk=ended.pk).update(ended_on=dt.date(2023, 5, 31))
    w.expect(ended, goes=True)
    w.expect(WatchCheckIn.objects.create(arrangement=ended, checked_on=dt.date(2023, 5, 1), note="民生委員 山根",
                                         recorded_by=coordinator), goes=True)
    running = w.expect(outreach.add_watch(user=coordinator, household_id=old.pk, watcher_name="民生委員 山根",
                                          watcher_role="commissioner", cadence_days=7, started_on=dt.date(2019, 4, 1),
                                          meeting=meeting_kept), goes=False)
    w.expect(WatchCheckIn.objects.create(arrangement=running, checked_on=dt.date(2023, 5, 31), note="民生委員 山根",
                                         recorded_by=coordinator), goes=True)
    w.expect(WatchCheckIn.objects.create(arrangement=running, checked_on=dt.date(2023, 6, 1), note="民生委員 山根",
                                         recorded_by=coordinator), goes=False)
    ended_open = outreach.add_watch(user=coordinator, household_id=open_.pk, watcher_name="民生委員 山根",
                                    watcher_role="commissioner", cadence_days=7, started_on=dt.date(2015, 4, 1))
    WatchArrangement.objects.filter(pk=ended_open.pk).update(ended_on=dt.date(2016, 1, 1))
    w.expect(ended_open, goes=False)
    w.expect(WatchCheckIn.objects.create(arrangement=ended_open, checked_on=dt.date(2015, 5, 1), recorded_by=coordinator),
             goes=False)

    # --- sync: resolved conflicts a year on, with their operations; unresolved ones stay.
    _conflict(w, _sync_op(w, applied_at=at(2025, 5, 1), goes=True), resolved_at=at(2025, 5, 31), goes=True)
    _conflict(w, _sync_op(w, applied_at=at(2025, 5, 1), goes=False), resolved_at=at(2025, 6, 1), goes=False)
    _conflict(w, _sync_op(w, applied_at=at(2020, 1, 1), goes=False), resolved_at=None, goes=False)
    _sync_op(w, applied_at=at(2025, 5, 31), goes=True)
    _sync_op(w, applied_at=at(2025, 6, 1), goes=False)
    return w


def remaining(model, pks) -> set:
    return set(model.objects.filter(pk__in=pks).values_list("pk", flat=True))


def assert_purged_exactly(w: World) -> None:
    for model, pks in w.gone.items():
        if model == "priority_notes":
            continue
        assert remaining(model, pks) == set(), f"{model.__name__} not purged"
    for model, pks in w.kept.items():
        if model == "priority_notes":
            continue
        assert remaining(model, pks) == pks, f"{model.__name__} purged but should stay"
    assert set(CampaignHousehold.objects.filter(pk__in=w.gone["priority_notes"]).values_list("priority_reason", flat=True)) == {""}
    assert set(CampaignHousehold.objects.filter(pk__in=w.kept["priority_notes"]).values_list("priority_reason", flat=True)) == {"独居で心配"}


def photo_files(photo) -> list[Path]:
    return [variant_path(photo, variant) for variant in VARIANTS]


def snapshot(municipality) -> dict:
    """Every id of every purgeable table of a municipality (to show nothing changed)."""
    mid = municipality.pk
    return {
        "cases": set(OutreachCase.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "contacts": set(CaseContact.objects.filter(case__municipality_id=mid).values_list("pk", flat=True)),
        "concerns": set(Concern.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "transitions": set(ConcernTransition.objects.filter(concern__municipality_id=mid).values_list("pk", flat=True)),
        "concern_history": set(ConcernHistory.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "visits": set(VisitRecord.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "photos": set(Photo.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "hearings": set(Hearing.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "notes": set(CampaignHousehold.objects.filter(municipality_id=mid).values_list("pk", "priority_reason")),
        "watches": set(WatchArrangement.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "check_ins": set(WatchCheckIn.objects.filter(arrangement__municipality_id=mid).values_list("pk", flat=True)),
        "meetings": set(Meeting.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "conflicts": set(EditConflict.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
        "ops": set(SyncOperation.objects.filter(municipality_id=mid).values_list("pk", flat=True)),
    }


EXPECTED_COUNTS = {
    "cases": 1, "case_contacts": 1, "case_meetings": 1, "support_plans": 1, "case_concerns": 1,
    # raised, triaged, case opened, closed
    "case_concern_transitions": 4,
    "visit_records": 5, "photos": 1, "hearings": 1, "priority_notes": 1,
    "concerns": 3, "concern_transitions": 6,
    "watches": 1, "watch_check_ins": 2, "meetings": 1,
    "edit_conflicts": 1, "sync_operations": 3,
}


def test_purge_removes_exactly_the_expired_records(town, other_town, django_capture_on_commit_callbacks):
    w = build_world(town)
    other = build_world(other_town)
    other_before = snapshot(other_town.municipality)
    for photo in w.gone_photos + w.kept_photos:
        assert all(path.exists() for path in photo_files(photo))

    with django_capture_on_commit_callbacks(execute=True):
        report = retention.purge(town.municipality.pk, TODAY)

    assert not report.dry_run
    counts = {key: n for key, n in report.counts.items() if "history" not in key}
    assert counts == {key: EXPECTED_COUNTS.get(key, 0) for key in counts}
    assert report.counts["case_history_events"] > 0 and report.counts["concern_history_events"] > 0
    assert_purged_exactly(w)
    # The write history of what went goes too; the rest's stays.
    assert not ConcernHistory.objects.filter(pgh_obj_id__in=w.gone[Concern]).exists()
    assert not OutreachCaseHistory.objects.filter(pgh_obj_id__in=w.gone[OutreachCase]).exists()
    assert OutreachCaseHistory.objects.filter(pgh_obj_id__in=w.kept[OutreachCase]).exists()
    # Files: the purged photos' folders are gone once committed; the kept ones' files are there.
    for photo in w.gone_photos:
        assert not photo_dir(photo).exists()
    for photo in w.kept_photos:
        assert all(path.exists() for path in photo_files(photo))
    # Another municipality's records are untouched (its own old records included).
    assert snapshot(other_town.municipality) == other_before
    assert all(path.exists() for photo in other.gone_photos for path in photo_files(photo))


def records_of(household) -> dict[str, set]:
    """The ids of every kind of record of one household."""
    return {
        "cases": set(OutreachCase.objects.filter(household=household).values_list("pk", flat=True)),
        "concerns": set(Concern.objects.filter(household=household).values_list("pk", flat=True)),
        "visits": set(VisitRecord.objects.filter(household=household).values_list("pk", flat=True)),
        "photos": set(Photo.objects.filter(visit_record__household=household).values_list("pk", flat=True)),
        "watches": set(WatchArrangement.objects.filter(household=household).values_list("pk", flat=True)),
        "check_ins": set(WatchCheckIn.objects.filter(arrangement__household=household).values_list("pk", flat=True)),
        "contacts": set(CaseContact.objects.filter(case__household=household).values_list("pk", flat=True)),
        "plans": set(SupportPlan.objects.filter(case__household=household).values_list("pk", flat=True)),
        "case_meetings": set(CaseMeeting.objects.filter(case__household=household).values_list("pk", flat=True)),
    }


def test_nothing_of_a_household_with_an_open_case_goes_whatever_its_age(town, settings):
    w = build_world(town)
    household = w.household_open
    before = records_of(household)
    assert all(before.values())
    # Even far in the future, with the shortest periods.
    settings.TSUNAGU_RETENTION = dict.fromkeys(YEARS, 1)
    retention.purge(town.municipality.pk, dt.date(2040, 4, 1))
    after = records_of(household)
    assert after == before
    assert CampaignHousehold.objects.get(campaign=w.campaign_2020, household=household).priority_reason == "独居で心配"
    # …while the household without one lost every visit record no remaining concern came from.
    assert not VisitRecord.objects.filter(household=w.household_old, raised_concerns__isnull=True).exists()


def test_dry_run_deletes_nothing_and_reports_the_same_counts(town, django_capture_on_commit_callbacks):
    w = build_world(town)
    before = snapshot(town.municipality)
    events = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        dry = retention.purge(town.municipality.pk, TODAY, dry_run=True)
    assert dry.dry_run and dry.audit_event_id is None
    assert snapshot(town.municipality) == before
    assert AuditEvent.objects.count() == events
    assert all(path.exists() for photo in w.gone_photos for path in photo_files(photo))
    assert retention.plan_purge(town.municipality.pk, TODAY).counts == dry.counts

    with django_capture_on_commit_callbacks(execute=True):
        real = retention.purge(town.municipality.pk, TODAY)
    assert real.counts == dry.counts
    assert real.cutoffs == dry.cutoffs


def test_one_audit_event_per_run_with_counts_and_no_personal_text(town):
    build_world(town)
    report = retention.purge(town.municipality.pk, TODAY)

    events = AuditEvent.objects.filter(object_type="retention")
    assert events.count() == 1
    event = events.get()
    assert event.pk == report.audit_event_id
    assert event.municipality_id == town.municipality.pk
    assert event.actor_id is None
    assert (event.actor_username, event.actor_role) == ("system:retention", "system")
    assert event.object_id == "2026-06-01"
    assert event.basis == "保存年限 (TSUNAGU_RETENTION)"
    assert event.action == AuditEvent.Action.PURGE
    assert event.detail["operation"] == "purge"
    assert event.detail["counts"] == report.counts
    assert event.detail["retention_years"] == YEARS
    assert event.detail["cutoffs"]["case"] == "closed before 2021-06-01"
    assert event.detail["cutoffs"]["visit"] == "年度 2020 and earlier (ended by 2021-03-31)"
    text = json.dumps(event.detail, ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in text
    assert "テスト町" not in text  # no addresses
    # Only numbers under counts: ids, names and addresses have no place there.
    assert all(isinstance(n, int) for n in event.detail["counts"].values())


def test_a_second_run_purges_nothing(town):
    build_world(town)
    first = retention.purge(town.municipality.pk, TODAY)
    assert first.total > 0
    before = snapshot(town.municipality)

    second = retention.purge(town.municipality.pk, TODAY)
    assert second.total == 0
    assert set(second.counts) == set(retention.ALL_COUNT_KEYS)
    assert snapshot(town.municipality) == before
    # Each run is on record, the empty one too.
    assert AuditEvent.objects.filter(object_type="retention", municipality=town.municipality).count() == 2


def test_the_fiscal_year_clock(town, django_capture_on_commit_callbacks):
    """令和2年度 (2020) ends 2021-03-31; kept 5 years, its visit records go on 2026-04-01, not before."""
    muni, worker = town.municipality, town.users["outreach_worker"]
    reiwa2 = factories.campaign(
        muni, fiscal_year=2020, start_date=dt.date(2020, 4, 1), end_date=dt.date(2021, 3, 31), status="closed"
    )
    household = factories.household(muni, at=factories.centre(town.neighborhood))
    visit = factories.scheduled_visit(reiwa2, household, worker, dt.date(2021, 3, 31), status="done")
    record = VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=muni, household=household, scheduled_visit=visit, worker=worker,
        outcome="met", visited_at=at(2021, 3, 31, 16),
    )
    photo = factories.ready_photo(record, by=town.users["coordinator"])
    meeting = outreach.record_meeting(
        user=town.users["coordinator"], neighborhood=town.neighborhood, held_on=dt.date(2021, 3, 31), attendees=[],
        notes="会のメモ", concerns=[], watches=[],
    )

    assert retention.Cutoffs.for_day(dt.date(2026, 3, 31)).visit_fiscal_year == 2019
    on_eve = retention.purge(muni.pk, dt.date(2026, 3, 31))
    assert on_eve.counts["visit_records"] == 0 and on_eve.counts["meetings"] == 0
    assert VisitRecord.objects.filter(pk=record.pk).exists()

    with django_capture_on_commit_callbacks(execute=True):
        on_the_day = retention.purge(muni.pk, dt.date(2026, 4, 1))
    assert on_the_day.counts["visit_records"] == 1
    assert on_the_day.counts["photos"] == 1
    assert on_the_day.counts["meetings"] == 1
    assert not VisitRecord.objects.filter(pk=record.pk).exists()
    assert not Meeting.objects.filter(pk=meeting.pk).exists()
    assert not photo_dir(photo).exists()


def test_date_clocks_count_whole_years(town):
    """A case closed on 2021-06-01 is kept through 2026-06-01 and goes on 2026-06-02."""
    household = factories.household(town.municipality, at=factories.centre(town.neighborhood))
    case = outreach.open_case(by=town.users["coordinator"], household_id=household.pk, title="t",
                              opened_on=dt.date(2021, 1, 1))
    outreach.close_case(case=case, reason="resolved", evaluation="e", by=town.users["coordinator"],
                        closed_on=dt.date(2021, 6, 1))
    assert retention.purge(town.municipality.pk, dt.date(2026, 6, 1)).counts["cases"] == 0
    assert retention.purge(town.municipality.pk, dt.date(2026, 6, 2)).counts["cases"] == 1
    # 29 February: five years on there is none; the day before 1 March counts.
    assert retention.years_before(dt.date(2028, 2, 29), 5) == dt.date(2023, 2, 28)


def test_visit_records_stay_append_only_outside_the_purge(town):
    build_world(town)
    retention.purge(town.municipality.pk, TODAY)
    kept = VisitRecord.objects.filter(municipality=town.municipality, photos__isnull=True).first()
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        VisitRecord.objects.filter(pk=kept.pk).delete()


def test_an_unprocessed_photo_loses_its_raw_upload(town, django_capture_on_commit_callbacks):
    household = factories.household(town.municipality, at=factories.centre(town.neighborhood))
    record = VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=town.municipality, household=household, worker=town.users["outreach_worker"],
        outcome="met", visited_at=at(2019, 5, 1),
    )
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    photo, _ = receive_photo(user=town.users["coordinator"], photo_id=uuid.uuid4(), visit_id=record.pk,
                             data=buffer.getvalue())
    raw = incoming_path(photo.pk, photo.sha256)
    assert raw.exists()
    with django_capture_on_commit_callbacks(execute=True):
        report = retention.purge(town.municipality.pk, TODAY)
    assert report.counts["photos"] == 1
    assert not raw.exists()


def test_a_failure_rolls_the_municipality_back_and_keeps_the_files(town, monkeypatch, django_capture_on_commit_callbacks):
    w = build_world(town)
    before = snapshot(town.municipality)

    def broken(plan, counts):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(retention, "_record", broken)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        retention.purge(town.municipality.pk, TODAY)
    assert snapshot(town.municipality) == before
    assert all(path.exists() for photo in w.gone_photos for path in photo_files(photo))


def test_a_case_opened_during_the_purge_undoes_it(town, monkeypatch):
    """The open-case rule is checked again before commit: a case opened for a household between the
    plan and the deletes rolls the municipality back (the next run decides afresh)."""
    w = build_world(town)
    before = snapshot(town.municipality)
    plan_for = retention._plan

    def plan_then_open_a_case(municipality_id, cutoffs):
        plan = plan_for(municipality_id, cutoffs)
        outreach.open_case(by=town.users["coordinator"], household_id=w.household_old.pk, title="again")
        return plan

    monkeypatch.setattr(retention, "_plan", plan_then_open_a_case)
    with pytest.raises(retention.RetentionConflict):
        retention.purge(town.municipality.pk, TODAY)
    assert snapshot(town.municipality) == before


def test_periods_are_validated(settings):
    settings.TSUNAGU_RETENTION = {**YEARS, "case": 0}
    with pytest.raises(ImproperlyConfigured, match="case"):
        retention.retention_years()
    settings.TSUNAGU_RETENTION = {key: n for key, n in YEARS.items() if key != "sync"}
    with pytest.raises(ImproperlyConfigured, match="sync"):
        retention.retention_years()
    settings.TSUNAGU_RETENTION = {**YEARS, "visit": True}
    with pytest.raises(ImproperlyConfigured):
        retention.retention_years()


@pytest.mark.parametrize("value", ["0", "31", "five"])
def test_settings_refuse_a_bad_period_from_the_environment(value):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_SETTINGS_MODULE", "TSUNAGU_RETAIN_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "backend.settings", "TSUNAGU_ENV": "development",
                "TSUNAGU_RETAIN_VISIT_YEARS": value})
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "TSUNAGU_RETAIN_VISIT_YEARS" in result.stderr


def test_settings_take_periods_from_the_environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_SETTINGS_MODULE", "TSUNAGU_RETAIN_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "backend.settings", "TSUNAGU_ENV": "development",
                "TSUNAGU_RETAIN_CASE_YEARS": "10"})
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.TSUNAGU_RETENTION)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "'case': 10" in result.stdout and "'visit': 5" in result.stdout


def test_command_dry_run_shows_counts_and_cutoffs_per_municipality_and_kind(town, other_town):
    build_world(town)
    before = snapshot(town.municipality)
    out, err = io.StringIO(), io.StringIO()
    call_command("retention", "--dry-run", "--today", "2026-06-01", stdout=out, stderr=err)
    text = out.getvalue()
    assert "保存年限 2026-06-01 (dry run: nothing is deleted): case 5 years, visit 5 years" in text
    assert f"[1/2] {town.municipality.code} {town.municipality.name}" in text
    assert f"[2/2] {other_town.municipality.code} {other_town.municipality.name}" in text
    assert "  case     closed before 2021-06-01: cases 1, case_contacts 1" in text
    assert "  visit    年度 2020 and earlier (ended by 2021-03-31): visit_records 5, photos 1, hearings 1, priority_notes 1" in text
    assert "  sync     resolved / applied before 2025-06-01: edit_conflicts 1, sync_operations 3" in text
    assert "records would go" in text and "nothing" in text  # the other town has nothing old
    assert "Done: 2 of 2 municipalities" in text
    assert snapshot(town.municipality) == before
    for secret in SECRETS:
        assert secret not in text


def test_command_purges_one_municipality(town, other_town, django_capture_on_commit_callbacks):
    build_world(town)
    build_world(other_town)
    other_before = snapshot(other_town.municipality)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("retention", "--municipality", town.municipality.code, "--today", "2026-06-01", stdout=out)
    text = out.getvalue()
    assert "[1/1]" in text and "records purged (audit event" in text
    assert "Done: 1 of 1 municipalities" in text
    assert retention.purge(town.municipality.pk, TODAY, dry_run=True).total == 0
    assert snapshot(other_town.municipality) == other_before


def test_command_refuses_bad_arguments(town):
    with pytest.raises(CommandError, match="no municipality"):
        call_command("retention", "--municipality", "000000", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--today"):
        call_command("retention", "--today", "2026-13-01", stdout=io.StringIO())


def test_command_reports_a_failed_municipality_and_carries_on(town, other_town, monkeypatch):
    real = retention.purge

    def purge(municipality_id, today=None, dry_run=False):
        if municipality_id == town.municipality.pk:
            raise RuntimeError("boom")
        return real(municipality_id, today, dry_run=dry_run)

    monkeypatch.setattr(retention, "purge", purge)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=town.municipality.code):
        call_command("retention", "--today", "2026-06-01", stdout=out, stderr=err)
    assert "failed, nothing of it was purged: RuntimeError: boom" in err.getvalue()
    assert "Done: 1 of 2 municipalities" in out.getvalue()


def test_daily_task_runs_every_municipality_and_survives_a_failure(town, other_town, monkeypatch):
    from audit.tasks import retention_daily_task

    build_world(other_town)
    real = retention.purge

    def purge(municipality_id, today=None, dry_run=False):
        if municipality_id == town.municipality.pk:
            raise RuntimeError("boom")
        return real(municipality_id, TODAY, dry_run=dry_run)

    monkeypatch.setattr(retention, "purge", purge)
    result = retention_daily_task()
    assert result["failed"] == {str(town.municipality.pk): "RuntimeError"}
    assert result["purged"][str(other_town.municipality.pk)]["visit_records"] == 5
    assert retention.plan_purge(other_town.municipality.pk, TODAY).total == 0


def test_the_daily_job_is_scheduled():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="retention-daily-purge")
    assert schedule.func == "audit.tasks.retention_daily_task"
    assert schedule.schedule_type == Schedule.DAILY
    assert schedule.repeats == -1
    assert schedule.next_run.astimezone(JST).time() == dt.time(3, 30)


pytestmark = pytest.mark.django_db
