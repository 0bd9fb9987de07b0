"""Benchmarks: `make bench`. Each bench/bench_*.py defines `run() -> list[Figure]`; every figure is
measured against a baseline taken in the same run (these machines are noisy), and printed as a ratio.

Benchmarks run against a throwaway database `tsunagu_bench` on the project-local cluster."""

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="run only these benchmark modules (e.g. bench_auth)")
    parser.add_argument("--keep-db", action="store_true", help="reuse the bench database if it exists")
    args = parser.parse_args()

    port = os.environ.get("TSUNAGU_PG_PORT", "54329")
    # As the test suite does: connected as the schema owner, which builds the data; requests and
    # jobs act as the application's role under row-level security (backend/tenancy.py).
    os.environ.setdefault("DATABASE_URL", f"postgis://tsunagu_owner@127.0.0.1:{port}/tsunagu_bench")
    os.environ.setdefault("DATABASE_OWNER_URL", os.environ["DATABASE_URL"])
    os.environ.setdefault("TSUNAGU_ENV", "test")  # jobs inline, no DEBUG query log
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from bench.common import ensure_database

    ensure_database(fresh=not args.keep_db)
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    connections.close_all()
    from backend import runtime

    runtime.settle()  # the collector as gunicorn's workers have it (backend/runtime.py)

    modules = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    if args.only:
        modules = [m for m in modules if m in args.only]
    if not modules:
        print("no benchmarks yet (bench/bench_*.py)")
        return 0
    print(f"{'benchmark':<58} {'value':>14} {'baseline':>14} {'ratio':>8}")
    for name in modules:
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        for fig in module.run():
            print(fig.line())
        print(f"  ({name} took {time.perf_counter() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
