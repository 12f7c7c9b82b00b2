"""Compact tables the built-in plugins ship; SOURCES.md says where each number came from."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import NamedTuple


def path(name: str) -> Path:
    return Path(str(files(__name__).joinpath(name)))


@cache
def rows(name: str) -> tuple[dict[str, str], ...]:
    with path(name).open(newline="") as f:
        return tuple(csv.DictReader(f))


def states() -> dict[str, dict[str, str]]:
    """Postal code -> name, FIPS code, Census region and division (50 states and DC)."""
    return {r["state"]: r for r in rows("states.csv")}


def table_rows(file: Path, columns: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a user's CSV table, after checking it has ``columns``; an unreadable file is a
    ValueError.
    """
    try:
        with file.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = set(columns) - set(reader.fieldnames or [])
            if missing:
                raise ValueError(
                    f"{file}: missing column(s) {', '.join(sorted(missing))}; expected {', '.join(columns)}"
                )
            for line, row in enumerate(reader, start=2):
                if None in row or None in row.values():  # csv fills a short row with None, a long one under key None
                    fewer = "fewer" if None in row.values() else "more"
                    raise ValueError(
                        f"{file}:{line}: {fewer} values than the header's {len(reader.fieldnames or [])} columns"
                    )
                yield line, row
    except OSError as exc:
        raise ValueError(f"{file}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{file}: not a UTF-8 CSV table ({exc})") from None


def non_negative(text: str, where: str) -> float:
    """A count or share from a table; ``where`` names the file, line and cell when it is not a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise ValueError(f"{where} {text!r} is not a number >= 0")
    return value


class Targets(NamedTuple):
    """Population shares per attribute and stratum: attribute -> stratum -> category -> share (summing to 1)."""

    shares: dict[str, dict[str, dict[str, float]]]
    source: dict[str, str]  # attribute -> where its shares come from


def targets(file: str | Path | None, attributes: list[str]) -> Targets:
    """Calibration targets for ``attributes`` from a CSV with columns ``group, attribute, category, share[, source]``.

    ``group`` is matched against the persona's stratum (a state code for the
    census sampler) or the attribute the calibrate enricher is told to use.

    Default: the shipped ACS 2023 industry shares by state. Every bad line is
    named: file, line, column, value and what was expected.
    """
    source_path = Path(file) if file is not None else path("acs2023_industry_targets.csv")
    shares: dict[str, dict[str, dict[str, float]]] = {}
    sources: dict[str, str] = {}
    for line, row in table_rows(source_path, ["group", "attribute", "category", "share"]):
        share = non_negative(
            row["share"], f"{source_path}:{line}: share for {row['group']} {row['attribute']}={row['category']},"
        )
        cell = shares.setdefault(row["attribute"], {}).setdefault(row["group"], {})
        cell[row["category"]] = cell.get(row["category"], 0.0) + share
        sources[row["attribute"]] = row.get("source") or f"file:{source_path.name}"
    for attribute, strata in shares.items():
        for stratum, cell in strata.items():
            total = sum(cell.values())
            if total <= 0:
                raise ValueError(f"{source_path}: the shares of {attribute} for group {stratum} sum to 0")
            strata[stratum] = {category: share / total for category, share in cell.items()}
    missing = [a for a in attributes if a not in shares]
    if missing:
        raise ValueError(
            f"{source_path}: no targets for {', '.join(missing)} (it has {', '.join(sorted(shares)) or 'none'})"
        )
    return Targets(shares, sources)
