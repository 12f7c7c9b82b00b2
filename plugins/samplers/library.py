"""``library``: personas from a file someone else made (CSV, JSONL or parquet).

The seed paper's meta personas, a Tianyi-Lab/Personas or PersonaHub export,
your own panel: columns become attributes (renamed and recoded as you say),
one column may give the stratum and one the weight. When strata are state
codes and no weight column is given, each persona stands for its state's
adults divided by the personas drawn there, so weighted aggregates are
population-correct as with the census sampler.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from simrun import hookimpl
from simrun.components import Sampler, StrictConfig, batched
from simrun.models import Persona
from simrun.plugins.samplers.census import load_controls


def read_rows(path: Path) -> list[dict[str, Any]]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:  # type: ignore[operator]
        if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
            return [json.loads(line) for line in f if line.strip()]
        return list(csv.DictReader(f))


class LibrarySampler(Sampler):
    """Personas from a CSV / JSONL / parquet file, with a column mapping and value recoding."""

    name = "library"

    class Config(StrictConfig):
        path: str = Field(description="A .csv, .jsonl or .parquet file (.gz for the text formats).")
        columns: dict[str, str] | None = Field(None, description="attribute -> column; default: every column, named as in the file.")
        recode: dict[str, dict[str, Any]] = Field(default_factory=dict, description="attribute -> {value in file: value to use}.")
        stratum: str | None = Field(None, description="Column holding the stratum (e.g. STATE_ABBR); default: one stratum, ALL.")
        weight: str | None = Field(None, description="Column holding each row's weight; default: census adults per persona when strata are states, else 1.")
        per_stratum: int | None = Field(None, ge=1, description="Draw this many rows per stratum (without replacement when there are enough); default: all rows.")

        @field_validator("path")
        @classmethod
        def _exists(cls, value: str) -> str:
            if not Path(value).expanduser().is_file():
                raise ValueError(f"no file at {value}")
            return value

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        rows = read_rows(Path(self.config.path).expanduser())
        if not rows:
            raise ValueError(f"library sampler: {self.config.path} has no rows")
        needed = [c for c in [*(self.config.columns or {}).values(), self.config.stratum, self.config.weight] if c]
        missing = sorted(set(needed) - set(rows[0]))
        if missing:
            raise ValueError(f"library sampler: {self.config.path} has no column(s) {missing}; it has {sorted(rows[0])}")
        return rows

    @cached_property
    def strata(self) -> dict[str, list[int]]:
        by: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(self.rows):
            by[str(row[self.config.stratum]) if self.config.stratum else "ALL"].append(i)
        return dict(sorted(by.items()))

    def provides(self) -> set[str]:
        return set(self.config.columns) if self.config.columns else set(self.rows[0]) - {self.config.stratum, self.config.weight}

    def total(self) -> int:
        n = self.config.per_stratum
        return sum(len(ix) if n is None else n for ix in self.strata.values())

    def weight_of(self, stratum: str, drawn: int, row: dict[str, Any]) -> float:
        if self.config.weight:
            try:
                return float(row[self.config.weight])
            except (TypeError, ValueError):
                raise ValueError(f"library sampler: weight column {self.config.weight!r} has {row[self.config.weight]!r}, not a number") from None
        controls = load_controls()
        if stratum in controls:
            return sum(controls[stratum]["sex_age"].values()) / drawn
        return 1.0

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        return batched(self.personas(rng), batch_size)

    def personas(self, rng: np.random.Generator) -> Iterator[Persona]:
        columns = self.config.columns or {c: c for c in self.rows[0] if c not in (self.config.stratum, self.config.weight)}
        source = f"library:{Path(self.config.path).name}"
        next_id = 0
        for stratum, indexes in self.strata.items():
            n = self.config.per_stratum
            picks = indexes if n is None else rng.choice(indexes, size=n, replace=n > len(indexes)).tolist()
            for i in picks:
                row = self.rows[i]
                persona = Persona(id=next_id, stratum=stratum, weight=self.weight_of(stratum, len(picks), row))
                next_id += 1
                for attribute, column in columns.items():
                    value = row[column]
                    persona.set(attribute, self.config.recode.get(attribute, {}).get(value, value), source)
                yield persona


@hookimpl
def register_samplers(register):
    register(LibrarySampler)
