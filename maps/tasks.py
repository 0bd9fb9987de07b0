"""django-q2 entry points for maps. Thin, take ids, enter the municipality's tenant scope, safe
to run twice."""

from backend.tenancy import job_scope, municipality_ids
from maps import services


def refresh_coverage_task(campaign_id: int, municipality_id: int) -> dict:
    with job_scope(municipality_id):
        return services.refresh_coverage(campaign_id)


def refresh_due_coverage_task() -> list[int]:
    """Scheduled every few minutes (migration 0002), for every municipality in turn."""
    refreshed: list[int] = []
    for municipality_id in municipality_ids():
        with job_scope(municipality_id):
            refreshed += services.refresh_due_coverage()
    return refreshed
