"""django-q2 entry points for reports. Thin, take ids, enter the municipality's tenant scope."""

from backend.tenancy import job_scope, municipality_ids
from reports.exports import expire_exports, run_export
from reports.snapshots import refresh_report


def run_export_task(job_id: str, municipality_id: int) -> dict:
    with job_scope(municipality_id):
        return run_export(job_id)


def refresh_report_task(kind: str, municipality_id: int, key: str) -> dict:
    """Queued by a read that found a stored report's inputs changed (reports.snapshots)."""
    with job_scope(municipality_id):
        snapshot = refresh_report(kind, municipality_id, key)
        return {"kind": kind, "key": key, "version": snapshot.version, "duration_ms": snapshot.duration_ms}


def expire_exports_task() -> dict[int, int]:
    """The hourly sweep: every municipality's exports past their time lose their file. Returns
    {municipality id: exports expired} for the municipalities that had any."""
    expired: dict[int, int] = {}
    for municipality_id in municipality_ids():
        with job_scope(municipality_id):
            count = expire_exports()
        if count:
            expired[municipality_id] = count
    return expired
