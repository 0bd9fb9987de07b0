"""Values an output schema reads off a model instance that are not its columns."""

from typing import TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def with_output_attrs(obj: M, **values: object) -> M:
    """`obj` with `values` set as attributes for its output schema to read: what a queryset
    annotation gives the rows of a list (a count, the view a reader gets …), for one instance
    the request has in hand. The names are not model attributes, so they are set here, once."""
    for name, value in values.items():
        setattr(obj, name, value)
    return obj
