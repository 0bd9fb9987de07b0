"""django-q2 entry points for accounts. Thin: they call services, and are safe to run twice."""

from accounts.services import purge_stale_tokens
from backend.tenancy import job_scope, municipality_ids


def purge_stale_tokens_task(older_than_days: int = 90) -> int:
    """For every municipality in turn (platform operators use no tokens)."""
    purged = 0
    for municipality_id in municipality_ids():
        with job_scope(municipality_id):
            purged += purge_stale_tokens(older_than_days=older_than_days)
    return purged
