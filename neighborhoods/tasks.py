"""django-q2 entry points for places. Thin, take ids, safe to run twice."""

from neighborhoods.services import assign_households


def assign_households_task(municipality_id: int) -> dict:
    result = assign_households(municipality_id=municipality_id)
    return {"changed": result.changed, "unassigned": result.unassigned}
