"""GET /api/v1/health: no authentication; for load balancers and for `make run`."""

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema, Status

logger = logging.getLogger("tsunagu.health")
router = Router(tags=["health"])


class DatabaseHealth(Schema):
    ok: bool
    postgis: str | None = None
    error: str | None = None


class JobsHealth(Schema):
    cluster_seen: bool
    clusters: int


class HealthOut(Schema):
    status: str
    time: str
    database: DatabaseHealth
    jobs: JobsHealth


def _job_clusters() -> int:
    """django-q2 clusters that reported in the last few seconds (their heartbeat lives in the
    shared database cache, so the web process sees the worker process)."""
    from django_q.status import Stat

    try:
        return len(Stat.get_all())
    except Exception:  # the cache is in the database; if that fails we already say so
        logger.warning("could not read the job cluster's status", exc_info=True)
        return 0


@router.get("/health", auth=None, response={200: HealthOut, 503: HealthOut}, summary="Liveness and dependencies")
def health(request: HttpRequest):
    database = DatabaseHealth(ok=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT postgis_lib_version()")
            database = DatabaseHealth(ok=True, postgis=cursor.fetchone()[0])
    except DatabaseError as exc:
        logger.error("health: database unavailable: %s", exc)
        database = DatabaseHealth(ok=False, error="database unavailable")
    clusters = _job_clusters() if database.ok else 0
    body = HealthOut(
        status="ok" if database.ok and clusters else ("degraded" if database.ok else "unavailable"),
        time=timezone.now().isoformat(),
        database=database,
        jobs=JobsHealth(cluster_seen=clusters > 0, clusters=clusters),
    )
    return Status(200 if database.ok else 503, body)
