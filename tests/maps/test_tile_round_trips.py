"""What a tile from the cache and a revalidated tile (304) cost the database: four statements, the
token check, the holder's tenant settings, one statement (the campaign shown, the version and,
from the cache, the tile itself) and the return to the outside settings at the request's end.
The token check and the tile's statement are kept prepared on the connection
(backend.db.prepared_cursor): a prepared statement is one command, so the return to the outside
settings no longer rides in its round trip, and it costs less than parsing and planning the
statement again did. Counted at the driver (psycopg), so the tenancy's own statements, which
bypass Django's query log, count too; and the connection is left with the outside settings."""

import pytest

from tests.maps.geo import tile_xy
from tests.maps.test_tiles import fetch
from tests.test_connection_reuse import raw_settings


def assert_outside() -> None:
    tenant, platform, role, login = raw_settings()
    assert (tenant, platform, role) == ("", "", login)


@pytest.mark.parametrize(("layer", "z", "role"), [
    ("households", 15, "coordinator"), ("households", 15, "commissioner"), ("neighborhoods", 13, "supervisor"),
    ("hexagons", 13, "admin"),
])
def test_a_cached_tile_and_a_304_are_four_prepared_or_trivial_statements(mapped, sent, layer, z, role):
    client = mapped.client(role)
    tile = (z, *tile_xy(*mapped.households["new"].location.coords, z))
    first = fetch(client, layer, *tile)  # rendered and kept (and the token's last use recorded)
    assert first.status_code == 200

    sent.clear()
    again = fetch(client, layer, *tile)
    assert (again.status_code, again.content, again["ETag"]) == (200, first.content, first["ETag"])
    assert len(sent) == 4, sent
    assert "tsunagu_token_holder" in sent[0] and "set_config" in sent[1] and "maps_cachedtile" in sent[2]
    assert "set_config" in sent[3]
    assert_outside()
    assert prepared("tsunagu_token_holder") == 1 and prepared("maps_cachedtile") == 1

    sent.clear()
    revalidated = fetch(client, layer, *tile, **{"If-None-Match": first["ETag"]})
    assert revalidated.status_code == 304
    assert len(sent) == 4, sent
    assert "maps_cachedtile" not in sent[2] and "concat_ws" in sent[2]
    assert_outside()
    again = fetch(client, layer, *tile, **{"If-None-Match": first["ETag"]})
    assert again.status_code == 304
    assert prepared("tsunagu_token_holder") == 1  # made once, used at every request


def prepared(text: str) -> int:
    """How many statements holding `text` the connection keeps prepared."""
    from django.db import connection

    return connection.connection.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{text}%"]
    ).fetchone()[0]


def test_a_changed_tile_is_still_right_after_the_early_reset(mapped, sent):
    """A revalidation whose version changed reads (or makes) the tile after the version statement,
    in the same tenant settings, and the session still ends with the outside settings."""
    from neighborhoods.services import update_household

    client = mapped.client("coordinator")
    hh = mapped.households["new"]
    tile = (15, *tile_xy(*hh.location.coords, 15))
    first = fetch(client, "households", *tile)
    update_household(household=hh, changes={"risk_flags": ["multi_pet"]}, base_version=hh.version)
    sent.clear()
    changed = fetch(client, "households", *tile, **{"If-None-Match": first["ETag"]})
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"] and changed.content != first.content
    assert sum("ST_AsMVT" in q for q in sent) == 1
    assert_outside()


def test_who_may_see_households_is_what_their_compiled_scope_says(town):
    """maps.access.may_see_households reads the role's household condition without compiling it;
    compiled, the same condition must be empty exactly for the roles it refuses."""
    from maps.access import _membership, may_see_households
    from neighborhoods.access import visible_households

    answers = {role: may_see_households(user) for role, user in town.users.items()}
    assert answers == {role: _membership(visible_households(user), "id") is not None
                       for role, user in town.users.items()}
    assert not answers["admin"] and answers["coordinator"]  # both answers occur
