"""Case meetings (支援会議 / 重層的支援会議) as a list, without reading each case."""

from ninja import Router

router = Router(tags=["outreach"])
