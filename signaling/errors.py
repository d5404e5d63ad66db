"""Errors of the signaling service, each with a stable wire code and HTTP status."""

from __future__ import annotations


class SignalingError(Exception):
    code = "signaling_error"
    status = 500
    retry_after_s: float | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadOffer(SignalingError):
    code = "invalid_offer"
    status = 400


class TooManyPeers(SignalingError):
    code = "too_many_peers"
    status = 503
    retry_after_s = 5.0


class TooManyPeersFromClient(SignalingError):
    """One address holds its share of peers (`max_peers_per_ip`); it clears when one hangs up."""

    code = "too_many_peers_from_client"
    status = 429
    retry_after_s = 5.0


class UnknownSession(SignalingError):
    code = "unknown_session"
    status = 404
