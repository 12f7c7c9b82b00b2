"""Compact tables the built-in plugins ship; SOURCES.md says where each number came from."""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files
from pathlib import Path


def path(name: str) -> Path:
    return Path(str(files(__name__).joinpath(name)))


@cache
def rows(name: str) -> tuple[dict[str, str], ...]:
    with path(name).open(newline="") as f:
        return tuple(csv.DictReader(f))


def states() -> dict[str, dict[str, str]]:
    """Postal code -> name, FIPS code, Census region and division (50 states and DC)."""
    return {r["state"]: r for r in rows("states.csv")}
