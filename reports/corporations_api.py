"""The per-corporation report (委託 payment and review)."""

from ninja import Router

router = Router(tags=["reports"])
