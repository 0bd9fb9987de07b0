"""An authenticated API read (GET /api/v1/me with a device token) against the raw SQL that the
token check and the answer need, in the same run, on an open connection: the token with its user
and municipality in one statement, as the application's role in the token holder's tenant scope
(what the request's own lookup runs as)."""

from django.db import connection
from django.test import Client

from bench.common import Figure, best_of

# The lookup a request needs: the token, its user and the user's municipality, checked for
# revocation, expiry and an active account (bench_http runs it over a raw psycopg connection).
HOLDER_LOOKUP_SQL = (
    "SELECT t.id, t.expires_at, t.last_used_at, u.id, u.username, u.display_name, u.role, u.is_active, "
    "m.id, m.code, m.name FROM accounts_devicetoken t "
    "JOIN accounts_user u ON u.id = t.user_id JOIN neighborhoods_municipality m ON m.id = u.municipality_id "
    "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > now() AND u.is_active"
)


def run() -> list[Figure]:
    from accounts.models import User
    from accounts.roles import Role
    from accounts.services import create_user, hash_token, issue_device_token
    from backend import tenancy
    from neighborhoods.models import Municipality

    town, _ = Municipality.objects.get_or_create(code="999001", defaults={"name": "ベンチ町", "prefecture": "鳥取県"})
    user = User.objects.filter(username="bench-coordinator").first() or create_user(
        municipality=town, username="bench-coordinator", role=Role.COORDINATOR, password=None
    )
    _token, raw = issue_device_token(user=user, device_name="bench")
    client = Client()
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    token_hash = hash_token(raw)

    def api():
        client.get("/api/v1/me", headers=headers)

    def sql():
        with connection.cursor() as cursor:
            cursor.execute(HOLDER_LOOKUP_SQL, [token_hash])
            cursor.fetchall()

    api_t = best_of(api, repeat=7, number=50)
    with tenancy.scope(town.pk):
        sql()  # the scope's settings are made once; then the statement alone on an open connection
        sql_t = best_of(sql, repeat=7, number=50)
    return [Figure("GET /api/v1/me (token auth) vs raw SQL lookup", api_t * 1000, sql_t * 1000, unit="ms")]
