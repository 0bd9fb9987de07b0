"""Messages are in the domain's words: a concern's status by its label (「終了」), never an enum member."""

from tests.api.test_errors import assert_error_body


def test_an_invalid_transition_names_the_statuses_as_users_do(town):
    concern_id = town.client("commissioner").post(
        "concerns", {"household_id": str(town.household.id), "categories": ["isolation"]}
    ).json()["id"]
    client = town.client("coordinator")
    assert client.post(f"concerns/{concern_id}/transitions", {"to": "closed", "reason": "重複"}).status_code == 200
    err = assert_error_body(client.post(f"concerns/{concern_id}/transitions", {"to": "triaged", "reason": "再開"}),
                            409, "invalid_transition")
    assert "「終了」" in err["message"] and "「確認済」" in err["message"] and "気づき" in err["message"]
    assert "Status" not in err["message"] and "ConcernStatus" not in str(err)
    assert err["details"] == {"from": "closed", "to": "triaged", "allowed": []}
