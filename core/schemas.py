"""JSON Schema helpers for backends that decode under a grammar.

Grammar converters differ in what of a schema they enforce; these let a
backend enforce more of it (integer bounds as a grammar rule or as an enum)
and let the engine check every reply against the whole schema afterwards.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import jsonschema

INTEGER_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
ENUM_LIMIT = 256  # a bounded integer with at most this many values may be spelled as an enum
NOT_SCHEMAS = frozenset({"enum", "const", "default", "examples"})  # keys whose values are data, not subschemas


def bounded_integer(schema: dict[str, Any]) -> bool:
    """An integer schema with bounds and no enum or const of its own."""
    return (
        schema.get("type") == "integer"
        and bool(INTEGER_BOUNDS & schema.keys())
        and not {"enum", "const"} & schema.keys()
    )


def integer_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The smallest and largest integer a schema's bounds allow (None: no bound on that side)."""

    def bound(key: str) -> float | None:
        value = schema.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    lows = [math.ceil(v) for v in [bound("minimum")] if v is not None]
    lows += [math.floor(v) + 1 for v in [bound("exclusiveMinimum")] if v is not None]
    highs = [math.floor(v) for v in [bound("maximum")] if v is not None]
    highs += [math.ceil(v) - 1 for v in [bound("exclusiveMaximum")] if v is not None]
    low, high = max(lows, default=None), min(highs, default=None)
    if low is not None and high is not None and low > high:
        raise ValueError(
            f"no integer satisfies the bounds { ({k: schema[k] for k in sorted(INTEGER_BOUNDS & schema.keys())}) }"
        )
    return low, high


def bounded_integers_as_enums(schema: Any, limit: int = ENUM_LIMIT) -> Any:
    """A copy of ``schema`` in which each integer bounded on both sides, with at most ``limit`` values, is an enum.

    For grammars that enforce enums but not numeric bounds (llama-cpp-python's
    server); the set of valid replies is unchanged.
    """
    if isinstance(schema, list):
        return [bounded_integers_as_enums(item, limit) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if bounded_integer(schema):
        low, high = integer_bounds(schema)
        if low is not None and high is not None and high - low < limit:
            rest = {k: v for k, v in schema.items() if k not in INTEGER_BOUNDS and k != "type"}
            return {**rest, "enum": list(range(low, high + 1))}
    return {k: v if k in NOT_SCHEMAS else bounded_integers_as_enums(v, limit) for k, v in schema.items()}


def schema_check(schema: dict[str, Any]) -> Callable[[str], bool]:
    """Whether a reply is JSON that satisfies ``schema``."""
    validator = jsonschema.validators.validator_for(schema)(schema)

    def satisfies(text: str) -> bool:
        try:
            return validator.is_valid(json.loads(text))
        except ValueError:
            return False

    return satisfies
