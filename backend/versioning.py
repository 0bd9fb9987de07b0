"""Optimistic concurrency: an edit names the version it was based on; a stale one is a 409."""

from typing import Any, ClassVar, Protocol, TypeVar

from django.db import models

from backend.errors import Conflict


class Versioned(Protocol):
    """A model with a `version` column raised on every change."""

    objects: ClassVar[models.Manager[Any]]
    pk: Any

    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


def lock_at_version(model: type[V], pk, base_version: int | None, what: str) -> V:
    """The row, locked for update; Conflict (stale_version) if it moved past `base_version`."""
    locked: V = model.objects.select_for_update().get(pk=pk)
    if base_version is not None and locked.version != base_version:
        raise Conflict(
            f"The {what} changed since version {base_version}; it is now at version {locked.version}.",
            code="stale_version",
            details={"version": locked.version},
        )
    return locked
