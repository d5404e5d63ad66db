"""What a hostile client sends: JSON built to break decoders, and offers crowded with ICE candidates.

The JSON is made as text (no encoder would write it): a body that opens 100,000 arrays, a valid
array nested 20,000 deep inside a field, a number of 5,000 digits, and `NaN`, each placed where the
route expects a parameter. A correct server answers each with a 4xx (or an `error` event), never a
5xx, a dead socket or a dead peer.

Candidate lines are added to a real offer's first media section: private (10/8, 172.16/12,
192.168/16), public and link-local addresses, more than any server should check. Only offers over
the server's cap carry public addresses, so a server that keeps its cap sends them nothing; the
offer under the cap lists only addresses no server may check (link-local, multicast, reserved).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

HELLO = "Hello there."
# Messages on the WebSocket and data channel stay under the server's MAX_MESSAGE_BYTES (64 KiB) except where
# the size itself is the attack.
MESSAGE_DEPTH = 60_000
BODY_DEPTH = 100_000
VALUE_DEPTH = 20_000
NUMBER_DIGITS = 5_000

Template = Callable[[str], str]


def _template(prefix: str) -> Template:
    """A JSON object text whose last field's value is spliced in raw."""
    return lambda value: f"{prefix}{value}}}"


# Route (or transport) -> the object it expects, with a numeric field last whose raw value is spliced in.
TEMPLATES: dict[str, Template] = {
    "/tts": _template(f'{{"text": "{HELLO}", "speed": '),
    "/v1/audio/speech": _template(f'{{"model": "tts-1", "input": "{HELLO}", "voice": "alloy", "speed": '),
    "/rtc/offer": _template('{"type": "offer", "sdp": '),
    "message": _template(f'{{"type": "speak", "text": "{HELLO}", "speed": '),
}
HTTP_ROUTES = ("/tts", "/v1/audio/speech", "/rtc/offer")


def malformed(where: str, message: bool) -> dict[str, str]:
    """Payload name -> text, for the route (or, `message`, the socket protocol) `where`."""
    fill = TEMPLATES[where]
    depth = MESSAGE_DEPTH if message else BODY_DEPTH
    return {
        f"{depth // 1000}k open arrays": "[" * depth,
        f"{VALUE_DEPTH // 1000}k-deep value": fill("[" * VALUE_DEPTH + "]" * VALUE_DEPTH),
        f"{NUMBER_DIGITS}-digit number": fill("1" * NUMBER_DIGITS),
        "NaN": fill("NaN"),
    }


OVERSIZE_MESSAGE = ("100k open arrays (over the message limit)", "[" * BODY_DEPTH)

PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
PUBLIC_NETWORKS = ("20.0.0.0/8", "52.0.0.0/8")
NEVER_NETWORKS = ("169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")


def _addresses(networks: tuple[str, ...], count: int) -> list[str]:
    """`count` distinct addresses spread over `networks`, deterministically."""
    pools = [ipaddress.ip_network(net) for net in networks]
    found = []
    for index in range(count):
        network = pools[index % len(pools)]
        offset = (index // len(pools)) * 257 + 1
        found.append(str(network.network_address + offset % network.num_addresses))
    return found


def candidate_line(index: int, address: str) -> str:
    return f"a=candidate:x{index} 1 udp {2_000_000_000 - index} {address} {40_000 + index % 20_000} typ host"


def crowded_candidates(count: int) -> list[str]:
    """`count` candidates, a third each on private, public and link-local addresses (only for offers over the cap)."""
    third = count // 3
    addresses = (
        _addresses(PRIVATE_NETWORKS, count - 2 * third)
        + _addresses(PUBLIC_NETWORKS, third)
        + _addresses(("169.254.0.0/16", "fe80::/10"), third)
    )
    return [candidate_line(index, address) for index, address in enumerate(addresses)]


def refused_candidates(count: int) -> list[str]:
    """`count` candidates on addresses a server never checks (link-local, multicast, reserved)."""
    return [candidate_line(index, address) for index, address in enumerate(_addresses(NEVER_NETWORKS, count))]


def with_candidates(sdp: str, lines: list[str]) -> str:
    """`sdp` with `lines` added to its first media section, before that section's own candidates."""
    rows = sdp.splitlines()
    first_media = next(index for index, row in enumerate(rows) if row.startswith("m="))
    at = next(
        (i for i, row in enumerate(rows) if i > first_media and row.startswith(("a=candidate:", "m="))),
        len(rows),
    )
    return "\r\n".join(rows[:at] + lines + rows[at:]) + "\r\n"
