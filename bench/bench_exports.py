"""The 訪問一覧 export of 300,000 visit records (令和7年度), through the export job's own code
(reports.exports.run_export, in the municipality's scope, as the job cluster runs it), against
PostgreSQL's `COPY (SELECT …) TO STDOUT WITH CSV` of the same rows, columns and labels written to a
file, in the same run and under the same row-level security.

Each export runs in a child process of its own: rows/s are timed inside it (the export alone, not
the interpreter's start), and so is its memory: the child resets the kernel's high-water mark of
its resident set just before the export (`echo 5 > /proc/self/clear_refs`) and reads it back after
(VmHWM in /proc/self/status), so the figure is the peak RSS while exporting, not the peak of
importing Django and the apps. The baseline is the same measurement around the COPY, in a child
with the same interpreter, Django and apps. A second CSV export of 30,000 rows (令和6年度) shows
whether memory grows with the rows: streamed, it should not.

The city comes from bench.maps_data.synthetic_city; the visit records are added here in SQL (3,000
of them corrected once, so the export reads the supersedes chain as it must)."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.db import connection, transaction

from bench.common import Figure

CODE = "999401"
ROWS = 300_000
SMALL = 30_000
CORRECTED = 3_000
YEAR, SMALL_YEAR = 2025, 2024
ROOT = Path(__file__).resolve().parent.parent


def _setup() -> tuple[int, int]:
    """The city and its visit records (idempotent): (municipality id, coordinator id)."""
    from bench.maps_data import synthetic_city

    city = synthetic_city(code=CODE, hoods=200, households=10_000)
    m = city["municipality"].pk
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM accounts_user WHERE municipality_id = %s AND role = 'coordinator' LIMIT 1", [m])
        coordinator = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM visits_visitrecord WHERE municipality_id = %s AND visited_at < '2026-04-01'",
                    [m])
        if cur.fetchone()[0] >= ROWS + SMALL + CORRECTED:
            return m, coordinator
    p = {"m": m, "rows": ROWS, "small": SMALL, "corrected": CORRECTED}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")  # loading, not measuring: no triggers
        cur.execute("SELECT id FROM accounts_user WHERE municipality_id = %(m)s AND role = 'outreach_worker' LIMIT 1", p)
        p["worker"] = cur.fetchone()[0]
        cur.execute(
            """
            CREATE TEMP TABLE bench_h ON COMMIT DROP AS
            SELECT id, row_number() OVER (ORDER BY id) AS k FROM neighborhoods_household WHERE municipality_id = %(m)s;
            CREATE UNIQUE INDEX ON bench_h (k);
            CREATE TEMP TABLE bench_v ON COMMIT DROP AS
            SELECT gen_random_uuid() AS id, g,
                   CASE WHEN g <= %(rows)s
                        THEN timestamptz '2025-04-01 09:00+09' + (g - 1) * interval '100 seconds'
                        ELSE timestamptz '2024-04-01 09:00+09' + (g - %(rows)s) * interval '1000 seconds' END AS at
              FROM generate_series(1::bigint, %(rows)s + %(small)s) g;
            INSERT INTO visits_visitrecord
                   (id, municipality_id, household_id, worker_id, outcome, met_person, answers, notes, concerns,
                    visited_at, received_at, location_implausible)
            SELECT v.id, %(m)s, h.id, %(worker)s,
                   (ARRAY['absent', 'absent', 'met', 'refused', 'leaflet_left', 'moved', 'vacant'])[1 + (v.g %% 7)],
                   '', '{}'::jsonb, '', '{}', v.at, now(), false
              FROM bench_v v JOIN bench_h h ON h.k = 1 + (v.g * 7919) %% (SELECT count(*) FROM bench_h);
            -- corrections: a later record superseding every 97th record of the year
            INSERT INTO visits_visitrecord
                   (id, municipality_id, household_id, worker_id, outcome, met_person, answers, notes, concerns,
                    visited_at, received_at, location_implausible, supersedes_id)
            SELECT gen_random_uuid(), %(m)s, r.household_id, r.worker_id, 'met', '', '{}'::jsonb, '', '{}',
                   r.visited_at + interval '5 minutes', now(), false, r.id
              FROM bench_v v JOIN visits_visitrecord r ON r.id = v.id
             WHERE v.g %% 97 = 0 AND v.g <= 97 * %(corrected)s;
            -- With triggers off, the new records' finish times are dated here (migration visits 0008).
            SELECT visits_date_finishes(c.id) FROM visits_campaign c WHERE c.municipality_id = %(m)s;
            """, p,
        )
        cur.execute("ANALYZE visits_visitrecord")
    return m, coordinator


# The baseline: the export's rows, columns and labels in one statement, written by the server.
_COPY_SQL = """
COPY (
  SELECT to_char(v.visited_at AT TIME ZONE 'Asia/Tokyo', 'YYYY/MM/DD HH24:MI'), n.code, n.name, h.external_id,
         p.name, coalesce(nullif(u.display_name, ''), u.username),
         CASE v.outcome WHEN 'met' THEN '面談' WHEN 'absent' THEN '不在' WHEN 'refused' THEN '拒否'
                        WHEN 'moved' THEN '転居' WHEN 'vacant' THEN '空き家' ELSE 'チラシ投函' END,
         CASE WHEN v.supersedes_id IS NULL THEN '' ELSE '訂正' END
    FROM visits_visitrecord v
    JOIN neighborhoods_household h ON h.id = v.household_id
    LEFT JOIN neighborhoods_neighborhood n ON n.id = h.neighborhood_id
    JOIN accounts_user u ON u.id = v.worker_id
    LEFT JOIN visits_partnerorganization p ON p.id = u.partner_organization_id
   WHERE v.municipality_id = {m} AND v.visited_at >= '{year}-04-01 00:00+09' AND v.visited_at < '{next}-04-01 00:00+09'
     AND NOT EXISTS (SELECT 1 FROM visits_visitrecord c WHERE c.supersedes_id = v.id)
   ORDER BY v.visited_at, v.id
) TO STDOUT WITH (FORMAT csv, HEADER true)
"""


def _child(mode: str, municipality_id: int, user_id: int, fmt: str, encoding: str, year: int) -> dict:
    """Runs in the child process: one export (or the COPY), timed; prints rows, seconds, bytes."""
    import django

    django.setup()
    from django.db import connection as conn

    from backend.tenancy import job_scope
    from reports.exports import run_export
    from reports.models import ExportJob

    with job_scope(municipality_id):
        _reset_peak()
        if mode == "copy":
            path = Path(os.environ["EXPORTS_ROOT"]) / "copy.csv"
            with conn.cursor() as cur:
                cur.execute("SELECT 1")  # the scope's role and tenant are set before the first statement
                started = time.perf_counter()
                with path.open("wb") as out, cur.copy(_COPY_SQL.format(m=municipality_id, year=year, next=year + 1)) as copy:
                    for data in copy:
                        out.write(data)
                seconds = time.perf_counter() - started
            with path.open("rb") as written:
                rows = sum(1 for _ in written) - 1  # the header
            return {"rows": rows, "seconds": seconds, "bytes": path.stat().st_size, "peak_mb": _peak_mb()}
        job = ExportJob.objects.create(
            municipality_id=municipality_id, requested_by_id=user_id, kind="visits", format=fmt,
            encoding=encoding if fmt == "csv" else "", params={"fiscal_year": year, "campaign": None},
            filename="bench", expires_at=_in_an_hour(),
        )
        started = time.perf_counter()
        result = run_export(str(job.pk))
        seconds = time.perf_counter() - started
        job.refresh_from_db()
        if job.status != "done":
            raise RuntimeError(f"export failed: {job.error}")
        return {"rows": job.rows, "seconds": seconds, "bytes": result["size_bytes"], "peak_mb": _peak_mb()}


def _reset_peak() -> None:
    """From here on, VmHWM is the peak of what follows (Linux 4.0 and later)."""
    Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    """This process's peak resident set size since _reset_peak (Linux: VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def _in_an_hour():
    import datetime as dt

    from django.utils import timezone

    return timezone.now() + dt.timedelta(hours=1)


def _measure(mode: str, m: int, user: int, fmt: str = "csv", encoding: str = "utf-8-sig", year: int = YEAR) -> dict:
    """One child process, and what it reports (rows, seconds, bytes, peak RSS in MB)."""
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as folder:
        env = {**os.environ, "EXPORTS_ROOT": folder}
        args = [sys.executable, "-m", "bench.bench_exports", mode, str(m), str(user), fmt, encoding, str(year)]
        done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, check=True)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def run() -> list[Figure]:
    m, coordinator = _setup()
    copy = _measure("copy", m, coordinator)
    csv_run = _measure("export", m, coordinator)
    cp932 = _measure("export", m, coordinator, encoding="cp932")
    xlsx = _measure("export", m, coordinator, fmt="xlsx")
    small = _measure("export", m, coordinator, year=SMALL_YEAR)
    assert csv_run["rows"] == copy["rows"] == ROWS, (csv_run, copy)
    copy_rate = copy["rows"] / copy["seconds"]

    def rate(r: dict) -> float:
        return r["rows"] / r["seconds"]

    return [
        Figure(f"CSV export, {ROWS:,} visit rows (UTF-8 BOM) vs COPY", rate(csv_run), copy_rate, unit="rows/s",
               note=f"{csv_run['seconds']:.1f}s vs {copy['seconds']:.1f}s; {csv_run['bytes'] / 1e6:.0f} MB file"),
        Figure(f"CSV export, {ROWS:,} visit rows (CP932) vs COPY", rate(cp932), copy_rate, unit="rows/s",
               note=f"{cp932['seconds']:.1f}s"),
        Figure(f"XLSX export, {ROWS:,} visit rows vs COPY (CSV)", rate(xlsx), copy_rate, unit="rows/s",
               note=f"{xlsx['seconds']:.1f}s; {xlsx['bytes'] / 1e6:.0f} MB file"),
        Figure("CSV export: peak RSS of the exporting process vs COPY's", csv_run["peak_mb"], copy["peak_mb"], unit="MB",
               note=f"{SMALL:,} rows: {small['peak_mb']:.0f} MB; XLSX {ROWS:,} rows: {xlsx['peak_mb']:.0f} MB"),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    mode, municipality, user, fmt, encoding, year = sys.argv[1:7]
    print(json.dumps(_child(mode, int(municipality), int(user), fmt, encoding, int(year))))
