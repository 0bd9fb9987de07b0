from datetime import datetime
from typing import Any
from uuid import UUID

from ninja import Field, Schema


class AuditEventOut(Schema):
    id: int
    at: datetime
    actor_id: int | None
    actor_username: str
    actor_role: str
    device_token_id: UUID | None
    ip: str | None = Field(..., description="The client's address as seen behind the trusted proxies")
    action: str
    object_type: str
    object_id: str
    basis: str
    detail: dict[str, Any] = Field(..., description="What was read, e.g. the photo variant")
