"""Model validation as the API's error: a model's full_clean() failing becomes a 422 whose details
say which field and why."""

from django.core.exceptions import ValidationError
from django.db import models

from backend.errors import InvalidInput


def full_clean_or_422(obj: models.Model) -> None:
    try:
        obj.full_clean(validate_unique=False, validate_constraints=True)
    except ValidationError as exc:
        details = [{"loc": ["body", field], "msg": " ".join(msgs)} for field, msgs in exc.message_dict.items()]
        raise InvalidInput("; ".join(f"{d['loc'][-1]}: {d['msg']}" for d in details), details=details) from exc
