"""TURN credentials in coturn's REST-API scheme, checked against a vector computed with openssl:
`echo -n "1700003600:alice" | openssl dgst -binary -sha1 -hmac north | base64`.
"""

from __future__ import annotations

from signaling.turn import TurnServers, turn_credential


def test_username_is_the_expiry_and_user_and_the_credential_its_hmac() -> None:
    username, credential = turn_credential("north", "alice", ttl_s=3600, now=1_700_000_000.7)
    assert username == "1700003600:alice"
    assert credential == "wjwSXO2ch1B6VaLTLMy2Avn5O9o="


def test_ice_server_entry_has_every_url_and_fresh_credentials() -> None:
    turn = TurnServers(urls=("turn:a.example:3478", "turns:a.example:5349"), secret="north", ttl_s=3600)
    entry = turn.ice_server(user="alice", now=1_700_000_000)
    assert entry == {
        "urls": ["turn:a.example:3478", "turns:a.example:5349"],
        "username": "1700003600:alice",
        "credential": "wjwSXO2ch1B6VaLTLMy2Avn5O9o=",
    }
    first, second = turn.ice_server(now=0), turn.ice_server(now=0)
    assert first["username"].startswith("3600:") and first["username"] != second["username"]
