"""Screening an offer before it is applied: what it may make the server do.

An offer is refused (`BadOffer`) when a media section has no DTLS fingerprint
(the media could never be encrypted), when no audio section lets the server
send speech (every one rejected with port 0, or `sendonly`/`inactive` from
the client's side), or when it lists more than `max_candidates` distinct ICE
candidates. The server sends connectivity checks to every candidate it keeps,
so a caller could otherwise make it probe hosts of the operator's network:
candidates on addresses the policy does not allow are taken out of the offer
(see `CandidatePolicy`). When any is taken out, so is `a=end-of-candidates`:
the client can still reach the server, its own checks are answered, and the
address they come from becomes a peer-reflexive candidate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aiortc.sdp import SessionDescription, candidate_from_sdp

from signaling.errors import BadOffer

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
CANDIDATE = "a=candidate:"
END_OF_CANDIDATES = "a=end-of-candidates"
RECEIVING = (None, "sendrecv", "recvonly")  # the client's direction: it receives what the server sends
MDNS_SUFFIX = ".local"


@dataclass(frozen=True)
class CandidatePolicy:
    """Which remote ICE candidates the server will check.

    Public (globally routable) addresses always; private, loopback and other
    non-public ones (and mDNS `.local` names, which resolve on the LAN) only
    with `allow_private`; any address inside `networks` always. Link-local,
    multicast, unspecified and reserved addresses, and other host names (the
    server looks up no name for a caller), never unless inside `networks`.
    """

    max_candidates: int = 32
    allow_private: bool = False
    networks: tuple[Network, ...] = ()

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return self.allow_private and host.lower().endswith(MDNS_SUFFIX)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return True
        if address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved:
            return False
        return address.is_global or self.allow_private


def screen_offer(sdp: str, policy: CandidatePolicy) -> str:
    """`sdp` without the candidates `policy` refuses; BadOffer if it is not an offer the server should apply."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser fails with whatever its first bad line raises
        raise BadOffer(f"sdp: not a session description aiortc can read ({exc or type(exc).__name__})") from exc
    for index, media in enumerate(description.media):
        if media.dtls is None or not media.dtls.fingerprints:
            raise BadOffer(f"sdp: media section {index} ({media.kind}) has no DTLS fingerprint (a=fingerprint)")
    if not any(m.kind == "audio" and m.port != 0 and m.direction in RECEIVING for m in description.media):
        raise BadOffer(
            "sdp: no audio section the server can send speech on "
            "(one that is not rejected with port 0 and is sendrecv or recvonly)"
        )
    return _screen_candidates(sdp, policy)


def _screen_candidates(sdp: str, policy: CandidatePolicy) -> str:
    kept: list[str] = []
    distinct: set[tuple[str, str, int]] = set()
    refused = 0
    for line in sdp.splitlines():
        if line.startswith(CANDIDATE):
            try:
                candidate = candidate_from_sdp(line[len(CANDIDATE) :])
            except Exception as exc:  # as above: a short line fails an assert, a bad port int()
                raise BadOffer(f"sdp: not an ICE candidate: {line[:100]!r}") from exc
            distinct.add((candidate.protocol.lower(), candidate.ip, candidate.port))
            if not policy.allows(candidate.ip):
                refused += 1
                continue
        kept.append(line)
    if len(distinct) > policy.max_candidates:
        raise BadOffer(f"sdp: {len(distinct)} ICE candidates is over the limit of {policy.max_candidates}")
    if refused:
        kept = [line for line in kept if line != END_OF_CANDIDATES]
    return "\r\n".join(kept) + "\r\n"
