"""django-q2 entry points for outreach. Thin, safe to run twice."""

from outreach.services import sweep_overdue


def sweep_overdue_task() -> dict:
    return sweep_overdue()
