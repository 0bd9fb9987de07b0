"""Builders for test data. Each goes through the real model rules (full_clean, services)."""

import itertools

from django.contrib.gis.geos import MultiPolygon, Point, Polygon

from accounts.models import User
from accounts.roles import Role
from accounts.services import create_user, issue_device_token
from neighborhoods.models import CommunityResource, Household, Municipality, Neighborhood, Resident
from neighborhoods.services import add_resident, create_household
from visits.models import Allocation, Campaign, PartnerOrganization

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
    # Side by side along 35.45°N, every one of them inside Japan (longitude 128 … 152).
    obj = Neighborhood(
        municipality=town, code=code or f"N{n:03d}", name=name or f"自治会{n}", geom=geom or square(128.0 + (n % 800) * 0.03, 35.45)
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


def household(town: Municipality, *, at: tuple[float, float] | None = None, **fields) -> Household:
    """A household through the real service (which assigns its 自治会 from the point)."""
    n = next(_seq)
    fields.setdefault("external_id", f"H{n:05d}")
    fields.setdefault("address", f"テスト町{n}番地")
    fields.setdefault("status", "occupied")
    return create_household(
        municipality=town, location=Point(*at, srid=4326) if at else None, **fields
    )


def centre(hood: Neighborhood) -> tuple[float, float]:
    c = hood.geom.point_on_surface
    return (c.x, c.y)


def resident(hh: Household, **fields) -> Resident:
    n = next(_seq)
    fields.setdefault("name", f"住民 {n}")
    return add_resident(household=hh, **fields)


def campaign(town: Municipality, **fields) -> Campaign:
    import datetime

    n = next(_seq)
    fields.setdefault("name", f"世帯訪問調査{n}")
    fields.setdefault("fiscal_year", 2026)
    fields.setdefault("start_date", datetime.date(2026, 12, 1))
    fields.setdefault("end_date", datetime.date(2027, 3, 31))
    fields.setdefault("time_bands", ["am", "pm"])
    obj = Campaign(municipality=town, **fields)
    obj.full_clean()
    obj.save()
    return obj


def allocate(hood: Neighborhood, partner_org: PartnerOrganization, camp: Campaign | None = None) -> Allocation:
    """Allocate a 自治会 to a corporation (in a running campaign of its own unless given)."""
    if camp is None:
        camp = campaign(hood.municipality, status="running")
    return Allocation.objects.create(
        municipality_id=hood.municipality_id, campaign=camp, neighborhood=hood, partner_organization=partner_org
    )


def resource(town: Municipality, *, at: tuple[float, float], **fields) -> CommunityResource:
    n = next(_seq)
    fields.setdefault("name", f"サロン{n}")
    fields.setdefault("type", "salon")
    obj = CommunityResource(municipality=town, location=Point(*at, srid=4326), **fields)
    obj.full_clean()
    obj.save()
    return obj


def target(camp: Campaign, *hoods: Neighborhood) -> None:
    from visits.models import CampaignNeighborhood

    start = camp.targets.count()
    for i, hood in enumerate(hoods, start=start + 1):
        CampaignNeighborhood.objects.create(campaign=camp, neighborhood=hood, position=i)


def scheduled_visit(camp: Campaign, hh: Household, worker: User, date, **fields):
    from visits.models import ScheduledVisit

    fields.setdefault("route_order", 1)
    return ScheduledVisit.objects.create(
        municipality_id=camp.municipality_id, campaign=camp, household=hh, neighborhood_id=hh.neighborhood_id,
        partner_organization_id=worker.partner_organization_id, worker=worker, date=date, **fields,
    )


def ready_photo(visit, *, by, size=(64, 48)):
    """A processed photo of a visit record, through the real upload and job."""
    import io
    import uuid

    from PIL import Image

    from visits.photos.service import process_photo, receive_photo

    buf = io.BytesIO()
    Image.new("RGB", size, (20, 20, 230)).save(buf, format="JPEG")
    photo, _ = receive_photo(user=by, photo_id=uuid.uuid4(), visit_id=visit.pk, data=buf.getvalue())
    return process_photo(photo.pk)
