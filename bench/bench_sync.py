"""Push 10,000 visit records in batches of 100 through the sync API, against a raw SQL
INSERT … ON CONFLICT DO NOTHING of the same rows in batches of 100, in the same run."""

import time
import uuid

from django.db import connection
from django.test import Client

from bench.common import Figure

RECORDS = 10_000
BATCH = 100


def _setup():
    from django.contrib.gis.geos import Point

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
    town, user, households, raw, device = _setup()
    client = Client()
    headers = {"Authorization": f"Bearer {raw}"}
    batches = [[_op(households[(b * BATCH + i) % len(households)]) for i in range(BATCH)] for b in range(RECORDS // BATCH)]

    started = time.perf_counter()
    for batch in batches:
        r = client.post("/api/v1/sync/push", {"device_id": str(device.pk), "ops": batch},
                        content_type="application/json", headers=headers)
        assert r.status_code == 200 and all(x["status"] == "applied" for x in r.json()["results"]), r.content[:300]
    api_s = time.perf_counter() - started

    rows = [[(str(uuid.uuid4()), town.pk, str(households[i % 100].pk), user.pk, "met") for i in range(BATCH)]
            for _ in range(RECORDS // BATCH)]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for batch in rows:
            values = ",".join(["(%s, %s, %s, %s, %s, '', '{}'::jsonb, '', '{}', now(), now(), false)"] * len(batch))
            cursor.execute(
                "INSERT INTO visits_visitrecord (id, municipality_id, household_id, worker_id, outcome, met_person, answers,"
                " notes, concerns, visited_at, received_at, location_implausible) VALUES " + values
                + " ON CONFLICT (id) DO NOTHING",
                [v for row in batch for v in row],
            )
    sql_s = time.perf_counter() - started
    api_rate, sql_rate = RECORDS / api_s, RECORDS / sql_s
    return [Figure(
        "sync push: 10,000 visits in batches of 100 (records/s) vs raw INSERT ON CONFLICT",
        api_rate, sql_rate, unit="rec/s",
        note=f"API {api_s:.1f}s, SQL {sql_s:.2f}s; the API validates each op in its own savepoint and records it for idempotency",
    )]
