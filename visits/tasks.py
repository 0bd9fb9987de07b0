"""django-q2 entry points for visits. Thin, take ids, safe to run twice."""

from visits.services import run_planning_job


def run_planning_job_task(job_id: str) -> dict:
    return run_planning_job(job_id)


def process_photo_task(photo_id: str) -> str | None:
    from visits.photo_service import process_photo

    photo = process_photo(photo_id)
    return photo.status if photo else None
