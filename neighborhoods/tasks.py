"""django-q2 entry points for places. Thin, take ids, enter the municipality's tenant scope,
safe to run twice."""

from backend.tenancy import job_scope
from neighborhoods.services import assign_households


def assign_households_task(municipality_id: int) -> dict:
    with job_scope(municipality_id):
        result = assign_households(municipality_id=municipality_id)
    return {"changed": result.changed, "unassigned": result.unassigned}
