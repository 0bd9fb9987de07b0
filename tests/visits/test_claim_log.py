"""The claim log (SyncOperation) and a record's link to its claim are not checked by database
foreign keys (visits.models: the engine writes them for a device and user it has just checked, 3
deferred checks per op at every commit). What those keys guarded still holds: Django's PROTECT
refuses to delete a device or a user with claims, and every claim names a device, user and
municipality that exist."""

import gc
import importlib.util
import uuid

import pytest
from django.db.models import ProtectedError

from accounts.models import User
from backend import runtime
from neighborhoods.models import Municipality
from tests.visits.test_sync import push, visit_op
from visits.models import Device, SyncOperation, VisitRecord


@pytest.fixture
def tablet(town):
    client = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id, "name": "tablet"}).status_code == 201
    return {"client": client, "device_id": device_id, "town": town}


def test_a_pushed_visit_is_linked_to_a_claim_whose_references_exist(town, tablet):
    ops = [visit_op(town) for _ in range(3)]
    assert [r["status"] for r in push(tablet, ops)] == ["applied"] * 3
    claims = SyncOperation.objects.filter(op_id__in=[op["op_id"] for op in ops])
    assert claims.count() == 3
    for claim in claims:
        assert Device.objects.filter(pk=claim.device_id, user_id=claim.user_id).exists()
        assert User.objects.filter(pk=claim.user_id, municipality_id=claim.municipality_id).exists()
        assert Municipality.objects.filter(pk=claim.municipality_id, code=town.municipality.code).exists()
        record = VisitRecord.objects.get(op_id=claim.op_id)
        assert record.device_id == claim.device_id and record.worker_id == claim.user_id


def test_a_device_or_user_with_claims_cannot_be_deleted(town, tablet):
    push(tablet, [visit_op(town)])
    claim = SyncOperation.objects.latest("applied_at")
    with pytest.raises(ProtectedError):
        Device.objects.filter(pk=claim.device_id).delete()
    with pytest.raises(ProtectedError):
        User.objects.filter(pk=claim.user_id).delete()
    assert SyncOperation.objects.filter(pk=claim.pk).exists()


def test_gunicorn_settles_the_collector_before_forking_its_workers():
    """The master's when_ready (backend/gunicorn.conf.py: once, before the first fork) freezes the
    loaded application and sets the collector's thresholds, which the forked workers inherit."""
    spec = importlib.util.spec_from_file_location("gunicorn_conf", runtime.__file__.replace("runtime.py", "gunicorn.conf.py"))
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    before = gc.get_threshold()
    try:
        gc.unfreeze()
        conf.when_ready(server=None)
        assert gc.get_threshold() == (runtime.YOUNG, runtime.MIDDLE, runtime.OLD)
        assert gc.get_freeze_count() > 10_000  # Django, the URL patterns and the API's schemas
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
