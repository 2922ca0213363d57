"""A first walk through the API over HTTP, on each engine."""

from .support import Api, unique


def test_create_then_read_back(api: Api) -> None:
    email = f"{unique('jane')}@Example.com"
    query = f"company:contact:email:{email}"
    with api.client() as client:
        created = client.put("/api/v2/user_profiles", params={"identifier": query},
                             json={"profile": {"attributes": {"a": 1}}})
        assert created.status_code == 201, created.text
        profile = created.json()["profile"]
        assert profile["identifiers"] == [{"type": "email", "value": email.lower()}]
        again = client.get(f"/api/v2/user_profiles/{profile['id']}")
        assert again.status_code == 200
        assert again.json()["profile"] == profile
