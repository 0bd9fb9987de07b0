"""The field sync's figures, each against a baseline measured in the same run:

- push: 10,000 visit records in batches of 100 through the sync API, against a raw SQL
  INSERT … ON CONFLICT DO NOTHING of the same rows in batches of 100;
- the empty incremental pull (a tablet that holds everything asks again) in a municipality of
  1,000,000 change rows against the same pull at 10,000: it must not grow."""

import os
import time
import uuid
from pathlib import Path

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.test import Client

from bench.common import Figure

RECORDS = 10_000
BATCH = 100


def _setup():
    from accounts.roles import Role
    from accounts.services import create_user, issue_device_token
    from neighborhoods.models import Household, Municipality
    from visits.models import Device, PartnerOrganization

    town, _ = Municipality.objects.get_or_create(code="999002", defaults={"name": "同期ベンチ町", "prefecture": "鳥取県"})
    PartnerOrganization.objects.get_or_create(municipality=town, code="bench", defaults={"name": "ベンチ法人"})
    coordinator = create_user(municipality=town, username=f"bench-sync-{uuid.uuid4().hex[:6]}", role=Role.COORDINATOR, password=None)
    households = Household.objects.bulk_create(
        Household(municipality=town, external_id=f"B{uuid.uuid4().hex[:10]}", address=f"ベンチ{i}",
                  location=Point(133.74 + i * 1e-4, 35.49, srid=4326))
        for i in range(100)
    )
    _token, raw = issue_device_token(user=coordinator, device_name="bench")
    device = Device.objects.create(id=uuid.uuid4(), municipality=town, user=coordinator)
    return town, coordinator, households, raw, device


def _op(household) -> dict:
    return {"op_id": str(uuid.uuid4()), "kind": "visit.create", "data": {
        "id": str(uuid.uuid4()), "household_id": str(household.pk), "outcome": "met",
        "visited_at": "2026-11-22T10:15:00+09:00", "notes": "ベンチ",
        "location": {"lon": household.location.x, "lat": household.location.y, "accuracy_m": 10},
    }}


def run() -> list[Figure]:
    """Both figures; TSUNAGU_BENCH_SYNC=push runs the push alone (the pull builds a town of 1M
    change rows first)."""
    if os.environ.get("TSUNAGU_BENCH_SYNC") == "push":
        return [push_figure()]
    return [push_figure(), empty_pull_figure()]


def push_figure() -> Figure:
    """The API's batches and the raw INSERT's batches alternate (one of each, 100 times), so both
    meet the same load on this shared machine; each side's time is the sum of its own batches."""
    town, user, households, raw, device = _setup()
    client = Client()
    headers = {"Authorization": f"Bearer {raw}"}
    batches = [[_op(households[(b * BATCH + i) % len(households)]) for i in range(BATCH)] for b in range(RECORDS // BATCH)]
    rows = [[(str(uuid.uuid4()), town.pk, str(households[i % 100].pk), user.pk, "met") for i in range(BATCH)]
            for _ in range(RECORDS // BATCH)]
    values = ",".join(["(%s, %s, %s, %s, %s, '', '{}'::jsonb, '', '{}', now(), now(), false)"] * BATCH)
    raw_sql = (
        "INSERT INTO visits_visitrecord (id, municipality_id, household_id, worker_id, outcome, met_person, answers,"
        " notes, concerns, visited_at, received_at, location_implausible) VALUES " + values + " ON CONFLICT (id) DO NOTHING"
    )
    api_s = sql_s = 0.0
    api_cpu = sql_cpu = 0.0
    statements = 0

    def counted(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    cpu = _cpu_reader()
    for batch, raw_rows in zip(batches, rows, strict=True):
        started, used = time.perf_counter(), cpu()
        with connection.execute_wrapper(counted):
            r = client.post("/api/v1/sync/push", {"device_id": str(device.pk), "ops": batch},
                            content_type="application/json", headers=headers)
        api_s += time.perf_counter() - started
        api_cpu += cpu() - used
        assert r.status_code == 200 and all(x["status"] == "applied" for x in r.json()["results"]), r.content[:300]
        started, used = time.perf_counter(), cpu()
        with connection.cursor() as cursor:
            cursor.execute(raw_sql, [v for row in raw_rows for v in row])
        sql_s += time.perf_counter() - started
        sql_cpu += cpu() - used
    api_rate, sql_rate = RECORDS / api_s, RECORDS / sql_s
    n = len(batches)
    return Figure(
        "sync push: 10,000 visits in batches of 100 (records/s) vs raw INSERT ON CONFLICT",
        api_rate, sql_rate, unit="rec/s",
        note=f"API {api_s:.1f}s, SQL {sql_s:.2f}s, alternating batches; per batch {statements / n:.0f} statements"
        f" (and the token check, commit); CPU of this process and its database backend per batch: API"
        f" {api_cpu / n * 1000:.1f} ms, SQL {sql_cpu / n * 1000:.1f} ms ({sql_cpu / api_cpu:.2f}x)",
    )


def _cpu_reader():
    """CPU seconds used so far by this process and by the database backend serving its connection.
    On a shared machine a batch's wall time mostly measures the load; its CPU time does not. The
    backend's is read from /proc (the project-local cluster on Linux); elsewhere only this
    process's counts."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")
    tick = os.sysconf("SC_CLK_TCK")

    def backend() -> float:
        if not stat.exists():
            return 0.0
        utime, stime = stat.read_text().rsplit(")", 1)[1].split()[11:13]
        return (int(utime) + int(stime)) / tick

    return lambda: time.process_time() + backend()


# --- the empty incremental pull ---------------------------------------------------------------------

PULL_WORKER_VISITS = 200  # what the worker's tablet holds: its schedule and those households
SMALL, LARGE = 10_000, 1_000_000  # change rows (households and scheduled visits) of the municipality


def _pull_town(code: str):
    """A municipality with two corporations: the measured worker's 自治会 (their 200 visits over the
    coming week) and another 自治会 where every other change row of the town lives."""
    import datetime as dt

    from django.contrib.gis.geos import MultiPolygon, Polygon
    from django.utils import timezone

    from accounts.roles import Role
    from accounts.services import create_user, issue_device_token
    from neighborhoods.models import Household, Municipality, Neighborhood
    from visits.models import Allocation, Campaign, Device, PartnerOrganization, ScheduledVisit

    def square(lon: float) -> MultiPolygon:
        return MultiPolygon(Polygon(((lon, 35.4), (lon + 0.05, 35.4), (lon + 0.05, 35.45), (lon, 35.45), (lon, 35.4))), srid=4326)

    town = Municipality.objects.create(code=code, name=f"同期引込ベンチ町{code}", prefecture="鳥取県")
    today = timezone.localdate()
    campaign = Campaign.objects.create(
        municipality=town, fiscal_year=2026, name="引込ベンチ", start_date=today - dt.timedelta(days=30),
        end_date=today + dt.timedelta(days=60), status="running", time_bands=["am", "pm"],
    )
    hoods, partners, workers = [], [], []
    for i in range(2):
        hood = Neighborhood.objects.create(municipality=town, code=f"PB{i}", name=f"引込{i}", geom=square(133.7 + i * 0.05))
        partner = PartnerOrganization.objects.create(municipality=town, code=f"pull{i}", name=f"引込法人{i}")
        Allocation.objects.create(municipality=town, campaign=campaign, neighborhood=hood, partner_organization=partner)
        workers.append(create_user(municipality=town, username=f"bench-pull-{i}-{uuid.uuid4().hex[:6]}",
                                   role=Role.OUTREACH_WORKER, password=None, partner_organization=partner))
        hoods.append(hood)
        partners.append(partner)
    households = Household.objects.bulk_create(
        Household(municipality=town, neighborhood=hoods[0], external_id=f"PW{i}", address=f"引込{i}",
                  location=Point(133.71 + i * 1e-4, 35.42, srid=4326))
        for i in range(PULL_WORKER_VISITS)
    )
    ScheduledVisit.objects.bulk_create(
        ScheduledVisit(municipality=town, campaign=campaign, household=h, neighborhood=hoods[0],
                       partner_organization=partners[0], worker=workers[0], date=today + dt.timedelta(days=1 + i % 7),
                       route_order=i % 12 + 1, status="issued")
        for i, h in enumerate(households)
    )
    _token, raw = issue_device_token(user=workers[0], device_name="bench pull")
    device = Device.objects.create(id=uuid.uuid4(), municipality=town, user=workers[0])
    ids = {"m": town.pk, "c": campaign.pk, "hood": hoods[1].pk, "p": partners[1].pk, "w": workers[1].pk}
    return ids, raw, device


def _grow_to(ids: dict, rows: int) -> None:
    """Households and scheduled visits of the other corporation, half each, set-based (triggers
    off while loading, change_seq from the sync sequence as the trigger would)."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM neighborhoods_household WHERE municipality_id = %s", [ids["m"]])
        have_households = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM visits_scheduledvisit WHERE municipality_id = %s", [ids["m"]])
        have = have_households + cur.fetchone()[0]
        add = max(0, rows - have) // 2
        if not add:
            return
        p = {**ids, "add": add, "from": have_households}
        with transaction.atomic():
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute(
                """
                CREATE TEMP TABLE bench_pull_hh ON COMMIT DROP AS
                SELECT gen_random_uuid() AS id, g FROM generate_series(%(from)s + 1, %(from)s + %(add)s) g;
                INSERT INTO neighborhoods_household
                       (id, municipality_id, external_id, address, address_kana, address_normalized, match_level,
                        location, neighborhood_id, status, living_arrangement, risk_flags, version, change_seq,
                        member_count, created_at, updated_at)
                SELECT h.id, %(m)s, 'PO' || h.g, '引込' || h.g, '', '引込' || h.g, 'coordinates',
                       ST_SetSRID(ST_MakePoint(133.751 + (h.g %% 1000) * 4e-5, 35.401 + (h.g / 1000 %% 1000) * 4e-5), 4326),
                       %(hood)s, 'occupied', 'family', '{}', 1, nextval('sync_change_seq'), 1, now(), now()
                  FROM bench_pull_hh h;
                INSERT INTO visits_scheduledvisit
                       (id, municipality_id, campaign_id, household_id, neighborhood_id, partner_organization_id,
                        worker_id, date, time_band, route_order, attempt, priority, status, outcome, leg_m, version,
                        change_seq, created_at, updated_at)
                SELECT gen_random_uuid(), %(m)s, %(c)s, h.id, %(hood)s, %(p)s, %(w)s,
                       CURRENT_DATE + (h.g %% 14)::int, 'am', h.g %% 12 + 1, 1, false, 'planned', '', 0, 1,
                       nextval('sync_change_seq'), now(), now()
                  FROM bench_pull_hh h;
                """, p,
            )
        cur.execute("ANALYZE neighborhoods_household; ANALYZE visits_scheduledvisit")


def _pull_to_the_end(client: Client, headers: dict, device) -> str:
    cursor = ""
    while True:
        page = client.get("/api/v1/sync/pull", {"device_id": str(device.pk), "cursor": cursor, "limit": "500"}, headers=headers)
        assert page.status_code == 200, page.content[:300]
        cursor = page.json()["next_cursor"]
        if not page.json()["has_more"]:
            return cursor


def _empty_pulls(client: Client, headers: dict, device, cursor: str, times: list[float], n: int = 5) -> str:
    """Pulls of a device that holds everything, each presenting the cursor of the previous
    answer, as a tablet would; their durations join `times`. Returns the last cursor."""
    for _ in range(n):
        started = time.perf_counter()
        page = client.get("/api/v1/sync/pull", {"device_id": str(device.pk), "cursor": cursor, "limit": "500"}, headers=headers)
        times.append(time.perf_counter() - started)
        body = page.json()
        assert page.status_code == 200 and not body["changes"] and not body["purge"], page.content[:300]
        cursor = body["next_cursor"]
    return cursor


def empty_pull_figure() -> Figure:
    """Two towns in one database, one of 10,000 change rows and one of 1,000,000, measured in
    alternating rounds (this machine's load drifts over minutes): the median of each."""
    import statistics

    client = Client()
    towns = []
    started = time.perf_counter()
    for code, rows in (("999011", SMALL), ("999012", LARGE)):
        ids, raw, device = _pull_town(code)
        _grow_to(ids, rows)
        towns.append(({"Authorization": f"Bearer {raw}"}, device))
    grown_s = time.perf_counter() - started
    cursors = [_pull_to_the_end(client, headers, device) for headers, device in towns]
    times: list[list[float]] = [[], []]
    for _round in range(6):
        for i, (headers, device) in enumerate(towns):
            cursors[i] = _empty_pulls(client, headers, device, cursors[i], times[i])
    small, large = (statistics.median(t) * 1000 for t in times)
    return Figure(
        "sync pull, empty incremental (device holds its 400 rows): 1M vs 10k change rows", large, small, unit="ms",
        note=f"{PULL_WORKER_VISITS} visits + their households held; 6 alternating rounds of 5; towns built in {grown_s:.0f}s",
    )
