from datetime import timedelta

from django.utils import timezone
from django_q.tasks import async_task, result

from accounts.models import DeviceToken
from tests import factories


def test_token_purge_runs_as_a_job_and_is_safe_to_run_twice(town):
    worker = town.users["outreach_worker"]
    old = DeviceToken.objects.get(user=worker)
    DeviceToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=120))
    factories.token_for(worker, "current")

    first = async_task("accounts.tasks.purge_stale_tokens_task", 90)
    assert result(first) == 1
    second = async_task("accounts.tasks.purge_stale_tokens_task", 90)
    assert result(second) == 0
    assert list(DeviceToken.objects.filter(user=worker).values_list("name", flat=True)) == ["current"]
