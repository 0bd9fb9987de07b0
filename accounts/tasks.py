"""django-q2 entry points for accounts. Thin: they call services, and are safe to run twice."""

from accounts.services import purge_stale_tokens


def purge_stale_tokens_task(older_than_days: int = 90) -> int:
    return purge_stale_tokens(older_than_days=older_than_days)
