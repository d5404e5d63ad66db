"""CallRegistry: the live calls by id, so a control channel (`/ws/calls/{id}`) can reach one.

A call is added when its protocol names it (the AudioSocket UUID, Twilio's
`callSid`, Telnyx's `call_control_id`, Plivo's `callId`, the `call_id` a
Vonage NCCO sends) and removed when it hangs up. A call belongs to the
principal of the connection that brought it (`Call.owner`); looking one up
for anyone else fails exactly as for an id that was never live, so ids of
other clients' calls cannot be probed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from media_server.errors import InvalidRequest, UnknownCall
from media_server.session.commands import MAX_ID_CHARS

if TYPE_CHECKING:
    from media_server.transports.call import Call

QUOTED_ID_CHARS = 80


class CallRegistry:
    def __init__(self) -> None:
        self._calls: dict[str, Call] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, call_id: str, call: Call) -> None:
        """Name `call`; InvalidRequest when the id is empty, too long or already a live call's."""
        if not call_id or len(call_id) > MAX_ID_CHARS:
            raise InvalidRequest(f"call id: required, a string of at most {MAX_ID_CHARS} characters")
        if call_id in self._calls:
            raise InvalidRequest(f"call id: {call_id!r} is the id of a live call")
        self._calls[call_id] = call

    def remove(self, call: Call) -> None:
        if call.id is not None and self._calls.get(call.id) is call:
            del self._calls[call.id]

    def find(self, call_id: str, principal: str | None) -> Call:
        """The live call `call_id` if it is `principal`'s (or anyone's); UnknownCall otherwise."""
        call = self._calls.get(call_id)
        if call is None or (call.owner is not None and call.owner != principal):
            raise UnknownCall(f"call_id: no live call of yours is called {call_id[:QUOTED_ID_CHARS]!r}")
        return call
