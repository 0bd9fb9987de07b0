from datetime import datetime
from uuid import UUID

from ninja import Field, Schema

from api.schemas import BodySchema
from backend.text import Line


class TokenIn(BodySchema):
    username: Line = Field(..., min_length=1, max_length=150)
    password: Line = Field(..., min_length=1, max_length=256)
    device_name: Line = Field(..., min_length=1, max_length=100, description="A name the user will recognise, e.g. 'iPad 3'")


class TokenOut(Schema):
    token: str = Field(..., description="Send as 'Authorization: Bearer <token>'. Shown only once.")
    token_id: UUID
    expires_at: datetime


class MunicipalityOut(Schema):
    id: int
    code: str
    name: str
    prefecture: str


class PartnerRef(Schema):
    id: int
    code: str
    name: str


class NeighborhoodRef(Schema):
    id: int
    code: str
    name: str


class ScopeOut(Schema):
    kind: str = Field(..., description="municipality | partner_organization | neighborhoods")
    partner_organization: PartnerRef | None = None
    neighborhoods: list[NeighborhoodRef] = []


class MeOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    municipality: MunicipalityOut
    scope: ScopeOut
    device_token_id: UUID | None = None


class UserOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    is_active: bool
    partner_organization_id: int | None = None


class DeviceTokenOut(Schema):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    active: bool = Field(..., validation_alias="is_active")
