"""django-q2 entry points for outreach. Thin, safe to run twice."""

from backend.tenancy import job_scope, municipality_ids
from outreach.services import sweep_overdue


def sweep_overdue_task() -> dict:
    """Daily, for every municipality in turn (each in its own tenant scope)."""
    totals = {"cases_changed": 0, "watches_changed": 0}
    for municipality_id in municipality_ids():
        with job_scope(municipality_id):
            for key, value in sweep_overdue().items():
                totals[key] += value
    return totals
