"""The daily overdue sweep over 100,000 open cases (half of them past due): the service's
set-based UPDATE against the same UPDATE as raw SQL, each run after resetting the flags."""

import time

from django.db import connection
from django.utils import timezone

from bench.common import Figure

CASES = 100_000


def _setup() -> int:
    from neighborhoods.models import Municipality

    town, _ = Municipality.objects.get_or_create(code="999003", defaults={"name": "見守りベンチ町", "prefecture": "鳥取県"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM outreach_outreachcase WHERE municipality_id = %s", [town.pk])
        if cursor.fetchone()[0] >= CASES:
            return town.pk
        # Loading the fixture, not measuring it: skip the per-row triggers (history, change_seq).
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "INSERT INTO neighborhoods_household (id, municipality_id, external_id, address, address_kana, status,"
            " living_arrangement, risk_flags, version, change_seq, created_at, updated_at)"
            " SELECT gen_random_uuid(), %s, 'BO' || g, 'ベンチ' || g, '', 'occupied', '', '{}', 1, 0, now(), now()"
            " FROM generate_series(1, 1000) g",
            [town.pk],
        )
        cursor.execute(
            "INSERT INTO outreach_outreachcase (id, municipality_id, household_id, title, cadence_days, stage, consent,"
            " consent_scope, status, opened_on, next_contact_due, overdue, closure_reason, evaluation, notes, version,"
            " change_seq, created_at, updated_at)"
            " SELECT gen_random_uuid(), %s, h.id, 'bench', 14, 'contact', 'none', '', 'open', current_date - 30,"
            "        current_date + (g %% 40) - 20, false, '', '', '', 1, 0, now(), now()"
            " FROM generate_series(1, %s) g,"
            " (SELECT array_agg(id ORDER BY external_id) AS ids FROM neighborhoods_household WHERE municipality_id = %s) a,"
            " LATERAL (SELECT a.ids[1 + g %% 1000] AS id) h",
            [town.pk, CASES, town.pk],
        )
        cursor.execute("SET session_replication_role = DEFAULT")
    return town.pk


def _reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE outreach_outreachcase SET overdue = false WHERE overdue")


def run() -> list[Figure]:
    from outreach.services import _SWEEP_CASES, _SWEEP_WATCHES, sweep_overdue

    _setup()
    today = timezone.localdate()
    service_t, sql_t, changed = [], [], 0
    for _ in range(3):
        _reset()
        started = time.perf_counter()
        changed = sweep_overdue(today=today)["cases_changed"]
        service_t.append(time.perf_counter() - started)
        _reset()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(_SWEEP_CASES, {"today": today})
            cursor.execute(_SWEEP_WATCHES, {"today": today})
        sql_t.append(time.perf_counter() - started)
    return [Figure(
        f"overdue sweep over {CASES:,} cases (service vs raw SQL)", min(service_t) * 1000, min(sql_t) * 1000,
        unit="ms", note=f"{changed:,} cases marked overdue per run; one UPDATE each for cases and 見守り",
    )]
