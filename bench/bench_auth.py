"""An authenticated API read (GET /api/v1/me with a device token) against the raw SQL that the
token check and the answer need, in the same run."""

from django.db import connection
from django.test import Client

from bench.common import Figure, best_of


def run() -> list[Figure]:
    from accounts.roles import Role
    from accounts.services import create_user, hash_token, issue_device_token
    from neighborhoods.models import Municipality

    town, _ = Municipality.objects.get_or_create(code="999001", defaults={"name": "ベンチ町", "prefecture": "鳥取県"})
    user = create_user(municipality=town, username="bench-coordinator", role=Role.COORDINATOR, password=None)
    _token, raw = issue_device_token(user=user, device_name="bench")
    client = Client()
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200

    def api():
        client.get("/api/v1/me", headers=headers)

    def sql():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.id, u.id, u.username, u.role, m.code, m.name FROM accounts_devicetoken t "
                "JOIN accounts_user u ON u.id = t.user_id JOIN neighborhoods_municipality m ON m.id = u.municipality_id "
                "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > now() AND u.is_active",
                [hash_token(raw)],
            )
            cursor.fetchall()

    api_t = best_of(api, repeat=7, number=50)
    sql_t = best_of(sql, repeat=7, number=50)
    return [Figure("GET /api/v1/me (token auth) vs raw SQL lookup", api_t * 1000, sql_t * 1000, unit="ms")]
