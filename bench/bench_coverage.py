"""The coverage refresh against its aggregate (issue 15, point 5: refresh ≤ 1.5× the aggregate).

In a town of 300,000 households made by bench/scale_data.py (the ratio is the same as at 1.8M,
without the ten minutes of building): maps.services.refresh_coverage (the cells, the weekly series
and their writes, with a snapshot already there, as after the first refresh) against
visits.coverage.CELLS_SQL alone (as the server runs it, and without JIT as the refresh runs),
alternated, median of ROUNDS each. Build once and keep it: `bench/run.py bench_coverage --keep-db`."""

import statistics

from django.db import connection, transaction

from backend import tenancy
from bench.common import Figure, best_of
from bench.scale_data import synthetic_town

CODE, HOUSEHOLDS = "999313", 300_000
ROUNDS = 7


def run() -> list[Figure]:
    from maps.services import refresh_coverage
    from visits import coverage

    city = synthetic_town(code=CODE, households=HOUSEHOLDS)
    campaign = city["campaign"]
    params = coverage.aggregate_params(campaign_id=campaign.pk, municipality_id=campaign.municipality_id)

    def statement(sql: str, *, jit: bool = True):
        def execute() -> None:
            with transaction.atomic(), connection.cursor() as cursor:
                if not jit:
                    cursor.execute("SET LOCAL jit = off")
                cursor.execute(sql, params)
                cursor.fetchall()
        return execute

    # The refresh dates finishes by their stored finished_at: a town loaded with triggers off and
    # without it would be measured with no week to count.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM visits_campaignhousehold WHERE campaign_id = %s AND state IN {coverage.FINAL_STATES_SQL}"
            " AND finished_at IS NULL", [campaign.pk],
        )
        undated = cursor.fetchone()[0]
    assert not undated, f"{undated:,} finished households without finished_at: rebuild without --keep-db"

    note = f"{city['hoods']:,} 自治会 / {city['households']:,} households"
    runs = {"cells": statement(coverage.CELLS_SQL), "cells_no_jit": statement(coverage.CELLS_SQL, jit=False),
            "refresh": lambda: refresh_coverage(campaign.pk)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    with tenancy.scope(campaign.municipality_id):
        refresh_coverage(campaign.pk)  # the snapshot exists, as after the first refresh
        for _ in range(ROUNDS):  # alternated: a busy machine slows all three alike
            for name, fn in runs.items():
                times[name].append(best_of(fn, repeat=1))
    cells, cells_no_jit, refresh = (statistics.median(times[name]) for name in runs)
    return [
        Figure("coverage refresh vs its aggregate alone", refresh, cells, note=note),
        Figure("the same, the aggregate without JIT (as the refresh runs)", refresh, cells_no_jit, note=note),
    ]
