"""The load run (issue 15, point 4), in one command:

    .venv/bin/python bench/load/run.py [--port 8201] [--db tsunagu_load] [--steps 5,10,20,40,80]
                                       [--duration 3m] [--fresh]
    .venv/bin/python bench/load/run.py --table .local/load/tsunagu_load/<run>   # print a run again

It does what `make run` does, on a database and port of its own: creates the database if missing,
`manage.py prepare` (migrate, cache table, static files, the demo town), starts the job cluster and
waits for the demo campaign's plan, starts gunicorn exactly as scripts/services.sh does (the same
config file, which preloads the application; an access log). Then, for each N of --steps, N tablets
and M = N/5 supervisors (bench/load/locustfile.py) run headless for --duration; afterwards the database is checked against
what the server acknowledged (bench/load/checks.py). It stops at the first N whose p95 (every
request but the logins) reaches --p95-ms or that has an error, stops what it started, and prints
the tables (Markdown) and the largest N that held.

Everything of a run is kept under .local/load/<db>/<time>/ (locust's CSVs, the ledger, response
times, the verdicts, the server's logs), so `--table` prints it again without a server."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import checks  # noqa: E402

PY = ROOT / ".venv" / "bin" / "python"
BIN = ROOT / ".venv" / "bin"
LOGIN = "POST /auth/token"


# --- the server, as `make run` starts it ----------------------------------------------------------


@dataclass
class Target:
    port: int
    db: str
    pg: str  # host:port of the project's PostGIS cluster
    source: Path = ROOT  # the tree the server runs from (--source: e.g. a `git archive` of another commit)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def owner_conninfo(self) -> str:
        host, port = self.pg.split(":")
        return f"host={host} port={port} user=tsunagu_owner dbname={self.db}"

    def env(self, data: Path) -> dict[str, str]:
        """make run's environment with this run's database, port and files. Anything else set by
        the caller (DEBUG, WEB_CONCURRENCY, DB_CONN_MAX_AGE …) passes through."""
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": f"postgis://tsunagu_app@{self.pg}/{self.db}",
            "DATABASE_OWNER_URL": f"postgis://tsunagu_owner@{self.pg}/{self.db}",
            "TSUNAGU_PUBLIC_URL": self.url,
            # The simulated users come through 127.0.0.1 as through a reverse proxy, each from its
            # own address (X-Forwarded-For): the login limit is per client address.
            "TSUNAGU_TRUSTED_PROXIES": "127.0.0.1",
            "MEDIA_ROOT": str(data / "media"),
            "STATIC_ROOT": str(data / "static"),
            "EXPORTS_ROOT": str(data / "exports"),
        })
        return env


def ensure_database(target: Target, *, fresh: bool) -> None:
    import psycopg

    host, port = target.pg.split(":")
    with psycopg.connect(f"host={host} port={port} user=tsunagu_owner dbname=postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [target.db]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{target.db}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{target.db}"')
    with psycopg.connect(target.owner_conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


class Processes:
    """The processes this run started (each in its own process group), stopped in reverse order."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        out = log.open("ab")
        self.started.append((name, subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                    start_new_session=True)))

    def stop(self) -> None:
        for _name, proc in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in reversed(self.started):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.started.clear()


def wait_for_plan(target: Target, timeout: float = 600) -> int:
    """The demo campaign's schedule is made by the job cluster; tablets need it before they start."""
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(target.owner_conninfo, autocommit=True) as conn:
            states = dict(conn.execute("SELECT status, count(*) FROM visits_planningjob GROUP BY 1").fetchall())
            visits = conn.execute("SELECT count(*) FROM visits_scheduledvisit").fetchone()[0]
        if states.get("failed"):
            raise SystemExit("the demo campaign's planning job failed; see the worker log")
        if states and set(states) == {"done"}:
            return visits
        time.sleep(2)
    raise SystemExit("the demo campaign's plan was not made in time; see the worker log")


def wait_for_health(target: Target, web: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise SystemExit("gunicorn exited; see web.log")
        try:
            urllib.request.urlopen(f"{target.url}/api/v1/health", timeout=2)  # noqa: S310 (our own server)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the web server did not answer; see web.log")


def start_services(target: Target, procs: Processes, env: dict[str, str], out: Path) -> int:
    """The job cluster and gunicorn, as scripts/services.sh starts them."""
    procs.start("worker", [str(PY), "manage.py", "qcluster"], env, out / "worker.log", target.source)
    visits = wait_for_plan(target)
    procs.start("web", [
        str(BIN / "gunicorn"), "-c", str(target.source / "backend" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{target.port}",
        "--access-logfile", str(out / "access.log"), "--error-logfile", str(out / "web.log"),
    ], env, out / "web.log", target.source)
    wait_for_health(target, procs.started[-1][1])
    return visits


# --- one step: N tablets, M supervisors -----------------------------------------------------------


@dataclass
class Step:
    tablets: int
    supervisors: int
    requests: int
    failures: int
    rps: float
    p50: float  # ms, every request but the logins (exact, from the response times)
    p95: float
    p99: float
    worst_endpoint: str
    worst_p95: float
    verdict: dict
    load: tuple[float, float]  # the 1-minute load average before and at the end (2 cores, shared: noise)
    floor_ms: float  # GET /health, one at a time, just before the step
    complete: bool  # locust ran the scenario through (exit 0, or 1 for failed requests) and tablets pushed

    def passes(self, limit_ms: float) -> bool:
        v = self.verdict
        return self.complete and (self.p95 < limit_ms and self.failures == 0 and not v["lost"] and not v["doubled_ops"]
                and not v["doubled_visits"] and not v["answer_mismatches"] and not v["photos_missing"])


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank, as locust's percentiles are."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(rank, 1)) - 1]


def read_stats(prefix: Path) -> list[dict]:
    path = Path(f"{prefix}_stats.csv")
    return list(csv.DictReader(path.open(encoding="utf-8"))) if path.exists() else []


def summarize(folder: Path) -> Step:
    meta = json.loads((folder / "step.json").read_text())
    rows = read_stats(folder / "locust")
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    samples: dict[str, list[float]] = json.loads((folder / "samples.json").read_text()) \
        if (folder / "samples.json").exists() else {}
    steady = sorted(t for name, times in samples.items() if name != LOGIN for t in times)
    endpoints = [r for r in rows if r["Name"] != "Aggregated" and f"{r['Type']} {r['Name']}" != LOGIN]
    worst = max(endpoints, key=lambda r: float(r["95%"] or 0), default=None)
    verdict = json.loads((folder / "verdict.json").read_text()) if (folder / "verdict.json").exists() else {}
    return Step(
        tablets=meta["tablets"], supervisors=meta["supervisors"], load=(meta.get("load_before", 0.0), meta.get("load_after", 0.0)),
        floor_ms=meta.get("health_floor_ms", 0.0),
        complete=meta.get("locust_exit", 0) in (0, 1) and any(r["Name"] == "/sync/push" for r in rows),
        requests=int(total["Request Count"]) if total else 0, failures=int(total["Failure Count"]) if total else 0,
        rps=float(total["Requests/s"]) if total else 0.0,
        p50=percentile(steady, 50), p95=percentile(steady, 95), p99=percentile(steady, 99),
        worst_endpoint=f"{worst['Type']} {worst['Name']}" if worst else "", worst_p95=float(worst["95%"]) if worst else 0,
        verdict=verdict,
    )


def health_floor_ms(target: Target, n: int = 20) -> float:
    """Median of n sequential GET /api/v1/health on the idle server just before a step: the
    per-request floor of the moment, to read the step's figures against (the machine is shared)."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with urllib.request.urlopen(f"{target.url}/api/v1/health", timeout=10) as response:  # noqa: S310 (our own server)
            response.read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run_step(target: Target, env: dict[str, str], out: Path, tablets: int, args: argparse.Namespace) -> Step:
    supervisors = max(1, tablets // args.supervisor_ratio)
    folder = out / f"step-{tablets:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    locust_env = {**env, "LOAD_TABLETS": str(tablets), "LOAD_SUPERVISORS": str(supervisors),
                  "LOAD_LEDGER": str(folder / "ledger.jsonl"), "LOAD_SAMPLES": str(folder / "samples.json")}
    floor = health_floor_ms(target)
    since = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()[0]
    print(f"\n== {tablets} tablets, {supervisors} supervisors, {args.duration} ==", flush=True)
    with (folder / "locust.log").open("wb") as log:
        finished = subprocess.run([
            str(BIN / "locust"), "-f", str(ROOT / "bench" / "load" / "locustfile.py"), "--headless",
            "-u", str(tablets + supervisors), "-r", str(args.spawn_rate), "-t", args.duration,
            "--host", target.url, "--csv", str(folder / "locust"), "--only-summary", "--stop-timeout", "15",
        ], cwd=ROOT, env=locust_env, stdout=log, stderr=subprocess.STDOUT, check=False)
    until = dt.datetime.now(dt.UTC)
    load_after = os.getloadavg()[0]
    ledger = checks.read_ledger(folder / "ledger.jsonl")
    wait_for_photos(target, list(ledger.photos))
    import psycopg

    with psycopg.connect(target.owner_conninfo, autocommit=True) as conn:
        verdict = checks.check(conn, ledger, since=since, until=until)
    (folder / "verdict.json").write_text(json.dumps(asdict(verdict)), encoding="utf-8")
    (folder / "step.json").write_text(json.dumps({
        "tablets": tablets, "supervisors": supervisors, "duration": args.duration,
        "load_before": load_before, "load_after": load_after, "health_floor_ms": floor,
        "locust_exit": finished.returncode,
    }), encoding="utf-8")
    step = summarize(folder)
    print_step(folder, step)
    return step


def wait_for_photos(target: Target, photo_ids: list[str], timeout: float = 90) -> None:
    """Give the job cluster time to process the step's photos (their state goes in the verdict)."""
    deadline = time.monotonic() + timeout
    while photo_ids and time.monotonic() < deadline and checks.photos_pending(target.owner_conninfo, photo_ids):
        time.sleep(2)


# --- tables ---------------------------------------------------------------------------------------


def print_step(folder: Path, step: Step) -> None:
    print(f"\n### {step.tablets} tablets, {step.supervisors} supervisors\n")
    if not step.complete:
        print(f"**the scenario did not run through: see {folder / 'locust.log'}**\n")
    print("| endpoint | requests | errors | req/s | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in read_stats(folder / "locust"):
        name = "**all**" if r["Name"] == "Aggregated" else f"`{r['Type']} {r['Name']}`"
        print(f"| {name} | {r['Request Count']} | {r['Failure Count']} | {float(r['Requests/s']):.2f} "
              f"| {r['50%']} | {r['95%']} | {r['99%']} |")
    print(f"| **all but the logins** | | | | {step.p50:.0f} | {step.p95:.0f} | {step.p99:.0f} |")
    failures = Path(f"{folder / 'locust'}_failures.csv")
    if failures.exists():
        for r in csv.DictReader(failures.open(encoding="utf-8")):
            print(f"\nerror x{r['Occurrences']}: {r['Method']} {r['Name']}: {r['Error']}")
    v = step.verdict
    if v:
        print(f"\nvisits acknowledged {v['acknowledged']}, lost {len(v['lost'])}, doubled {len(v['doubled_ops'])} by op "
              f"and {len(v['doubled_visits'])} by scheduled visit, answered with another id {v['answer_mismatches']}, "
              f"ops rejected {v['rejected']}, resent {v['resends']}, received but unacknowledged {v['unacknowledged']}; "
              f"photos acknowledged {v['photos_acknowledged']}, missing {len(v['photos_missing'])}, "
              f"states {v['photo_states']}")


def print_summary(steps: list[Step], limit_ms: float) -> None:
    print(f"\n### Summary (p95 limit {limit_ms:.0f} ms over every request but the logins)\n")
    print("| tablets | supervisors | req/s | p50 ms | p95 ms | p99 ms | slowest endpoint (p95 ms) | errors "
          "| lost | doubled | /health alone ms | load avg before → end | held |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for s in steps:
        v = s.verdict
        doubled = len(v.get("doubled_ops", [])) + len(v.get("doubled_visits", []))
        print(f"| {s.tablets} | {s.supervisors} | {s.rps:.1f} | {s.p50:.0f} | {s.p95:.0f} | {s.p99:.0f} "
              f"| `{s.worst_endpoint}` ({s.worst_p95:.0f}) | {s.failures} | {len(v.get('lost', []))} | {doubled} "
              f"| {s.floor_ms:.0f} | {s.load[0]:.1f} → {s.load[1]:.1f} | {'yes' if s.passes(limit_ms) else 'no'} |")
    held = [s.tablets for s in steps if s.passes(limit_ms)]
    print(f"\nlargest N that held: {max(held) if held else 'none'}")


def print_run(out: Path, limit_ms: float) -> None:
    steps = []
    for folder in sorted(out.glob("step-*")):
        step = summarize(folder)
        print_step(folder, step)
        steps.append(step)
    print_summary(steps, limit_ms)


# --- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8201)
    parser.add_argument("--db", default="tsunagu_load")
    parser.add_argument("--steps", default="5,10,20,40,80", help="numbers of tablets, in order")
    parser.add_argument("--duration", default="3m", help="per step (locust's -t)")
    parser.add_argument("--supervisor-ratio", type=int, default=5, help="M = max(1, N / this)")
    parser.add_argument("--spawn-rate", type=float, default=2, help="users started per second (locust's -r)")
    parser.add_argument("--p95-ms", type=float, default=500)
    parser.add_argument("--keep-going", action="store_true", help="run every step even after one failed")
    parser.add_argument("--fresh", action="store_true", help="drop the database first (the demo is loaded again)")
    parser.add_argument("--source", type=Path, help="run the server from this tree (default: this checkout), e.g. "
                        "`git archive <commit> | tar -x -C /tmp/before` for a before/after pair (its own --db)")
    parser.add_argument("--table", type=Path, help="print the tables of an earlier run's folder and exit")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.table:
        print_run(args.table, args.p95_ms)
        return 0
    target = Target(port=args.port, db=args.db, pg=f"127.0.0.1:{os.environ.get('TSUNAGU_PG_PORT', '54329')}",
                    source=(args.source or ROOT).resolve())
    data = ROOT / ".local" / "load" / args.db
    out = data / dt.datetime.now().strftime("%Y%m%d-%H%M%S")  # noqa: DTZ005 (a folder name)
    out.mkdir(parents=True, exist_ok=True)
    env = target.env(data)
    ensure_database(target, fresh=args.fresh)
    subprocess.run([str(PY), "manage.py", "prepare", "--url", target.url], cwd=target.source, env=env, check=True)
    procs = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the processes on the way out
    steps: list[Step] = []
    try:
        visits = start_services(target, procs, env, out)
        print(f"server {target.url} from {target.source} (database {target.db}, {visits} scheduled visits); "
              f"results in {out}")
        for tablets in (int(n) for n in args.steps.split(",")):
            step = run_step(target, env, out, tablets, args)
            steps.append(step)
            if not step.passes(args.p95_ms) and not args.keep_going:
                break
    finally:
        procs.stop()
        print_summary(steps, args.p95_ms)  # of the steps done, also when interrupted
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
