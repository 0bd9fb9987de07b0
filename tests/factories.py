"""Builders for test data. Each goes through the real model rules (full_clean, services)."""

import itertools

from django.contrib.gis.geos import MultiPolygon, Polygon

from accounts.models import User
from accounts.roles import Role
from accounts.services import create_user, issue_device_token
from neighborhoods.models import Municipality, Neighborhood
from visits.models import PartnerOrganization

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def municipality(code: str | None = None, name: str = "テスト町") -> Municipality:
    n = next(_seq)
    town = Municipality(code=code or f"{900000 + n}", name=f"{name}{n}", prefecture="鳥取県")
    town.full_clean()
    town.save()
    return town


def square(lon: float, lat: float, size: float = 0.01) -> MultiPolygon:
    return MultiPolygon(
        Polygon(((lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size), (lon, lat))), srid=4326
    )


def neighborhood(town: Municipality, *, code: str | None = None, name: str | None = None, geom=None) -> Neighborhood:
    n = next(_seq)
    obj = Neighborhood(
        municipality=town, code=code or f"N{n:03d}", name=name or f"自治会{n}", geom=geom or square(133.7 + n * 0.01, 35.45)
    )
    obj.full_clean()
    obj.save()
    return obj


def partner(town: Municipality, *, code: str | None = None) -> PartnerOrganization:
    n = next(_seq)
    obj = PartnerOrganization(municipality=town, code=code or f"partner-{n}", name=f"社会福祉法人テスト{n}")
    obj.full_clean()
    obj.save()
    return obj


def user(town: Municipality, role: Role | str, *, username: str | None = None, partner_org=None, neighborhoods=()) -> User:
    n = next(_seq)
    if role == Role.OUTREACH_WORKER and partner_org is None:
        partner_org = partner(town)
    return create_user(
        municipality=town,
        username=username or f"{role}-{n}",
        role=role,
        password=PASSWORD,
        partner_organization=partner_org,
        neighborhoods=neighborhoods,
    )


def token_for(u: User, device: str = "test tablet") -> str:
    _token, raw = issue_device_token(user=u, device_name=device)
    return raw
