"""The one JSON decoder for client input: depth, number size and non-JSON constants are refused by name."""

from __future__ import annotations

import pytest

from media_server.errors import InvalidRequest
from media_server.json_input import MAX_DEPTH, MAX_NUMBER_CHARS, decode_json


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_ordinary_json_decodes_as_usual() -> None:
    raw = '{"text": "[{not brackets}]", "speed": 1.25, "seed": 18446744073709551615, "tags": [[1], {"a": null}]}'
    assert decode_json(raw, "body") == {
        "text": "[{not brackets}]",
        "speed": 1.25,
        "seed": 18446744073709551615,
        "tags": [[1], {"a": None}],
    }
    assert decode_json(raw.encode("utf-16"), "body") == decode_json(raw, "body")


def test_depth_up_to_the_limit_decodes_and_one_more_is_refused() -> None:
    assert decode_json(nested(MAX_DEPTH), "message") is not None
    with pytest.raises(InvalidRequest, match=f"^message: JSON nested deeper than {MAX_DEPTH} levels$"):
        decode_json(nested(MAX_DEPTH + 1), "message")
    many_flat = "[" + ",".join(["[]"] * 1000) + "]"
    assert len(decode_json(many_flat.encode(), "body")) == 1000


@pytest.mark.parametrize("levels", [1_000, 100_000])
def test_nesting_past_the_interpreter_stack_is_refused_not_crashed(levels: int) -> None:
    with pytest.raises(InvalidRequest, match="^body: JSON nested deeper than"):
        decode_json('{"a":' * levels + "1" + "}" * levels, "body")
    with pytest.raises(InvalidRequest, match="^body: JSON nested deeper than"):
        decode_json(nested(levels).encode(), "body")


@pytest.mark.parametrize(
    ("literal", "problem"),
    [
        ("1" * 5000, "a number of 5000 characters"),
        ("1" * 4000, "a number of 4000 characters"),
        ("0." + "1" * 5000, "a number of 5002 characters"),
        ("1e400", "the number 1e400 is out of range"),
        ("NaN", "NaN is not a JSON value"),
        ("-Infinity", "-Infinity is not a JSON value"),
    ],
)
def test_numbers_no_float_survives_are_refused(literal: str, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=f"^body: {problem}"):
        decode_json('{"speed": ' + literal + "}", "body")
    assert decode_json("1" * MAX_NUMBER_CHARS, "body") == int("1" * MAX_NUMBER_CHARS)


@pytest.mark.parametrize("raw", ["{nope", b"\xff\xfe\xfd", "", '{"a": 1} trailing'])
def test_malformed_input_names_what_was_decoded(raw: str | bytes) -> None:
    with pytest.raises(InvalidRequest, match=r"^message: not valid JSON \("):
        decode_json(raw, "message")
