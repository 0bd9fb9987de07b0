from datetime import datetime
from uuid import UUID

from ninja import Field, Schema

from accounts.roles import Role
from accounts.services import USERNAME_MAX_LENGTH, USERNAME_PATTERN
from api.schemas import MAX_ID, BodySchema, Id, Unchanged
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
    neighborhood_ids: list[int] = Field([], description="A 民生委員's 自治会")
    email: str = ""
    password_set: bool = Field(False, description="Whether the user has chosen a password (through a set-password link)")

    @staticmethod
    def resolve_neighborhood_ids(obj) -> list[int]:
        return sorted(h.pk for h in obj.neighborhoods.all())

    @staticmethod
    def resolve_password_set(obj) -> bool:
        return obj.has_usable_password()


EMAIL_DESCRIPTION = "An email address (checked as Django's EmailValidator does); empty for none"
PARTNER_DESCRIPTION = "The id of this municipality's corporation: required for an outreach worker, null for any other role"
NEIGHBORHOODS_DESCRIPTION = "The ids of this municipality's 自治会: at least one for a 民生委員 (commissioner), none otherwise"


class UserIn(BodySchema):
    """A new user of the caller's municipality, created without a usable password: the answer
    carries a one-time link for them to choose one. Coordinators add any role but admin;
    administrators any role."""

    username: Line = Field(..., min_length=1, max_length=USERNAME_MAX_LENGTH, pattern=USERNAME_PATTERN,
                           description="The login id, unique across the service: ASCII letters, digits and @ . + - _")
    display_name: Line = Field(..., min_length=1, max_length=100)
    role: Role
    partner_organization: Id | None = Field(None, description=PARTNER_DESCRIPTION)
    neighborhoods: list[Id] = Field([], max_length=500, description=NEIGHBORHOODS_DESCRIPTION)
    email: Line = Field("", max_length=254, description=EMAIL_DESCRIPTION)


class UserPatch(BodySchema):
    """Absent fields stay as they are. Leaving the outreach worker or commissioner role drops the
    corporation or the 自治会; `is_active: false` deactivates the account and revokes its devices at
    once. Nobody changes their own role or deactivates themselves."""

    role: Role = Unchanged()
    display_name: Line = Unchanged(min_length=1, max_length=100)
    partner_organization: Id | None = Unchanged(description=PARTNER_DESCRIPTION + " (null: none)")
    neighborhoods: list[Id] = Unchanged(max_length=500, description=NEIGHBORHOODS_DESCRIPTION)
    email: Line = Unchanged(max_length=254, description=EMAIL_DESCRIPTION)
    is_active: bool = Unchanged()


class SetPasswordLinkOut(Schema):
    url: str = Field(..., description="Open once to choose a password. Shown only here; not stored.")
    expires_at: datetime


class UserCreatedOut(UserOut):
    set_password_url: str = Field(..., description="The new user's one-time link to choose a password. Shown only here; "
                                                   "POST /users/{id}/set-password-link issues another.")
    set_password_expires_at: datetime


class UserChangedOut(UserOut):
    changed: list[str] = Field(..., description="The fields this request changed")
    revoked_devices: int = Field(0, ge=0, le=MAX_ID, description="Device tokens revoked because the account was deactivated")


class DeviceTokenOut(Schema):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    active: bool = Field(..., validation_alias="is_active")
