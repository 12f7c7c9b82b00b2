"""JSON Schema helpers for constrained decoding."""

import json

import pytest
from bounded_schema import BOUNDED_SCHEMA

from simrun.schemas import bounded_integers_as_enums, integer_bounds, schema_check


def test_integer_bounds_read_every_form():
    assert integer_bounds({"type": "integer", "minimum": 1, "maximum": 12}) == (1, 12)
    assert integer_bounds({"type": "integer", "exclusiveMinimum": 0.5, "exclusiveMaximum": 10}) == (1, 9)
    assert integer_bounds({"type": "integer", "minimum": 2.2}) == (3, None)
    assert integer_bounds({"type": "integer", "maximum": True}) == (None, None)  # a draft-4 flag is not a bound
    with pytest.raises(ValueError, match="no integer satisfies"):
        integer_bounds({"type": "integer", "minimum": 5, "exclusiveMaximum": 5})


def test_small_bounded_integers_become_enums_with_the_same_valid_replies():
    rewritten = bounded_integers_as_enums(BOUNDED_SCHEMA)
    props = rewritten["properties"]
    assert props["household_size"] == {"enum": list(range(1, 13))}
    assert props["balance_change"] == {"enum": list(range(-50, -9))}
    assert props["year_moved_in"]["enum"][-1] == 2024
    assert (
        props["occupation"] == BOUNDED_SCHEMA["properties"]["occupation"]
        and rewritten["required"] == BOUNDED_SCHEMA["required"]
    )
    wide = {"type": "integer", "minimum": 0, "maximum": 10_000}
    assert bounded_integers_as_enums(wide) == wide  # too many values: left to the check after decoding
    data = {"const": {"type": "integer", "minimum": 1, "maximum": 2}}
    assert bounded_integers_as_enums(data) == data  # a const's value is data, not a schema
    original, rewritten_check = schema_check(BOUNDED_SCHEMA), schema_check(rewritten)
    for size in (0, 1, 12, 13):
        reply = json.dumps(
            {
                "household_size": size,
                "year_moved_in": 2000,
                "balance_change": -20,
                "occupation": "nurse",
                "urbanicity": "rural",
                "hobbies": ["chess"],
            }
        )
        assert original(reply) == rewritten_check(reply) == (1 <= size <= 12)


def test_schema_check_refuses_what_is_not_json():
    check = schema_check({"type": "object"})
    assert check("{}") and not check("{") and not check("") and not check("[]")
