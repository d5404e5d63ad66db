"""Every numeric synthesis parameter's allowed range, in one table; and the other request fields every
transport reads alike (the `ssml` flag, pronunciation dictionary locators).

Checked at admission (`plan.plan`), so every route and transport
refuses the same values with the same message, naming the field and the range,
whether or not the loaded backend uses the parameter (Piper ignores the
sampling ones: a request that would be wrong on one backend is wrong on all).
The OpenAPI document takes its minimum and maximum from here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from media_server.engine.types import DictionaryLocator, SynthesisRequest
from media_server.errors import InvalidRequest


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    integer: bool = False
    above_low: bool = False
    """The low end itself is not allowed (top_p: more than 0)."""
    meaning: str = ""

    def describe(self) -> str:
        low = f"({self.low:g}" if self.above_low else f"[{self.low:g}"
        kind = "an integer in " if self.integer else ""
        return f"{kind}{low}, {self.high:g}]"

    def check(self, name: str, value: float | int) -> None:
        if isinstance(value, bool) or (self.integer and not isinstance(value, int)):
            raise InvalidRequest(f"{name}: {value!r} is not {self.describe()}")
        finite = isinstance(value, int) or math.isfinite(value)
        below = value <= self.low if self.above_low else value < self.low
        if not finite or below or value > self.high:
            raise InvalidRequest(f"{name}: {_shown(value)} is outside {self.describe()}")


PARAMETERS: dict[str, Bound] = {
    "speed": Bound(0.25, 4.0, meaning="rate of speech; 2 is twice as fast"),
    "temperature": Bound(0.0, 2.0, meaning="0 is greedy"),
    "top_p": Bound(0.0, 1.0, above_low=True),
    "top_k": Bound(0, 1000, integer=True, meaning="0 is no limit"),
    "repetition_penalty": Bound(1.0, 2.0, meaning="1 is none"),
    "seed": Bound(0, 2**63 - 1, integer=True),
}


FLAGS: dict[str, str] = {"ssml": "the text is SSML (the subset GET /v1/ssml lists)"}
"""Every boolean request field, and what true means."""
LOCATORS = "pronunciation_dictionary_locators"


def flag(name: str, value: object) -> bool:
    """A boolean field (`FLAGS`), absent meaning false; raises InvalidRequest naming it."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name}: {_shown(value)} is not true or false")
    return value


def dictionary_locators(value: object) -> tuple[DictionaryLocator, ...]:
    """`pronunciation_dictionary_locators`: a list of {pronunciation_dictionary_id, version_id?}."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidRequest(f"{LOCATORS}: must be a list of {{pronunciation_dictionary_id, version_id}} objects")
    locators = []
    for i, item in enumerate(value):
        name = f"{LOCATORS}[{i}]"
        if not isinstance(item, dict) or set(item) - {"pronunciation_dictionary_id", "version_id"}:
            raise InvalidRequest(f"{name}: must be an object with pronunciation_dictionary_id and version_id")
        identifier, version = item.get("pronunciation_dictionary_id"), item.get("version_id")
        if not isinstance(identifier, str) or not identifier:
            raise InvalidRequest(f"{name}.pronunciation_dictionary_id: required, a string")
        if version is not None and not isinstance(version, str):
            raise InvalidRequest(f"{name}.version_id: must be a string")
        locators.append(DictionaryLocator(identifier, version))
    return tuple(locators)


def check_parameters(request: SynthesisRequest) -> None:
    """Raise InvalidRequest for the first parameter of `request` outside its range."""
    PARAMETERS["speed"].check("speed", request.speed)
    for name in ("temperature", "top_p", "top_k", "repetition_penalty", "seed"):
        value = getattr(request.sampling, name)
        if value is not None:
            PARAMETERS[name].check(name, value)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
