"""django-q2 entry points for visits. Thin, take ids, enter the municipality's tenant scope,
safe to run twice."""

from backend.tenancy import job_scope
from visits.services import run_planning_job


def run_planning_job_task(job_id: str, municipality_id: int) -> dict:
    with job_scope(municipality_id):
        return run_planning_job(job_id)


def process_photo_task(photo_id: str, municipality_id: int) -> str | None:
    from visits.photos.service import process_photo

    with job_scope(municipality_id):
        photo = process_photo(photo_id)
        return photo.status if photo else None
