"""Possible duplicate households (same normalised address, similar kana name) and merging two."""

from ninja import Router

router = Router(tags=["households"])
