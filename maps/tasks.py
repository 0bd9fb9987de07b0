"""django-q2 entry points for maps. Thin, take ids, safe to run twice."""

from maps import services


def refresh_coverage_task(campaign_id: int) -> dict:
    return services.refresh_coverage(campaign_id)


def refresh_due_coverage_task() -> list[int]:
    """Scheduled every few minutes (migration 0002)."""
    return services.refresh_due_coverage()
