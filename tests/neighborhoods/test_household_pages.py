"""A list confined to some 自治会 (a worker's corporation, a 民生委員's own) reads its page from each
自治会's first rows (neighborhoods.queries.first_by_neighborhood, api.pagination.Windowed): every
page, count and filter answers what the whole list answers, in the same order."""

import pytest

from neighborhoods.access import visible_households
from tests import factories


@pytest.fixture
def spread(town):
    """Three 自治会 of the worker's corporation with interleaved external ids (one row of each
    vacant), and a 自治会 of nobody's whose households are never listed."""
    x0, y0, x1, _ = town.neighborhood.geom.extent
    side = x1 - x0
    hoods = [town.neighborhood]
    for k in (1, 2):
        hood = factories.neighborhood(town.municipality, geom=factories.square(x0 + k * side, y0, side))
        factories.allocate(hood, town.partner, town.campaign)
        hoods.append(hood)
    outside = factories.neighborhood(town.municipality, geom=factories.square(x0 - side, y0, side))
    for n in range(7):
        for k, hood in enumerate(hoods):
            cx, cy = factories.centre(hood)
            status = "vacant" if n == 3 else "occupied"
            factories.household(town.municipality, at=(cx + n * 1e-5, cy), external_id=f"X{n:02d}{k}", status=status)
        cx, cy = factories.centre(outside)
        factories.household(town.municipality, at=(cx + n * 1e-5, cy), external_id=f"Y{n:02d}")
    return hoods


def _walk(client, query: str, limit: int) -> tuple[list[str], set[int]]:
    ids, counts, offset = [], set(), 0
    while True:
        body = client.get(f"households?limit={limit}&offset={offset}{query}").json()
        counts.add(body["count"])
        ids += [h["external_id"] for h in body["items"]]
        if not body["items"]:
            return ids, counts
        offset += limit


@pytest.mark.parametrize("query", ["", "&status=occupied", "&q=テスト町"])
@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_a_workers_pages_are_the_lists_pages(town, spread, query, limit):
    worker = town.users["outreach_worker"]
    expected = visible_households(worker).filter(merged_into__isnull=True)
    if "status" in query:
        expected = expected.filter(status="occupied")
    if "q=" in query:
        expected = expected.filter(address__icontains="テスト町")
    expected_ids = list(expected.order_by("external_id").values_list("external_id", flat=True))
    assert {e[-1] for e in expected_ids if e.startswith("X")} == {"0", "1", "2"}  # the corporation's 3 自治会
    assert not any(e.startswith("Y") for e in expected_ids)
    ids, counts = _walk(town.client("outreach_worker"), query, limit)
    assert ids == expected_ids
    assert counts == {len(expected_ids)}


def test_a_commissioners_pages_are_the_lists_pages(town, spread):
    commissioner = town.users["commissioner"]
    commissioner.neighborhoods.add(*spread[1:])
    expected = list(visible_households(commissioner).filter(merged_into__isnull=True)
                    .order_by("external_id").values_list("external_id", flat=True))
    ids, counts = _walk(town.client("commissioner"), "", 4)
    assert ids == expected and counts == {len(expected)}
