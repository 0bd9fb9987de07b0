"""visits_campaignhousehold.finished_at, kept by the database (migration visits 0008): whatever
writes visit records, campaign states or campaigns, every campaign household's finished_at is what
the coverage refresh's `first_final` rule computed before it was stored. `_expected` is that rule,
as the refresh ran it, in a plain SELECT."""

import datetime as dt
import random
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from backend import tenancy
from tests import factories
from tests.visits.test_sync import push, visit_op
from visits import coverage
from visits import services as visits
from visits.models import Campaign, CampaignHousehold, VisitRecord
from visits.sync import bulk

FINAL = CampaignHousehold.FINAL_STATES

# The refresh's rule before finished_at was stored: the first final record of the municipality
# since the campaign's first day (superseded ones left out), else noon of the last attempt's day,
# else updated_at; NULL when not finished.
_RULE_SQL = f"""
WITH first_final AS (
  SELECT vr.household_id, min(vr.visited_at) AS at
    FROM visits_visitrecord vr
   WHERE vr.municipality_id = %(municipality)s AND vr.outcome IN {coverage.FINAL_STATES_SQL}
     AND vr.visited_at >= %(since)s
     AND NOT EXISTS (SELECT 1 FROM visits_visitrecord c WHERE c.supersedes_id = vr.id)
   GROUP BY vr.household_id
)
SELECT ch.id, CASE WHEN ch.state IN {coverage.FINAL_STATES_SQL} THEN
         COALESCE(f.at, (ch.last_attempt_date + time '12:00') AT TIME ZONE %(tz)s, ch.updated_at) END
  FROM visits_campaignhousehold ch LEFT JOIN first_final f ON f.household_id = ch.household_id
 WHERE ch.campaign_id = %(campaign)s
"""  # noqa: S608 - constant fragments, values bound


def _expected(campaign: Campaign) -> dict[int, dt.datetime | None]:
    campaign.refresh_from_db()
    params = coverage.aggregate_params(campaign_id=campaign.pk, municipality_id=campaign.municipality_id)
    # The campaign's first day from the start of the day, Japan time (what the refresh passed).
    params["since"] = dt.datetime.combine(campaign.start_date, dt.time(0, 0), tzinfo=ZoneInfo(settings.TIME_ZONE))
    with connection.cursor() as cursor:
        cursor.execute(_RULE_SQL, params)
        return dict(cursor.fetchall())


def _stored(campaign: Campaign) -> dict[int, dt.datetime | None]:
    return dict(CampaignHousehold.objects.filter(campaign=campaign).values_list("pk", "finished_at"))


def _assert_kept(*campaigns: Campaign) -> None:
    for campaign in campaigns:
        assert _stored(campaign) == _expected(campaign), campaign


def _at(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())


def _noon(day: dt.date) -> dt.datetime:
    return _at(day, 12)


@pytest.fixture
def survey(town):
    """The town's campaign, started 30 days ago (records of the last weeks count), with households
    of its 自治会 to finish."""
    start = timezone.localdate() - dt.timedelta(days=30)
    Campaign.objects.filter(pk=town.campaign.pk).update(start_date=start)
    town.campaign.refresh_from_db()
    x, y = factories.centre(town.neighborhood)
    town.homes = [factories.household(town.municipality, at=(x + 0.0002 * (k + 1), y)) for k in range(4)]
    town.start = start
    return town


def _record(town, household, outcome: str, at: dt.datetime, *, supersedes=None, municipality=None) -> VisitRecord:
    return VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=municipality or town.municipality, household=household,
        worker=town.users["outreach_worker"], outcome=outcome, visited_at=at, supersedes=supersedes,
    )


def _finished_at(town, household) -> dt.datetime | None:
    return CampaignHousehold.objects.get(campaign=town.campaign, household=household).finished_at


def _visit(town, household, day: dt.date, outcome: str):
    v = factories.scheduled_visit(town.campaign, household, town.users["outreach_worker"], day)
    visits.record_outcome(visit=v, outcome=outcome)
    return v


def test_a_finish_is_its_first_final_record_and_an_earlier_one_arriving_later_moves_it(survey):
    home, start = survey.homes[0], survey.start
    _visit(survey, home, start + dt.timedelta(days=3), "absent")
    assert _finished_at(survey, home) is None  # tried, not finished
    _record(survey, home, "absent", _at(start + dt.timedelta(days=3)))
    _visit(survey, home, start + dt.timedelta(days=9), "met")
    assert _finished_at(survey, home) == _noon(start + dt.timedelta(days=9))  # no final record yet: the attempt
    _record(survey, home, "met", _at(start + dt.timedelta(days=9), 15))
    assert _finished_at(survey, home) == _at(start + dt.timedelta(days=9), 15)
    # An offline tablet's record of an earlier final visit arrives after it.
    _record(survey, home, "refused", _at(start + dt.timedelta(days=5), 11))
    assert _finished_at(survey, home) == _at(start + dt.timedelta(days=5), 11)
    # A later one changes nothing; neither does a record of another household or another town.
    _record(survey, home, "met", _at(start + dt.timedelta(days=20)))
    _record(survey, survey.homes[1], "met", _at(start + dt.timedelta(days=1)))
    other = factories.municipality("930003")
    _record(survey, home, "met", _at(start + dt.timedelta(days=1)), municipality=other)
    assert _finished_at(survey, home) == _at(start + dt.timedelta(days=5), 11)
    _assert_kept(survey.campaign)


def test_a_record_before_the_campaign_started_does_not_count(survey):
    home, start = survey.homes[0], survey.start
    _record(survey, home, "met", _at(start - dt.timedelta(days=2)))
    _record(survey, home, "met", _at(start, 0, 0) - dt.timedelta(seconds=1))  # 23:59:59 the day before
    _visit(survey, home, start + dt.timedelta(days=4), "met")
    assert _finished_at(survey, home) == _noon(start + dt.timedelta(days=4))
    _record(survey, home, "met", _at(start, 0, 0))  # the first moment of its first day counts
    assert _finished_at(survey, home) == _at(start, 0, 0)
    _assert_kept(survey.campaign)


def test_a_correction_takes_its_record_out(survey):
    home, start = survey.homes[0], survey.start
    _visit(survey, home, start + dt.timedelta(days=6), "met")
    first = _record(survey, home, "met", _at(start + dt.timedelta(days=2)))
    second = _record(survey, home, "refused", _at(start + dt.timedelta(days=6)))
    assert _finished_at(survey, home) == _at(start + dt.timedelta(days=2))
    # The first record was wrong (不在, not 面談): the next final record dates the finish.
    _record(survey, home, "absent", _at(start + dt.timedelta(days=2), 10, 5), supersedes=first)
    assert _finished_at(survey, home) == _at(start + dt.timedelta(days=6))
    # The second one corrected too, to a final outcome: the correction itself is the first final record.
    _record(survey, home, "met", _at(start + dt.timedelta(days=7)), supersedes=second)
    assert _finished_at(survey, home) == _at(start + dt.timedelta(days=7))
    _assert_kept(survey.campaign)

    # With no final record left the attempt's day dates it.
    other, day = survey.homes[1], start + dt.timedelta(days=8)
    _visit(survey, other, day, "vacant")
    only = _record(survey, other, "vacant", _at(day, 9))
    assert _finished_at(survey, other) == _at(day, 9)
    _record(survey, other, "absent", _at(day, 9, 1), supersedes=only)
    assert _finished_at(survey, other) == _noon(day)
    _assert_kept(survey.campaign)


def test_a_state_set_by_hand_and_taken_back(survey):
    home, hood = survey.homes[0], survey.neighborhood
    state = CampaignHousehold.objects.create(
        municipality=survey.municipality, campaign=survey.campaign, household=home, neighborhood=hood, state="vacant",
    )
    state.refresh_from_db()
    assert state.finished_at == state.updated_at  # no record, no attempt: when it was set
    day = survey.start + dt.timedelta(days=10)
    state.last_attempt_date = day
    state.save()
    state.refresh_from_db()
    assert state.finished_at == _noon(day)
    # Back to not finished, by a save and by a bulk update; then final again by a queryset update.
    state.state = "pending"
    state.save()
    state.refresh_from_db()
    assert state.finished_at is None
    CampaignHousehold.objects.filter(pk=state.pk).update(state="met")
    assert CampaignHousehold.objects.get(pk=state.pk).finished_at == _noon(day)
    state.refresh_from_db()
    state.state = "scheduled"
    CampaignHousehold.objects.bulk_update([state], ["state"])
    assert CampaignHousehold.objects.get(pk=state.pk).finished_at is None
    # A write of finished_at itself is replaced by the rule's value.
    CampaignHousehold.objects.filter(pk=state.pk).update(state="refused", last_attempt_date=None)
    CampaignHousehold.objects.filter(pk=state.pk).update(finished_at=_at(day - dt.timedelta(days=100)))
    state.refresh_from_db()
    assert state.finished_at == state.updated_at
    # Moved to another household (a merge): that household's records date it.
    _record(survey, survey.homes[1], "met", _at(day, 16))
    CampaignHousehold.objects.filter(pk=state.pk).update(household=survey.homes[1])
    assert CampaignHousehold.objects.get(pk=state.pk).finished_at == _at(day, 16)
    _assert_kept(survey.campaign)


def test_moving_the_campaign_start_redates_its_finishes(survey, other_town):
    home, other, start = survey.homes[0], survey.homes[1], survey.start
    _record(survey, home, "met", _at(start - dt.timedelta(days=3)))
    _record(survey, home, "met", _at(start + dt.timedelta(days=4)))
    _visit(survey, home, start + dt.timedelta(days=5), "met")
    _visit(survey, other, start + dt.timedelta(days=6), "refused")
    _record(survey, other, "refused", _at(start + dt.timedelta(days=1)))
    assert _finished_at(survey, home) == _at(start + dt.timedelta(days=4))
    # A campaign of another town that started later is not touched.
    elsewhere = other_town.campaign
    elsewhere_state = CampaignHousehold.objects.create(
        municipality=other_town.municipality, campaign=elsewhere, household=other_town.household,
        neighborhood=other_town.neighborhood, state="met", last_attempt_date=start,
    )
    before = CampaignHousehold.objects.get(pk=elsewhere_state.pk).finished_at

    campaign = survey.campaign
    campaign.start_date = start - dt.timedelta(days=5)
    campaign.save()
    assert _finished_at(survey, home) == _at(start - dt.timedelta(days=3))
    _assert_kept(campaign)
    campaign.start_date = start + dt.timedelta(days=2)
    campaign.save()
    assert _finished_at(survey, home) == _at(start + dt.timedelta(days=4))
    assert _finished_at(survey, other) == _noon(start + dt.timedelta(days=6))
    _assert_kept(campaign, elsewhere)
    assert CampaignHousehold.objects.get(pk=elsewhere_state.pk).finished_at == before


def test_the_sync_push_dates_the_finishes_of_its_batch(survey, monkeypatch):
    client = survey.client("outreach_worker")
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id, "name": "iPad"}).status_code == 201
    tablet = {"client": client, "device_id": device_id}
    worker, start = survey.users["outreach_worker"], survey.start
    homes = survey.homes
    planned = [factories.scheduled_visit(survey.campaign, hh, worker, start + dt.timedelta(days=10 + i),
                                         route_order=i + 2, time_band="am")
               for i, hh in enumerate(homes[:3])]
    # The fourth household was finished by hand (チラシ投函済) with no record yet.
    CampaignHousehold.objects.create(
        municipality=survey.municipality, campaign=survey.campaign, household=homes[3],
        neighborhood=survey.neighborhood, state="leaflet_left", attempts=1, last_attempt_date=start + dt.timedelta(days=2),
    )
    groups = []
    original = bulk.insert_visit_records
    monkeypatch.setattr(bulk, "insert_visit_records", lambda **kw: (groups.append(len(kw["rows"])), original(**kw)))

    def iso(day_offset: int, hour: int) -> str:
        return _at(start + dt.timedelta(days=day_offset), hour).isoformat()

    ops = [
        visit_op(survey, household=homes[0], scheduled=planned[0], outcome="met", visited_at=iso(10, 10)),
        visit_op(survey, household=homes[1], scheduled=planned[1], outcome="refused", visited_at=iso(11, 14)),
        visit_op(survey, household=homes[2], scheduled=planned[2], outcome="absent", visited_at=iso(12, 9)),
        visit_op(survey, household=homes[3], outcome="leaflet_left", visited_at=iso(2, 16)),
    ]
    assert [r["status"] for r in push(tablet, ops)] == ["applied"] * 4
    assert groups == [4]  # one set-based insert of the whole batch
    assert _finished_at(survey, homes[0]) == _at(start + dt.timedelta(days=10), 10)
    assert _finished_at(survey, homes[1]) == _at(start + dt.timedelta(days=11), 14)
    assert _finished_at(survey, homes[2]) is None
    assert _finished_at(survey, homes[3]) == _at(start + dt.timedelta(days=2), 16)
    # A tablet that was offline brings earlier final records of two of them, in one batch.
    late = [
        visit_op(survey, household=homes[0], outcome="met", visited_at=iso(8, 10)),
        visit_op(survey, household=homes[1], outcome="refused", visited_at=iso(-1, 10)),  # before the start
        visit_op(survey, household=homes[3], outcome="leaflet_left", visited_at=iso(1, 9)),
    ]
    assert [r["status"] for r in push(tablet, late)] == ["applied"] * 3
    assert groups == [4, 3]
    assert _finished_at(survey, homes[0]) == _at(start + dt.timedelta(days=8), 10)
    assert _finished_at(survey, homes[1]) == _at(start + dt.timedelta(days=11), 14)
    assert _finished_at(survey, homes[3]) == _at(start + dt.timedelta(days=1), 9)
    _assert_kept(survey.campaign)


def test_a_random_mix_of_writes_keeps_every_row_equal_to_the_rule(survey, other_town):
    """Records (one at a time, several per statement, corrections, other towns'), campaign states
    (saves, bulk and queryset updates, bulk creates, merges) and start dates, in a fixed random
    order, some written as the application's role under row-level security; every row is compared
    with the rule as it goes."""
    rng = random.Random(20261203)
    town, start = survey, survey.start
    x, y = factories.centre(town.neighborhood)
    homes = survey.homes + [factories.household(town.municipality, at=(x - 0.0002 * (k + 1), y)) for k in range(16)]
    second = factories.campaign(town.municipality, status="running", name="二つ目", start_date=start + dt.timedelta(days=9))
    campaigns = [town.campaign, second]
    worker = town.users["outreach_worker"]
    outcomes = [*FINAL, "absent", "absent"]
    states = [s for s, _label in CampaignHousehold.State.choices]
    now = timezone.now()

    def moment() -> dt.datetime:
        earliest = _at(start - dt.timedelta(days=5), 0)
        return earliest + dt.timedelta(seconds=rng.randrange(int((now - earliest).total_seconds())))

    def new_record(household, *, municipality=None, supersedes=None) -> VisitRecord:
        return VisitRecord(
            id=uuid.uuid4(), municipality=municipality or town.municipality, household=household, worker=worker,
            outcome=rng.choice(outcomes), visited_at=moment(), supersedes=supersedes,
        )

    def open_records(household) -> list[VisitRecord]:
        return list(VisitRecord.objects.filter(household=household, superseded_by__isnull=True))

    def write_records():
        kind = rng.random()
        if kind < 0.4:
            new_record(rng.choice(homes)).save()
        elif kind < 0.6:  # one statement of several, as the sync's bulk insert
            VisitRecord.objects.bulk_create([new_record(rng.choice(homes)) for _ in range(rng.randint(2, 8))])
        elif kind < 0.85:
            household = rng.choice(homes)
            candidates = open_records(household)
            if candidates:
                new_record(household, supersedes=rng.choice(candidates)).save()
        else:
            new_record(rng.choice(homes), municipality=other_town.municipality).save()

    def write_states():
        campaign = rng.choice(campaigns)
        existing = list(CampaignHousehold.objects.filter(campaign=campaign))
        kind = rng.random()
        day = start + dt.timedelta(days=rng.randint(-3, 25)) if rng.random() < 0.7 else None
        if kind < 0.3 or not existing:
            taken = {s.household_id for s in existing}
            free = [h for h in homes if h.pk not in taken]
            if free:
                CampaignHousehold.objects.bulk_create([
                    CampaignHousehold(municipality=town.municipality, campaign=campaign, household=h,
                                      neighborhood=town.neighborhood, state=rng.choice(states), last_attempt_date=day)
                    for h in rng.sample(free, min(len(free), rng.randint(1, 3)))
                ])
        elif kind < 0.55:
            state = rng.choice(existing)
            state.state, state.last_attempt_date = rng.choice(states), day
            state.save()
        elif kind < 0.7:
            chosen = rng.sample(existing, min(len(existing), rng.randint(1, 4)))
            for state in chosen:
                state.state = rng.choice(states)
            CampaignHousehold.objects.bulk_update(chosen, ["state"])
        elif kind < 0.85:
            CampaignHousehold.objects.filter(pk=rng.choice(existing).pk).update(state=rng.choice(states))
        else:  # a merge moves a state to another household
            taken = {s.household_id for s in existing}
            free = [h for h in homes if h.pk not in taken]
            if free:
                CampaignHousehold.objects.filter(pk=rng.choice(existing).pk).update(
                    household=rng.choice(free), updated_at=timezone.now()
                )

    def move_start():
        campaign = rng.choice(campaigns)
        campaign.start_date = start + dt.timedelta(days=rng.randint(-6, 12))
        campaign.save(update_fields=["start_date"])

    for step in range(240):
        action = rng.choices([write_records, write_states, move_start], weights=[10, 8, 1])[0]
        if rng.random() < 0.4 and action is not write_records:
            with tenancy.scope(town.municipality.pk):
                action()
        else:
            action()
        if step % 10 == 9:
            _assert_kept(*campaigns)
    _assert_kept(*campaigns, other_town.campaign)
    stored = [s for c in campaigns for s in _stored(c).values()]
    assert sum(s is not None for s in stored) > 10 and sum(s is None for s in stored) > 3  # a real mix


def test_the_time_zone_is_the_projects():
    assert settings.TIME_ZONE == "Asia/Tokyo"  # migration visits 0008 wrote it into its functions
