"""Households whose address matched no reference entry: the list, and placing one by hand."""

from ninja import Router

router = Router(tags=["households"])
