"""The token check is one statement and makes no settings (accounts.services._read_holder): a
request that queries nothing after it (`GET /me`) costs one round trip and leaves nothing to reset;
a request that queries makes its holder's settings before its first query and returns to the
outside ones at its end. A refused caller (a revoked or expired token, a disabled account) leaves
the connection as it found it. Checked on one persistent connection, read past the tenancy layer."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import DeviceToken, User
from accounts.services import hash_token
from tests.test_connection_reuse import assert_outside, household_ids, persistent  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db(transaction=True)


def _settings_statements(statements: list[str]) -> list[str]:
    return [q for q in statements if q.lstrip().startswith("SELECT set_config")]


def test_me_is_one_statement_and_a_query_sets_then_resets(town, other_town, persistent, sent):  # noqa: F811
    client = town.client("coordinator")
    assert client.get("me").status_code == 200  # records the token's last use
    sent.clear()
    assert client.get("me").status_code == 200
    assert len(sent) == 1 and "tsunagu_token_holder" in sent[0], sent
    assert_outside(persistent)
    sent.clear()
    assert household_ids(client.get("households")) == {str(town.household.pk)}
    assert "tsunagu_token_holder" in sent[0]
    assert len(_settings_statements(sent)) == 2  # the holder's before the first query, the outside ones at the end
    assert_outside(persistent)
    assert household_ids(other_town.client("coordinator").get("households")) == {str(other_town.household.pk)}
    assert_outside(persistent)


@pytest.mark.parametrize("refusal", ["token_revoked", "token_expired", "account_disabled"])
def test_a_refused_holders_settings_are_undone(town, other_town, persistent, refusal):  # noqa: F811
    token = DeviceToken.objects.filter(token_hash=hash_token(town.tokens["coordinator"]))
    if refusal == "token_revoked":
        token.update(revoked_at=timezone.now())
    elif refusal == "token_expired":
        token.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    else:
        User.objects.filter(pk=town.users["coordinator"].pk).update(is_active=False)
    response = town.client("coordinator").get("households")
    assert (response.status_code, response.json()["error"]["code"]) == (401, refusal)
    assert_outside(persistent)
    assert household_ids(other_town.client("coordinator").get("households")) == {str(other_town.household.pk)}
    assert_outside(persistent)
