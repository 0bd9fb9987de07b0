"""django-q2 entry points of the stored duplicate report (neighborhoods.duplicates). Thin, take ids,
enter the municipality's tenant scope."""

from backend.tenancy import job_scope
from neighborhoods.duplicates import refresh_possible_duplicates


def refresh_possible_duplicates_task(municipality_id: int) -> dict:
    """Queued by a read that found the stored pairs' inputs changed."""
    with job_scope(municipality_id):
        scan = refresh_possible_duplicates(municipality_id=municipality_id)
        return {"version": scan.version, "pairs": scan.pairs, "duration_ms": scan.duration_ms}
