"""A validation error names what the client sent: `["body", "field", …]`, `["query", "name"]`,
`["path", "name"]`, and its message says `field: message`, never ninja's argument names
(`payload`, `filters`, `q`)."""

from tests.api.test_errors import assert_error_body


def _locs(err: dict) -> list[list]:
    return [d["loc"] for d in err["details"]]


def _no_internal_names(err: dict) -> None:
    text = err["message"] + repr(err["details"])
    for internal in ("payload", "filters", "ninja_pagination", "'q'"):
        assert internal not in text, (internal, err)


def test_a_patch_names_the_body_field(town):
    hh = town.household
    r = town.client("coordinator").patch(f"households/{hh.id}", {"version": hh.version, "address": None})
    err = assert_error_body(r, 422, "invalid")
    assert _locs(err) == [["body", "address"]]
    assert "(address: " in err["message"]
    _no_internal_names(err)


def test_a_post_with_nested_items_names_the_item_and_its_field(town):
    r = town.client("coordinator").post("meetings", {
        "neighborhood_id": town.neighborhood.id, "held_on": "2026-11-20",
        "watches": [{"household_id": str(town.household.id), "watcher_name": "山根", "watcher_role": "commissioner",
                     "cadence_days": "7", "started_on": "2026-11-20"}],
    })
    err = assert_error_body(r, 422, "invalid")
    assert ["body", "watches", "0", "cadence_days"] in _locs(err)
    assert "watches.0.cadence_days: " in err["message"]
    _no_internal_names(err)


def test_an_unknown_body_field_is_named_as_sent(town):
    hh = town.household
    r = town.client("coordinator").patch(f"households/{hh.id}", {"version": hh.version, "owner": "me"})
    err = assert_error_body(r, 422, "invalid")
    assert ["body", "owner"] in _locs(err)
    _no_internal_names(err)


def test_a_body_that_is_not_an_object_is_located_at_the_body(town):
    r = town.client("coordinator").post("households", ["not", "an", "object"])
    err = assert_error_body(r, 422, "invalid")
    assert _locs(err)[0] == ["body"]
    _no_internal_names(err)


def test_a_query_parameter_of_a_filter_schema_is_named_as_sent(town):
    r = town.client("coordinator").get("households", query={"neighborhood": "abc"})
    err = assert_error_body(r, 422, "invalid")
    assert _locs(err) == [["query", "neighborhood"]]
    assert "(neighborhood: " in err["message"]
    _no_internal_names(err)


def test_pagination_and_grouped_query_parameters_are_named_as_sent(town):
    client = town.client("coordinator")
    err = assert_error_body(client.get("neighborhoods", query={"limit": 0}), 422, "invalid")
    assert _locs(err) == [["query", "limit"]]
    _no_internal_names(err)
    err = assert_error_body(client.get("maps/coverage", query={"group_by": "planet"}), 422, "invalid")
    assert _locs(err) == [["query", "group_by"]]
    _no_internal_names(err)


def test_a_path_parameter_is_named_as_sent(town):
    r = town.client("coordinator").get("maps/tiles/households/99/0/0.mvt")
    err = assert_error_body(r, 422)
    assert err["details"][0]["loc"][0] == "path"
    _no_internal_names(err)
