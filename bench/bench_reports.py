"""The 年度 report at a city's scale: 100,000 households, 300,000 visit records, 20,000 cases (with
their contacts), concerns and meetings, all in 令和8年度. The API (GET /reports/fiscal-years/2026,
as a coordinator) is measured against the same statements run as raw SQL on one cursor, in the same run:
the first request (no stored report: computed in the request), and a repeated one (the stored report,
reports.snapshots: the data version's lookups and one row). The per-corporation report of the 年度
likewise, stored against its two statements raw.

The city comes from bench.maps_data.synthetic_city (自治会 grid, households, one campaign); the
visit records, cases, contacts, concerns and meetings are added here in SQL."""

import time

from django.db import connection, transaction
from django.test import Client

from bench.common import Figure, best_of
from bench.maps_data import synthetic_city

CODE = "999301"
HOUSEHOLDS = 100_000
HOODS = 2_000
VISITS = 300_000
CASES = 20_000
CONTACTS_PER_CASE = 6
CONCERNS = 30_000


def _add_year(city: dict) -> dict:
    """Top the city up to VISITS visit records and add the outreach side (idempotent by counts)."""
    m = city["municipality"]
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM visits_visitrecord WHERE municipality_id = %s", [m.pk])
        have = cur.fetchone()[0]
    if have >= VISITS:
        return city
    p = {"m": m.pk, "more": VISITS - have, "cases": CASES, "contacts": CONTACTS_PER_CASE, "concerns": CONCERNS}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("SELECT setseed(0.13)")
        cur.execute("SELECT id FROM accounts_user WHERE municipality_id = %(m)s AND role = 'outreach_worker' LIMIT 1", p)
        p["worker"] = cur.fetchone()[0]
        cur.execute("SELECT id FROM accounts_user WHERE municipality_id = %(m)s AND role = 'coordinator' LIMIT 1", p)
        p["coord"] = cur.fetchone()[0]
        cur.execute(
            """
            CREATE TEMP TABLE bench_h ON COMMIT DROP AS
            SELECT id, neighborhood_id, row_number() OVER (ORDER BY id) AS k
              FROM neighborhoods_household WHERE municipality_id = %(m)s;
            CREATE UNIQUE INDEX ON bench_h (k);
            INSERT INTO visits_visitrecord
                   (id, municipality_id, household_id, worker_id, outcome, met_person, answers, notes, concerns,
                    visited_at, received_at, location_implausible)
            SELECT gen_random_uuid(), %(m)s, h.id, %(worker)s,
                   (ARRAY['absent', 'absent', 'absent', 'met', 'refused', 'leaflet_left', 'moved'])[1 + (g %% 7)],
                   '', '{}'::jsonb, '', '{}',
                   timestamptz '2026-04-01 09:00+09' + ((g * 7919) %% 360) * interval '1 day'
                                                      + ((g * 31) %% 8) * interval '1 hour', now(), false
              FROM generate_series(1::bigint, %(more)s) g
              JOIN bench_h h ON h.k = 1 + (g * 104729) %% (SELECT count(*) FROM bench_h);
            INSERT INTO outreach_outreachcase
                   (id, municipality_id, household_id, title, cadence_days, stage, consent, consent_date, consent_scope,
                    status, opened_on, closed_on, closure_reason, next_contact_due, overdue, evaluation, notes,
                    version, change_seq, created_at, updated_at)
            SELECT gen_random_uuid(), %(m)s, h.id, '合成ケース', 14,
                   (ARRAY['no_contact', 'contact', 'conversation', 'trust', 'engaged'])[1 + g %% 5],
                   CASE WHEN g %% 4 = 0 THEN 'consented' ELSE 'none' END,
                   CASE WHEN g %% 4 = 0 THEN DATE '2026-05-01' + g %% 200 END, '',
                   CASE WHEN g %% 3 = 0 THEN 'closed' ELSE 'open' END,
                   DATE '2025-10-01' + g %% 400,
                   CASE WHEN g %% 3 = 0 THEN DATE '2025-10-01' + g %% 400 + 30 END,
                   CASE WHEN g %% 3 = 0 THEN 'resolved' ELSE '' END,
                   DATE '2026-10-01' + g %% 90, false, '', '', 1, nextval('sync_change_seq'), now(), now()
              FROM generate_series(1, %(cases)s) g JOIN bench_h h ON h.k = 1 + (g * 7) %% (SELECT count(*) FROM bench_h);
            INSERT INTO outreach_casecontact (id, case_id, kind, contacted_on, reached, note, by_id, correction_reason,
                                              retracted, created_at)
            SELECT gen_random_uuid(), c.id, (ARRAY['visit', 'call', 'letter', 'no_answer', 'meeting'])[1 + k %% 5],
                   c.opened_on + k * 9, k %% 2 = 0, '', %(coord)s, '', false, now()
              FROM outreach_outreachcase c, generate_series(1, %(contacts)s) k
             WHERE c.municipality_id = %(m)s;
            INSERT INTO outreach_concern
                   (id, municipality_id, source, source_detail, place_description, categories, urgency, description,
                    status, referred_to, version, change_seq, created_at, updated_at, household_id, neighborhood_id,
                    reported_by_id)
            SELECT gen_random_uuid(), %(m)s, (ARRAY['meeting', 'commissioner', 'visit', 'counter', 'other'])[1 + g %% 5],
                   '', '', ARRAY[(ARRAY['living_alone', 'hikikomori', '8050', 'poverty', 'dementia'])[1 + g %% 5]]::varchar[],
                   'normal', '', CASE WHEN g %% 3 = 0 THEN 'referred' ELSE 'triaged' END,
                   CASE WHEN g %% 3 = 0 THEN (ARRAY['elderly', 'poverty', 'health'])[1 + g %% 3] ELSE '' END,
                   1, nextval('sync_change_seq'), timestamptz '2026-04-01 10:00+09' + (g %% 360) * interval '1 day',
                   now(), h.id, h.neighborhood_id, %(coord)s
              FROM generate_series(1, %(concerns)s) g JOIN bench_h h ON h.k = 1 + (g * 13) %% (SELECT count(*) FROM bench_h);
            INSERT INTO outreach_concerntransition (concern_id, from_status, to_status, reason, by_id, at)
            SELECT c.id, 'new', c.status, '合成', %(coord)s, c.created_at + interval '2 days'
              FROM outreach_concern c WHERE c.municipality_id = %(m)s;
            INSERT INTO outreach_meeting (municipality_id, neighborhood_id, held_on, attendees, notes, recorded_by_id, created_at)
            SELECT %(m)s, n.id, DATE '2026-04-10' + (n.id %% 12)::int * 30, '[]', '', %(coord)s, now()
              FROM neighborhoods_neighborhood n WHERE n.municipality_id = %(m)s;
            INSERT INTO outreach_casemeeting (case_id, kind, held_on, members, confidentiality_acknowledged, notes,
                                              missing_resources, recorded_by_id, created_at)
            SELECT c.id, CASE WHEN c.consent = 'consented' THEN 'multi_agency' ELSE 'support' END,
                   DATE '2026-04-15' + (abs(hashtext(c.id::text)) %% 24) * 14, '[]', true, '', '', %(coord)s, now()
              FROM outreach_outreachcase c WHERE c.municipality_id = %(m)s;
            -- With triggers off, the new records' finish times are dated here (migration visits 0008).
            SELECT visits_date_finishes(c.id) FROM visits_campaign c WHERE c.municipality_id = %(m)s;
            """, p,
        )
    with connection.cursor() as cur:
        for table in ("visits_visitrecord", "outreach_outreachcase", "outreach_casecontact", "outreach_concern",
                      "outreach_concerntransition", "outreach_meeting", "outreach_casemeeting"):
            cur.execute(f"ANALYZE {table}")
    return city


def _raw_statements(municipality_id: int, year: int) -> list[tuple[str, dict]]:
    from reports import fiscal
    from visits import coverage
    from visits.models import Campaign

    params = fiscal._params(municipality_id, year)
    statements = [(sql, params) for sql in (
        fiscal._PLACES_SQL, fiscal._VISITS_SQL, fiscal._CONCERNS_SQL, fiscal._CASES_SQL,
        fiscal._CONTACTS_SQL, fiscal._MEETINGS_SQL,
    )]
    for campaign in Campaign.objects.filter(municipality_id=municipality_id, fiscal_year=year):
        statements.append((coverage._CAMPAIGN_CELLS_SQL, {"campaign": campaign.pk, "municipality": municipality_id}))
    return statements



def _run_raw(municipality_id: int, statements: list) -> None:
    """The report's statements as raw SQL in the municipality's scope, every row fetched."""
    from backend.tenancy import job_scope

    with job_scope(municipality_id), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            cursor.fetchall()

def run() -> list[Figure]:
    from accounts.models import User
    from accounts.services import issue_device_token
    from backend.tenancy import job_scope

    started = time.perf_counter()
    city = _add_year(synthetic_city(code=CODE, hoods=HOODS, households=HOUSEHOLDS))
    m = city["municipality"]
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM visits_visitrecord WHERE municipality_id = %s", [m.pk])
        visits = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM outreach_outreachcase WHERE municipality_id = %s", [m.pk])
        cases = cur.fetchone()[0]
    print(f"  [reports] {city['households']:,} households, {visits:,} visit records, {cases:,} cases "
          f"ready in {time.perf_counter() - started:.0f}s")
    coordinator = User.objects.filter(municipality=m, role="coordinator").order_by("pk").first()
    _token, raw = issue_device_token(user=coordinator, device_name="bench")
    headers = {"Authorization": f"Bearer {raw}"}
    client = Client()
    url = "/api/v1/reports/fiscal-years/2026"
    first = client.get(url, headers=headers)
    assert first.status_code == 200, first.content[:300]
    body = first.json()
    assert body["visits"]["total"]["visits"] == visits, body["visits"]["total"]

    statements = _raw_statements(m.pk, 2026)

    def raw_sql():
        _run_raw(m.pk, statements)

    from reports.models import ReportSnapshot

    def first_request():
        with job_scope(m.pk):
            ReportSnapshot.objects.filter(municipality=m).delete()
        r = client.get(url, headers=headers)
        assert r.status_code == 200 and r.json()["stale"] is False

    first_request()
    stored_body = client.get(url, headers=headers).json()
    assert {k: v for k, v in stored_body.items() if k != "as_of"} == {k: v for k, v in body.items() if k != "as_of"}
    computed = best_of(first_request, repeat=3)
    stored = best_of(lambda: client.get(url, headers=headers), repeat=7)
    baseline = best_of(raw_sql, repeat=5)
    public = best_of(lambda: client.get(url + "?public=true", headers=headers), repeat=7)

    corp_url = "/api/v1/reports/corporations?fiscal_year=2026"
    assert client.get(corp_url, headers=headers).status_code == 200
    corp_stored = best_of(lambda: client.get(corp_url, headers=headers), repeat=7)
    corp_statements = _corporation_statements(m.pk, 2026)

    def corp_raw():
        _run_raw(m.pk, corp_statements)

    corp_baseline = best_of(corp_raw, repeat=5)
    note = (f"{city['households']:,} households, {visits:,} visits, {cases:,} cases, "
            f"{len(statements)} statements")
    return [
        Figure("fiscal-year report first request (computed) vs its SQL raw", computed, baseline, note=note),
        Figure("fiscal-year report repeated (stored) vs its SQL raw", stored, baseline),
        Figure("fiscal-year report repeated (stored) vs the first request", stored, computed),
        Figure("fiscal-year report public (stored, suppressed) vs its SQL raw", public, baseline),
        Figure("corporations report of the 年度 (stored) vs its SQL raw", corp_stored, corp_baseline),
    ]


def _corporation_statements(municipality_id: int, year: int) -> list[tuple[str, dict]]:
    from django.conf import settings

    from reports import corporations
    from visits.models import Campaign, CampaignHousehold

    params = {
        "m": municipality_id, "tz": settings.TIME_ZONE,
        "campaigns": list(Campaign.objects.filter(municipality_id=municipality_id, fiscal_year=year)
                          .values_list("pk", flat=True)),
        "final_outcomes": corporations._FINAL_OUTCOMES, "final_states": list(CampaignHousehold.FINAL_STATES),
        "cancelled": corporations._CANCELLED, "absent": corporations._ABSENT, "leaflet": corporations._LEAFLET,
        "recorded": corporations._RECORDED,
    }
    return [(corporations._REPORT_SQL, params), (corporations._WITHOUT_RECORD_SQL, params)]
