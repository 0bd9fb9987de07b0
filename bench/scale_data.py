"""A synthetic town at any size, up to the largest municipality (Yokohama: 1.8 million households),
built set-based in SQL for bench_scale (issue 15, point 5).

Everything grows with the households, so that a request whose work is bounded (a page, a tile, a
自治会, a case) should cost the same in a town of 100,000 as in one of 1.8 million:

- 自治会: one per 600 households (3,000 at 1.8M), square cells of CELL degrees tiling the town
  (~360 m x 440 m, ~3,800 households per km², Yokohama's density); 18 地区 (wards), one 日常生活圏域 per
  20 自治会;
- households at random points of their cell (stored cell by cell, as an import by address leaves
  them), one resident each (the 世帯主, with kana);
- 50 partner corporations; one worker per 1,800 households, one 民生委員 per 自治会, 20 coordinators,
  10 supervisors, 2 administrators (4,032 users at 1.8M);
- one running campaign over every 自治会 (the 自治会 allocated to the corporations in blocks),
  progress falling from complete to not started along the code order; a final visit record per
  finished household; a scheduled visit (planned, or issued up to today) for a tenth of the
  households not finished, from a week ago to two weeks ahead;
- concerns (1 per 36 households), continuous outreach cases (1 per 18: 100,000 at 1.8M) with a
  contact each, 見守り (1 per 60), one 支え愛連絡会 per 自治会; a published survey form.

Triggers are off while loading (session_replication_role = replica: the append-only guards, the
history triggers and change_seq's), so change_seq is taken from the sync sequence here and the
history tables stay empty (a history row records a change; a generated town has had none); the
campaign households' finished_at is filled by the function its campaign trigger calls (migration
visits 0008), or the coverage refresh would find no finish to date."""

import datetime as dt
import math
import time

from django.db import connection, transaction

CELL = 0.004  # degrees
LON0, LAT0 = 139.45, 35.35
HOUSEHOLDS_PER_HOOD = 600
PARTNERS = 50


def synthetic_town(*, code: str, households: int, seed: float = 0.15) -> dict:
    """Create (or reuse) the town `code` with `households` households; returns what the bench needs."""
    from neighborhoods.models import Municipality
    from visits.models import Campaign

    town, _created = Municipality.objects.get_or_create(
        code=code, defaults={"name": f"大合成市{code}", "prefecture": "神奈川県"}
    )
    if not Campaign.objects.filter(municipality=town).exists():  # built in one transaction, or not at all
        started = time.perf_counter()
        _build(town, households, seed)
        print(f"    built {households:,} households in {time.perf_counter() - started:.0f}s")
    return summary(town)


def _params(town, households: int, seed: float) -> dict:
    hoods = max(1, households // HOUSEHOLDS_PER_HOOD)
    return {
        "m": town.pk, "code": town.code, "hh": households, "n": hoods, "cols": math.ceil(math.sqrt(hoods * 1.25)),
        "cell": CELL, "lon0": LON0, "lat0": LAT0, "seed": seed, "partners": PARTNERS,
        "workers": max(PARTNERS, households // 1800), "areas": max(1, hoods // 20),
        "today": _today(), "fy": 2026, "start": dt.date(2026, 9, 1), "end": dt.date(2027, 3, 31),
    }


def _today() -> dt.date:
    from django.utils import timezone

    return timezone.localdate()


def _build(town, households: int, seed: float) -> None:
    from visits.models import Campaign

    p = _params(town, households, seed)
    steps = (_places, _people, _users, _campaign, _visits, _outreach)
    with transaction.atomic(), connection.cursor() as cur:
        campaign = Campaign.objects.create(
            municipality=town, fiscal_year=p["fy"], name="大規模調査", start_date=p["start"], end_date=p["end"],
            status="running", time_bands=["am", "pm"],
        )
        p["c"] = campaign.pk
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cur.execute("SET LOCAL work_mem = '64MB'")
        cur.execute("SELECT setseed(%(seed)s)", p)
        for step in steps:
            started = time.perf_counter()
            step(cur, p)
            # The next step joins what this one wrote: without statistics of the rows this
            # transaction added (autovacuum cannot see them yet) the planner took 1.8 million
            # campaign households for a few and nested-looped over them for most of an hour.
            cur.execute("ANALYZE")
            print(f"      {step.__name__.strip('_')}: {time.perf_counter() - started:.0f}s")
        # The triggers were off (replica): the 自治会's household tallies as migration
        # neighborhoods/0007 fills them.
        cur.execute(
            """
            INSERT INTO neighborhoods_householdtally (neighborhood_id, municipality_id, households)
            SELECT h.neighborhood_id, %(m)s, count(*) FROM neighborhoods_household h
             WHERE h.municipality_id = %(m)s AND h.neighborhood_id IS NOT NULL AND h.merged_into_id IS NULL
             GROUP BY h.neighborhood_id
            ON CONFLICT (neighborhood_id) DO UPDATE SET households = EXCLUDED.households
            """, p,
        )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")  # statistics, as autovacuum would leave them on a live database


def _places(cur, p: dict) -> None:
    cur.execute(
        """
        INSERT INTO neighborhoods_district (municipality_id, name, code)
        SELECT %(m)s, '区' || d, 'D' || lpad(d::text, 2, '0') FROM generate_series(1, 18) d;
        INSERT INTO neighborhoods_dailylifearea (municipality_id, name, code)
        SELECT %(m)s, '圏域' || a, 'A' || lpad(a::text, 4, '0') FROM generate_series(1, %(areas)s) a;
        INSERT INTO neighborhoods_neighborhood
               (municipality_id, code, name, kana, geom, created_at, updated_at, district_id, daily_life_area_id)
        SELECT %(m)s, 'S' || lpad(i::text, 5, '0'), '合成自治会' || i, '',
               ST_Multi(ST_MakeEnvelope(%(lon0)s + (i %% %(cols)s) * %(cell)s, %(lat0)s + (i / %(cols)s) * %(cell)s,
                                        %(lon0)s + (i %% %(cols)s + 1) * %(cell)s,
                                        %(lat0)s + (i / %(cols)s + 1) * %(cell)s, 4326)),
               now(), now(), d.id, a.id
          FROM generate_series(0, %(n)s - 1) i
          JOIN neighborhoods_district d ON d.municipality_id = %(m)s AND d.code = 'D' || lpad((1 + i * 18 / %(n)s)::text, 2, '0')
          JOIN neighborhoods_dailylifearea a
            ON a.municipality_id = %(m)s AND a.code = 'A' || lpad((1 + i * %(areas)s / %(n)s)::text, 4, '0');
        CREATE TEMP TABLE scale_cells ON COMMIT DROP AS
        SELECT id, (row_number() OVER (ORDER BY code) - 1)::int AS i,
               ((row_number() OVER (ORDER BY code) - 1) * %(partners)s / %(n)s)::int AS p
          FROM neighborhoods_neighborhood WHERE municipality_id = %(m)s;
        CREATE UNIQUE INDEX ON scale_cells (i);
        ANALYZE scale_cells;
        INSERT INTO visits_partnerorganization (municipality_id, code, name, created_at, address, contact_person, office, phone)
        SELECT %(m)s, 'P' || lpad(k::text, 3, '0'), '合成福祉法人' || k, now(), '', '',
               ST_SetSRID(ST_MakePoint(%(lon0)s + random() * %(cols)s * %(cell)s, %(lat0)s + random() * 40 * %(cell)s), 4326), ''
          FROM generate_series(0, %(partners)s - 1) k;
        CREATE TEMP TABLE scale_partners ON COMMIT DROP AS
        SELECT id, (row_number() OVER (ORDER BY code) - 1)::int AS p
          FROM visits_partnerorganization WHERE municipality_id = %(m)s;
        INSERT INTO neighborhoods_communityresource
               (municipality_id, name, type, location, neighborhood_id, opening_days, address, contact, created_at, updated_at)
        SELECT %(m)s, '合成サロン' || c.i, 'salon', ST_PointOnSurface(n.geom), n.id, '{}', '', '', now(), now()
          FROM scale_cells c JOIN neighborhoods_neighborhood n ON n.id = c.id WHERE c.i %% 5 = 0;
        """, p,
    )


def _people(cur, p: dict) -> None:
    cur.execute(
        """
        CREATE TEMP TABLE scale_hh ON COMMIT DROP AS
        SELECT g, floor(random() * %(n)s)::int AS i, random() AS rx, random() AS ry, random() AS r1, random() AS r2,
               random() AS r3
          FROM generate_series(1, %(hh)s) g;
        INSERT INTO neighborhoods_household
               (id, municipality_id, external_id, address, address_kana, address_normalized, match_level, member_count,
                location, neighborhood_id, status, living_arrangement, risk_flags, version, change_seq, created_at,
                updated_at)
        SELECT gen_random_uuid(), %(m)s, 'X' || lpad(h.g::text, 8, '0'), '合成市' || h.i || '番' || h.g, '',
               '合成市' || h.i || '-' || h.g, 'coordinates', 1 + (h.r2 * 4)::int,
               ST_SetSRID(ST_MakePoint(%(lon0)s + ((h.i %% %(cols)s) + 0.02 + 0.96 * h.rx) * %(cell)s,
                                       %(lat0)s + ((h.i / %(cols)s) + 0.02 + 0.96 * h.ry) * %(cell)s), 4326),
               c.id,
               CASE WHEN h.r1 < 0.03 THEN 'vacant' WHEN h.r1 < 0.05 THEN 'moved' ELSE 'occupied' END,
               CASE WHEN h.r2 < 0.15 THEN 'single_elderly' WHEN h.r2 < 0.30 THEN 'elderly_only'
                    WHEN h.r2 < 0.80 THEN 'family' ELSE 'single' END,
               CASE WHEN h.r3 < 0.01 THEN ARRAY['8050', 'hikikomori']::varchar[]
                    WHEN h.r3 < 0.03 THEN ARRAY['hikikomori']::varchar[]
                    WHEN h.r3 < 0.035 THEN ARRAY['hoarding']::varchar[]
                    ELSE '{}'::varchar[] END,
               1, nextval('sync_change_seq'), now(), now()
          FROM scale_hh h JOIN scale_cells c ON c.i = h.i
         ORDER BY h.i, h.g;
        INSERT INTO neighborhoods_resident
               (id, municipality_id, household_id, name, kana, birth_year, age_band, relation, flags, version,
                created_at, updated_at)
        SELECT gen_random_uuid(), %(m)s, h.id, '合成 ' || h.external_id, 'ゴウセイ' || right(h.external_id, 4), y,
               CASE WHEN y <= 1950 THEN '75_plus' WHEN y <= 1961 THEN '65_74' ELSE '40_64' END, 'head', '{}', 1,
               now(), now()
          FROM (SELECT h.*, 1935 + (abs(hashtext(h.external_id)) %% 50) AS y
                  FROM neighborhoods_household h WHERE h.municipality_id = %(m)s) h;
        """, p,
    )


def _users(cur, p: dict) -> None:
    cur.execute(
        """
        INSERT INTO accounts_user
               (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined, role,
                display_name, municipality_id, partner_organization_id)
        SELECT '!', false, 'scale-' || %(code)s || '-' || r.role || '-' || k, '', '', '', false, true, now(), r.role,
               r.role || k, %(m)s,
               CASE WHEN r.role = 'outreach_worker' THEN (SELECT id FROM scale_partners WHERE p = k %% %(partners)s) END
          FROM (VALUES ('outreach_worker', %(workers)s), ('commissioner', %(n)s), ('coordinator', 20),
                       ('supervisor', 10), ('admin', 2)) r(role, count),
               generate_series(0, r.count - 1) k;
        INSERT INTO accounts_user_neighborhoods (user_id, neighborhood_id)
        SELECT u.id, c.id FROM accounts_user u JOIN scale_cells c
            ON u.username = 'scale-' || %(code)s || '-commissioner-' || c.i
         WHERE u.municipality_id = %(m)s;
        INSERT INTO visits_surveyform (municipality_id, key, version, title, definition, published, change_seq, created_at)
        VALUES (%(m)s, 'household-visit', 1, '世帯訪問調査票',
                '{"questions": [{"id": "q", "type": "text", "label": "メモ"}]}', true, nextval('sync_change_seq'), now());
        """, p,
    )


def _campaign(cur, p: dict) -> None:
    cur.execute(
        """
        INSERT INTO visits_campaignneighborhood (campaign_id, neighborhood_id, position)
        SELECT %(c)s, id, i + 1 FROM scale_cells;
        INSERT INTO visits_allocation (municipality_id, campaign_id, neighborhood_id, partner_organization_id, created_at)
        SELECT %(m)s, %(c)s, c.id, sp.id, now() FROM scale_cells c JOIN scale_partners sp ON sp.p = c.p;
        INSERT INTO visits_campaignhousehold
               (municipality_id, campaign_id, household_id, neighborhood_id, state, priority, priority_reason,
                attempts, last_attempt_date, last_attempt_band, updated_at)
        SELECT %(m)s, %(c)s, x.id, x.neighborhood_id, x.state, false, '',
               CASE WHEN x.state NOT IN ('pending', 'scheduled') OR x.r2 < 0.3 THEN 1 ELSE 0 END,
               CASE WHEN x.state NOT IN ('pending', 'scheduled') OR x.r2 < 0.3 THEN %(start)s + (x.r3 * 80)::int END,
               '', now()
          FROM (
            SELECT h.id, h.neighborhood_id, r2, r3,
                   CASE WHEN r < greatest(0.0, least(1.0, 2 - 3.0 * c.i / %(n)s)) THEN
                        CASE WHEN h.status IN ('vacant', 'moved') THEN h.status::text
                             WHEN r2 < 0.75 THEN 'met' WHEN r2 < 0.85 THEN 'refused' ELSE 'leaflet_left' END
                        WHEN abs(hashtext(h.id::text)) %% 10 = 0 THEN 'scheduled'  -- a tenth of the rest
                        ELSE 'pending' END AS state
              FROM (SELECT h.*, random() AS r, random() AS r2, random() AS r3
                      FROM neighborhoods_household h WHERE h.municipality_id = %(m)s) h
              JOIN scale_cells c ON c.id = h.neighborhood_id
          ) x;
        """, p,
    )


def _visits(cur, p: dict) -> None:
    # Each household's worker: one of its 自治会's corporation's workers, by a hash of its id
    # (equality joins on small analysed tables: a join on the hash alone would compare every pair).
    cur.execute(
        """
        CREATE TEMP TABLE scale_workers ON COMMIT DROP AS
        SELECT u.id, u.partner_organization_id AS partner,
               (row_number() OVER (PARTITION BY u.partner_organization_id ORDER BY u.id) - 1)::int AS w
          FROM accounts_user u WHERE u.municipality_id = %(m)s AND u.role = 'outreach_worker';
        CREATE TEMP TABLE scale_crews ON COMMIT DROP AS
        SELECT partner, count(*)::int AS per FROM scale_workers GROUP BY partner;
        ANALYZE scale_workers;
        ANALYZE scale_crews;
        CREATE TEMP TABLE scale_assigned ON COMMIT DROP AS
        SELECT x.*, w.id AS worker_id
          FROM (SELECT ch.household_id, ch.neighborhood_id, ch.state, ch.last_attempt_date, c.partner,
                       abs(hashtext(ch.household_id::text)) AS k, abs(hashtext(ch.household_id::text)) %% c.per AS slot
                  FROM visits_campaignhousehold ch
                  JOIN visits_allocation a ON a.campaign_id = ch.campaign_id AND a.neighborhood_id = ch.neighborhood_id
                  JOIN scale_crews c ON c.partner = a.partner_organization_id
                 WHERE ch.campaign_id = %(c)s) x
          JOIN scale_workers w ON w.partner = x.partner AND w.w = x.slot;
        ANALYZE scale_assigned;
        INSERT INTO visits_visitrecord
               (id, municipality_id, household_id, worker_id, outcome, met_person, answers, notes, concerns,
                visited_at, received_at, location_implausible)
        SELECT gen_random_uuid(), %(m)s, s.household_id, s.worker_id, s.state, '', '{}'::jsonb, '', '{}',
               (s.last_attempt_date + time '10:00') AT TIME ZONE 'Asia/Tokyo', now(), false
          FROM scale_assigned s WHERE s.state IN ('met', 'refused', 'leaflet_left', 'moved', 'vacant');
        INSERT INTO visits_scheduledvisit
               (id, date, time_band, route_order, attempt, priority, status, leg_m, version, created_at, updated_at,
                campaign_id, household_id, municipality_id, neighborhood_id, partner_organization_id, worker_id,
                change_seq, outcome)
        SELECT gen_random_uuid(), x.date, CASE WHEN x.k %% 2 = 0 THEN 'am' ELSE 'pm' END,
               1 + (x.k %% 12), 1, false, CASE WHEN x.date <= %(today)s THEN 'issued' ELSE 'planned' END, 200, 1,
               now(), now(), %(c)s, x.household_id, %(m)s, x.neighborhood_id, x.partner, x.worker_id,
               nextval('sync_change_seq'), ''
          FROM (SELECT s.*, %(today)s - 7 + (s.k / 10 %% 21) AS date
                  FROM scale_assigned s WHERE s.state = 'scheduled') x;
        SELECT visits_date_finishes(%(c)s);
        """, p,
    )


def _outreach(cur, p: dict) -> None:
    cur.execute(
        """
        CREATE TEMP TABLE scale_pick ON COMMIT DROP AS
        SELECT h.id, h.neighborhood_id, h.external_id, abs(hashtext(h.external_id)) AS k,
               (SELECT u.id FROM accounts_user_neighborhoods un JOIN accounts_user u ON u.id = un.user_id
                 WHERE un.neighborhood_id = h.neighborhood_id LIMIT 1) AS commissioner,
               a.partner_organization_id AS partner
          FROM neighborhoods_household h
          JOIN visits_allocation a ON a.campaign_id = %(c)s AND a.neighborhood_id = h.neighborhood_id
         WHERE h.municipality_id = %(m)s AND abs(hashtext(h.external_id || 'o')) %% 12 = 0;
        INSERT INTO outreach_meeting (municipality_id, neighborhood_id, held_on, attendees, notes, created_at, recorded_by_id)
        SELECT %(m)s, c.id, %(start)s + (c.i %% 90), '[]'::jsonb, '', now(),
               (SELECT u.id FROM accounts_user_neighborhoods un JOIN accounts_user u ON u.id = un.user_id
                 WHERE un.neighborhood_id = c.id LIMIT 1)
          FROM scale_cells c;
        INSERT INTO outreach_concern
               (id, municipality_id, source, source_detail, place_description, categories, urgency, description,
                status, referred_to, version, change_seq, created_at, updated_at, household_id, neighborhood_id,
                reported_by_id)
        SELECT gen_random_uuid(), %(m)s, 'commissioner', '', '', ARRAY['isolation']::varchar[],
               (ARRAY['low', 'normal', 'high', 'urgent'])[1 + s.k %% 4], '最近見かけない',
               (ARRAY['new', 'triaged', 'watching', 'referred', 'closed'])[1 + s.k %% 5], '', 1,
               nextval('sync_change_seq'), %(start)s + (s.k %% 90) * interval '1 day', now(), s.id, s.neighborhood_id,
               s.commissioner
          FROM scale_pick s WHERE s.k %% 3 = 0;
        INSERT INTO outreach_outreachcase
               (id, municipality_id, household_id, title, cadence_days, stage, consent, consent_scope, status,
                opened_on, closed_on, last_contact_on, next_contact_due, overdue, closure_reason, evaluation, notes, version,
                change_seq, created_at, updated_at, lead_partner_id, lead_worker_id)
        SELECT gen_random_uuid(), %(m)s, s.id, '継続的支援', 14,
               (ARRAY['no_contact', 'contact', 'conversation', 'trust', 'engaged'])[1 + s.k %% 5], 'none', '',
               CASE WHEN s.k %% 7 = 0 THEN 'closed' ELSE 'open' END, %(start)s - 200 + (s.k %% 300),
               CASE WHEN s.k %% 7 = 0 THEN %(today)s - (s.k %% 30) END, %(today)s - 20 + (s.k %% 20),
               %(today)s - 10 + (s.k %% 40), %(today)s - 10 + (s.k %% 40) < %(today)s,
               CASE WHEN s.k %% 7 = 0 THEN 'resolved' ELSE '' END, '', '', 1, nextval('sync_change_seq'), now(), now(),
               s.partner,
               (SELECT w.id FROM accounts_user w WHERE w.partner_organization_id = s.partner ORDER BY w.id LIMIT 1)
          FROM scale_pick s WHERE s.k %% 3 <> 0;
        INSERT INTO outreach_casecontact (id, kind, contacted_on, reached, note, created_at, by_id, case_id,
                                          correction_reason, retracted)
        SELECT gen_random_uuid(), 'call', c.last_contact_on, true, '', now(), c.lead_worker_id, c.id, '', false
          FROM outreach_outreachcase c WHERE c.municipality_id = %(m)s;
        INSERT INTO outreach_watcharrangement
               (municipality_id, household_id, watcher_name, watcher_role, cadence_days, started_on, last_check_in,
                next_due, overdue, notes)
        SELECT %(m)s, s.id, '見守り' || s.k %% 100, 'commissioner', 7, %(start)s, %(today)s - (s.k %% 10),
               %(today)s - (s.k %% 10) + 7, %(today)s - (s.k %% 10) + 7 < %(today)s, ''
          FROM scale_pick s WHERE s.k %% 5 = 1;
        """, p,
    )


def summary(town) -> dict:
    from neighborhoods.models import Household, Neighborhood
    from visits.models import Campaign

    return {
        "municipality": town, "campaign": Campaign.objects.filter(municipality=town).order_by("pk").first(),
        "hoods": Neighborhood.objects.filter(municipality=town).count(),
        "households": Household.objects.filter(municipality=town).count(),
    }
