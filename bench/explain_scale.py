"""Where a request path's time goes in the towns of bench/bench_scale.py: each statement the request
sends, EXPLAIN ANALYZEd in its caller's tenant scope, with its execution time, in both towns.

    bench/run.py bench_scale --keep-db          # builds (or reuses) both towns
    bench/explain_scale.py "campaign progress" "coverage per 自治会" [--plans]

Names are those of tests/test_query_plans.py's REQUESTS (a name matches when it starts the path's
name). Without --plans, one line per statement: its time in each town and its first 100
characters; with --plans, the plans of the large town too. It reads the kept bench database and
writes nothing but the device of the worker's pull (as bench_scale does)."""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _explain(sql: str, municipality_id: int) -> tuple[float, str]:
    """The statement's execution time (ms) and its plan, run in the tenant's scope and rolled back."""
    import json

    from django.db import connection, transaction

    from backend import tenancy

    with transaction.atomic(), tenancy.scope(municipality_id), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
        plan = plan if isinstance(plan, list) else json.loads(plan)
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        text = "\n".join(r[0] for r in cursor.fetchall())
        transaction.set_rollback(True)
    return plan[0]["Execution Time"], text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="request names (prefixes) of tests/test_query_plans.py")
    parser.add_argument("--plans", action="store_true", help="print the large town's plans")
    args = parser.parse_args()
    port = os.environ.get("TSUNAGU_PG_PORT", "54329")
    os.environ.setdefault("DATABASE_URL", f"postgis://tsunagu_owner@127.0.0.1:{port}/tsunagu_bench_scale")
    os.environ.setdefault("DATABASE_OWNER_URL", os.environ["DATABASE_URL"])
    os.environ.setdefault("TSUNAGU_ENV", "test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    import django

    django.setup()
    from django.test import Client

    from bench import bench_scale
    from bench.scale_data import synthetic_town
    from tests.test_query_plans import REQUESTS, statements_of

    chosen = [r for r in REQUESTS if any(r.name.startswith(n) for n in args.names)]
    if not chosen:
        print("no request path starts with", args.names, file=sys.stderr)
        return 2
    fixtures = {}
    for label, code, households in bench_scale.SCALES:
        fixtures[label] = bench_scale._fixture(synthetic_town(code=code, households=households))
        bench_scale._pull_to_the_end(Client(), fixtures[label])
    client = Client()

    def get(fixture, request):
        return client.get(f"/api/v1/{request.path(fixture)}", headers=bench_scale._headers(fixture, request.role))

    for request in chosen:
        print(f"== {request.name}")
        by_town = {}
        for label, fixture in fixtures.items():
            get(fixture, request)  # warm
            statements = statements_of(get, fixture, request)
            by_town[label] = [(sql, *_explain(sql, bench_scale._municipality_id(fixture))) for sql in statements]
        small, large = by_town.values()
        for i, (sql, ms, plan) in enumerate(large):
            other = small[i][1] if i < len(small) else float("nan")
            print(f"  {other:8.2f} ms {ms:8.2f} ms  {' '.join(sql.split())[:100]}")
            if args.plans:
                print("    " + plan.replace("\n", "\n    "))
        print(f"  total {sum(s[1] for s in small):.2f} ms / {sum(s[1] for s in large):.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
