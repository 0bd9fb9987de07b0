"""Synthetic map data for bench_maps, generated in SQL (generate_series + random points).

A city is a grid of square 自治会 (cells of CELL degrees) with households at random points, each
in the cell it falls in (stored cell by cell, as an import sorted by address leaves them); one running campaign over every 自治会, allocated to 10 corporations, with
progress that falls from complete (the first third of the code order) to not started (the last
third); a final visit record per finished household spread over 12 weeks; some open concerns and
cases; one community resource per ten 自治会. Triggers are switched off while loading (the append-
only guard, history and change_seq triggers), so change_seq is set here from the sync sequence."""

import math
import time
import uuid

from django.db import connection, transaction

CELL = 0.004  # degrees: ~360 m x 440 m at 35.5 N
LON0, LAT0 = 139.30, 35.30


def synthetic_city(*, code: str, hoods: int, households: int, seed: float = 0.42) -> dict:
    """Create (or reuse) a municipality with `hoods` 自治会 and `households` households."""
    from accounts.roles import Role
    from accounts.services import create_user
    from neighborhoods.models import Municipality
    from visits.models import Campaign, PartnerOrganization

    town, created = Municipality.objects.get_or_create(
        code=code, defaults={"name": f"合成市{code}", "prefecture": "神奈川県"}
    )
    campaign = Campaign.objects.filter(municipality=town).first()
    if not created and campaign is not None:
        return _summary(town, campaign)
    started = time.perf_counter()
    partners = [
        PartnerOrganization.objects.create(municipality=town, code=f"p{i:02d}", name=f"合成法人{i}") for i in range(10)
    ]
    worker = create_user(
        municipality=town, username=f"bench-maps-worker-{code}", role=Role.OUTREACH_WORKER, password=None,
        partner_organization=partners[0],
    )
    coordinator = create_user(municipality=town, username=f"bench-maps-coord-{code}", role=Role.COORDINATOR, password=None)
    import datetime as dt

    campaign = Campaign.objects.create(
        municipality=town, fiscal_year=2026, name="合成調査", start_date=dt.date(2026, 9, 1),
        end_date=dt.date(2027, 3, 31), status="running", time_bands=["am", "pm"],
    )
    cols = math.ceil(math.sqrt(hoods * 1.25))
    p = {
        "m": town.pk, "c": campaign.pk, "n": hoods, "hh": households, "cols": cols, "cell": CELL,
        "lon0": LON0, "lat0": LAT0, "seed": seed, "worker": worker.pk, "coord": coordinator.pk,
        "p0": partners[0].pk, "code": code,
    }
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("SELECT setseed(%(seed)s)", p)
        cur.execute(
            """
            INSERT INTO neighborhoods_district (municipality_id, name, code)
            SELECT %(m)s, '地区' || d, 'D' || d FROM generate_series(1, 4) d;
            INSERT INTO neighborhoods_dailylifearea (municipality_id, name, code)
            SELECT %(m)s, '圏域' || a, 'A' || a FROM generate_series(1, 12) a;
            """, p,
        )
        cur.execute(
            """
            INSERT INTO neighborhoods_neighborhood
                   (municipality_id, code, name, kana, geom, created_at, updated_at, district_id, daily_life_area_id)
            SELECT %(m)s, 'S' || lpad(i::text, 5, '0'), '合成自治会' || i, '',
                   ST_Multi(ST_MakeEnvelope(%(lon0)s + (i %% %(cols)s) * %(cell)s, %(lat0)s + (i / %(cols)s) * %(cell)s,
                                            %(lon0)s + (i %% %(cols)s + 1) * %(cell)s, %(lat0)s + (i / %(cols)s + 1) * %(cell)s,
                                            4326)),
                   now(), now(),
                   (SELECT id FROM neighborhoods_district WHERE municipality_id = %(m)s AND code = 'D' || (1 + i * 4 / %(n)s)),
                   (SELECT id FROM neighborhoods_dailylifearea WHERE municipality_id = %(m)s AND code = 'A' || (1 + i * 12 / %(n)s))
              FROM generate_series(0, %(n)s - 1) i
            """, p,
        )
        cur.execute(
            """
            CREATE TEMP TABLE bench_cells ON COMMIT DROP AS
            SELECT id, (row_number() OVER (ORDER BY code) - 1)::int AS i
              FROM neighborhoods_neighborhood WHERE municipality_id = %(m)s;
            CREATE UNIQUE INDEX ON bench_cells (i);
            INSERT INTO visits_campaignneighborhood (campaign_id, neighborhood_id, position)
            SELECT %(c)s, id, i + 1 FROM bench_cells;
            INSERT INTO visits_allocation (municipality_id, campaign_id, neighborhood_id, partner_organization_id, created_at)
            SELECT %(m)s, %(c)s, b.id, %(p0)s + (b.i * 10 / %(n)s), now() FROM bench_cells b;
            """, p,
        )
        # Households: a random cell, a random point inside it.
        cur.execute(
            """
            CREATE TEMP TABLE bench_hh ON COMMIT DROP AS
            SELECT g, floor(random() * %(n)s)::int AS i, random() AS rx, random() AS ry, random() AS r1, random() AS r2,
                   random() AS r3
              FROM generate_series(1, %(hh)s) g;
            INSERT INTO neighborhoods_household
                   (id, municipality_id, external_id, address, address_kana, address_normalized, match_level,
                    location, neighborhood_id, status, living_arrangement, risk_flags, version, change_seq,
                    created_at, updated_at)
            SELECT gen_random_uuid(), %(m)s, 'X' || h.g, '合成' || h.g, '', '合成' || h.g, 'coordinates',
                   ST_SetSRID(ST_MakePoint(%(lon0)s + ((h.i %% %(cols)s) + 0.02 + 0.96 * h.rx) * %(cell)s,
                                           %(lat0)s + ((h.i / %(cols)s) + 0.02 + 0.96 * h.ry) * %(cell)s), 4326),
                   b.id,
                   CASE WHEN h.r1 < 0.03 THEN 'vacant' WHEN h.r1 < 0.05 THEN 'moved' ELSE 'occupied' END,
                   CASE WHEN h.r2 < 0.15 THEN 'single_elderly' WHEN h.r2 < 0.30 THEN 'elderly_only'
                        WHEN h.r2 < 0.80 THEN 'family' ELSE 'single' END,
                   CASE WHEN h.r3 < 0.01 THEN ARRAY['8050', 'hikikomori']::varchar[]
                        WHEN h.r3 < 0.03 THEN ARRAY['hikikomori']::varchar[]
                        WHEN h.r3 < 0.035 THEN ARRAY['hoarding']::varchar[]
                        WHEN h.r3 < 0.038 THEN ARRAY['multi_pet']::varchar[]
                        ELSE '{}'::varchar[] END,
                   1, nextval('sync_change_seq'), now(), now()
              FROM bench_hh h JOIN bench_cells b ON b.i = h.i
             ORDER BY h.i, h.g;  -- stored 自治会 by 自治会, as an import by address would leave them
            """, p,
        )
        # Campaign state: progress falls with the 自治会's place in the code order (1 → 0).
        cur.execute(
            """
            INSERT INTO visits_campaignhousehold
                   (municipality_id, campaign_id, household_id, neighborhood_id, state, priority, priority_reason,
                    attempts, last_attempt_date, last_attempt_band, updated_at)
            SELECT %(m)s, %(c)s, x.id, x.neighborhood_id, x.state, false, '',
                   CASE WHEN x.state <> 'pending' OR x.r2 < 0.3 THEN 1 ELSE 0 END,
                   CASE WHEN x.state <> 'pending' OR x.r2 < 0.3 THEN DATE '2026-09-07' + (x.r3 * 84)::int END, '', now()
              FROM (
                SELECT h.id, h.neighborhood_id, r2, r3,
                       CASE WHEN r < greatest(0.0, least(1.0, 2 - 3.0 * b.i / %(n)s)) THEN
                            CASE WHEN h.status IN ('vacant', 'moved') THEN h.status::text
                                 WHEN r2 < 0.75 THEN 'met' WHEN r2 < 0.85 THEN 'refused' ELSE 'leaflet_left' END
                            ELSE 'pending' END AS state
                  FROM (SELECT h.*, random() AS r, random() AS r2, random() AS r3
                          FROM neighborhoods_household h WHERE h.municipality_id = %(m)s) h
                  JOIN bench_cells b ON b.id = h.neighborhood_id
              ) x
            """, p,
        )
        cur.execute(
            """
            INSERT INTO visits_visitrecord
                   (id, municipality_id, household_id, worker_id, outcome, met_person, answers, notes, concerns,
                    visited_at, received_at, location_implausible)
            SELECT gen_random_uuid(), %(m)s, ch.household_id, %(worker)s, ch.state, '', '{}'::jsonb, '', '{}',
                   (ch.last_attempt_date + time '10:00') AT TIME ZONE 'Asia/Tokyo', now(), false
              FROM visits_campaignhousehold ch
             WHERE ch.campaign_id = %(c)s AND ch.state IN ('met', 'refused', 'leaflet_left', 'moved', 'vacant');
            -- With triggers off, the finish times are dated here (migration visits 0008).
            SELECT visits_date_finishes(%(c)s);
            """, p,
        )
        cur.execute(
            """
            INSERT INTO neighborhoods_communityresource
                   (municipality_id, name, type, location, neighborhood_id, opening_days, address, contact, created_at, updated_at)
            SELECT %(m)s, '合成サロン' || b.i, 'salon', ST_PointOnSurface(n.geom), n.id, '{}', '', '', now(), now()
              FROM bench_cells b JOIN neighborhoods_neighborhood n ON n.id = b.id WHERE b.i %% 10 = 0;
            INSERT INTO outreach_concern
                   (id, municipality_id, source, source_detail, place_description, categories, urgency, description,
                    status, referred_to, version, change_seq, created_at, updated_at, household_id, neighborhood_id,
                    reported_by_id)
            SELECT gen_random_uuid(), %(m)s, 'visit', '', '', '{}', 'normal', '', 'new', '', 1,
                   nextval('sync_change_seq'), now(), now(), h.id, h.neighborhood_id, %(coord)s
              FROM neighborhoods_household h WHERE h.municipality_id = %(m)s AND 'hikikomori' = ANY (h.risk_flags)
               AND h.external_id LIKE '%%7';
            INSERT INTO outreach_outreachcase
                   (id, municipality_id, household_id, title, cadence_days, stage, consent, consent_scope, status,
                    opened_on, next_contact_due, overdue, closure_reason, evaluation, notes, version, change_seq,
                    created_at, updated_at)
            SELECT gen_random_uuid(), %(m)s, h.id, '合成ケース', 14, 'contact', 'none', '', 'open',
                   DATE '2026-06-01', DATE '2026-10-01' + (length(h.external_id) %% 90), h.external_id LIKE '%%3',
                   '', '', '', 1, nextval('sync_change_seq'), now(), now()
              FROM neighborhoods_household h WHERE h.municipality_id = %(m)s AND '8050' = ANY (h.risk_flags);
            """, p,
        )
    with connection.cursor() as cur:
        # Statistics as a live database would have them (autovacuum would get there later).
        for table in ("neighborhoods_household", "neighborhoods_neighborhood", "neighborhoods_communityresource",
                      "visits_campaignneighborhood", "visits_allocation", "visits_campaignhousehold",
                      "visits_visitrecord", "outreach_concern", "outreach_outreachcase"):
            cur.execute(f"ANALYZE {table}")
    out = _summary(town, campaign)
    out["generated_s"] = time.perf_counter() - started
    return out


def _summary(town, campaign) -> dict:
    from neighborhoods.models import Household, Neighborhood

    return {
        "municipality": town, "campaign": campaign,
        "hoods": Neighborhood.objects.filter(municipality=town).count(),
        "households": Household.objects.filter(municipality=town).count(),
        "id": uuid.uuid4().hex[:6],
    }
