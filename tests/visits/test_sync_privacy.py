"""Field sync inside one municipality: the read-only supervisor writes nothing, photos go only to the
visit's own record, chunked uploads are read, and a device id tells nothing about other users."""

import io
import uuid

import pytest
from django.utils import timezone
from PIL import Image

from tests import factories
from tests.conftest import ApiClient
from visits.models import Device, Photo, SyncOperation, VisitRecord


def jpeg(size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def recorded_visit(town, worker=None) -> VisitRecord:
    return VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=town.municipality, household=town.household,
        worker=worker or town.users["outreach_worker"], outcome="met", visited_at=timezone.now(),
    )


def put_photo(client: ApiClient, visit_id, data: bytes, **extra):
    return client.put(f"sync/photos/{uuid.uuid4()}?visit_id={visit_id}", raw=data, content_type="image/jpeg", **extra)


# --- the read-only supervisor ---------------------------------------------------------------------


def test_a_supervisor_registers_no_device_and_pushes_nothing(town):
    client = town.client("supervisor")
    device_id = uuid.uuid4()
    r = client.post("sync/devices", {"device_id": str(device_id)})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert not Device.objects.filter(user=town.users["supervisor"]).exists()

    # a device registered before the rule: every push kind is refused with the push as a whole
    device = Device.objects.create(id=device_id, municipality=town.municipality, user=town.users["supervisor"])
    ops = [
        {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": town.household.version,
         "data": {"id": str(town.household.id), "status": "vacant"}},
        {"op_id": str(uuid.uuid4()), "kind": "concern.create",
         "data": {"id": str(uuid.uuid4()), "household_id": str(town.household.id), "categories": ["isolation"]}},
    ]
    r = client.post("sync/push", {"device_id": str(device.pk), "ops": ops})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert not SyncOperation.objects.exists()
    version = town.household.version
    town.household.refresh_from_db()
    assert (town.household.version, town.household.status) == (version, "occupied")


# --- photos: only on the visit's own record --------------------------------------------------------


def test_only_the_recorder_or_a_coordinator_attaches_a_photo(town):
    visit = recorded_visit(town)
    colleague = factories.user(town.municipality, "outreach_worker", partner_org=town.partner)
    colleague_client = ApiClient(factories.token_for(colleague))
    r = put_photo(colleague_client, visit.id, jpeg())
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), r.content
    r = put_photo(town.client("commissioner"), visit.id, jpeg())  # visit records are not theirs to see
    assert (r.status_code, r.json()["error"]["code"]) == (422, "visit_unknown"), r.content
    assert not Photo.objects.exists()

    assert put_photo(town.client("outreach_worker"), visit.id, jpeg()).status_code == 201
    assert put_photo(town.client("coordinator"), visit.id, jpeg()).status_code == 201
    assert Photo.objects.filter(visit_record=visit).count() == 2


# --- chunked uploads ------------------------------------------------------------------------------


def _chunked(data: bytes) -> dict:
    """What a WSGI server that de-chunks the body (gunicorn) hands Django: no Content-Length, and an
    input that ends where the body ends."""
    return {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(data),
            "wsgi.input_terminated": True}


def test_a_chunked_upload_is_read_whole(town):
    visit = recorded_visit(town)
    data = jpeg()
    r = put_photo(town.client("outreach_worker"), visit.id, data, **_chunked(data))
    assert r.status_code == 201, r.content
    assert r.json()["size_bytes"] == len(data)


def test_a_chunked_upload_beyond_the_limit_is_413(town, settings):
    settings.PHOTO_MAX_BYTES = 10_000
    visit = recorded_visit(town)
    data = jpeg() + b"\x00" * 20_000
    r = put_photo(town.client("outreach_worker"), visit.id, data, **_chunked(data))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    assert "10000" in r.json()["error"]["message"]
    assert not Photo.objects.exists()


# --- device ids are per user ----------------------------------------------------------------------


@pytest.mark.parametrize("whose", ["same municipality", "other municipality"])
def test_registering_someone_elses_device_id_tells_nothing_and_touches_nothing(town, other_town, whose):
    owner = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    assert owner.post("sync/devices", {"device_id": device_id, "name": "班長のタブレット", "platform": "ipados"}).status_code == 201
    owners_device = Device.objects.get(user=town.users["outreach_worker"])
    before = (owners_device.pk, owners_device.token_id, owners_device.name, owners_device.platform)

    other = (town if whose == "same municipality" else other_town).client("coordinator")
    fresh = other.post("sync/devices", {"device_id": str(uuid.uuid4()), "name": "x"})
    taken = other.post("sync/devices", {"device_id": device_id, "name": "x"})
    assert (taken.status_code, fresh.status_code) == (201, 201)
    assert set(taken.json()) == set(fresh.json())
    assert taken.json()["device_id"] == device_id and taken.json()["name"] == "x"
    assert "班長" not in taken.content.decode() and "ipados" not in taken.content.decode()

    owners_device.refresh_from_db()
    assert (owners_device.pk, owners_device.token_id, owners_device.name, owners_device.platform) == before
    # both use the id, each for their own device
    for client in (owner, other):
        r = client.get("sync/pull", query={"device_id": device_id})
        assert r.status_code == 200, r.content
    assert Device.objects.filter(user=town.users["outreach_worker"]).count() == 1
