"""``library``: personas from a file someone else made (CSV, JSONL or parquet).

The seed paper's meta personas, a Tianyi-Lab/Personas or PersonaHub export,
your own panel: columns become attributes (renamed and recoded as you say),
one column may give the stratum and one the weight. When strata are state
codes and no weight column is given, each persona stands for its state's
adults divided by the personas drawn there, so weighted aggregates are
population-correct as with the census sampler.

``rake: [dimensions]`` goes further when strata are states: each state's rows
are raked to the census controls (as the census sampler rakes its seed), so a
hand-made or LLM-made persona file is corrected to the state's real mix of
sex x age, race/ethnicity and education. Draws then follow the raked weights
(``per_stratum``), or every row is kept with its raked weight.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from simrun import (
    ALL_STRATA,
    DIMENSIONS,
    Persona,
    Sampler,
    StrictConfig,
    batched,
    cell_of,
    control_category,
    draw_by_design,
    encode,
    fit_state,
    hookimpl,
    load_controls,
)


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
        columns: dict[str, str] | None = Field(
            None, description="attribute -> column; default: every column, named as in the file."
        )
        recode: dict[str, dict[str, Any]] = Field(
            default_factory=dict, description="attribute -> {value in file: value to use}."
        )
        stratum: str | None = Field(
            None, description="Column holding the stratum (e.g. STATE_ABBR); default: one stratum, ALL."
        )
        weight: str | None = Field(
            None,
            description="Column holding each row's weight; "
            "default: census adults per persona when strata are states, else 1.",
        )
        per_stratum: int | None = Field(
            None,
            ge=1,
            description="Draw this many rows per stratum (without replacement when there are enough); "
            "default: all rows.",
        )
        rake: list[
            Literal["sex_age", "sex", "age_band", "race_ethnicity", "education", "education_18plus", "sex_marital"]
        ] = Field(
            default_factory=list,
            description="Census control dimensions to rake each state's rows to; "
            "needs state strata and census-coded attributes.",
        )
        population: Literal["adults", "citizen_voting_age"] = Field(
            "adults", description="Whose controls to rake to (as the census sampler's)."
        )
        controls: str | None = Field(None, description="Your own control table instead (as the census sampler's).")
        design: Literal["proportional", "coverage"] = Field(
            "proportional",
            description="coverage (needs per_stratum): each sex x age x race/ethnicity x education cell of a "
            "stratum's rows gets `floor` personas when per_stratum allows, the rest by the square root of its "
            "weight, and design weights undo it (docs/coverage.md).",
        )
        floor: int = Field(
            1, ge=0, description="With design: coverage, the personas each cell gets at least (as per_stratum allows)."
        )

        @model_validator(mode="after")
        def _coverage_draws(self):
            if self.design == "coverage" and self.per_stratum is None:
                raise ValueError("design: coverage draws per_stratum personas per stratum: set per_stratum")
            return self

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
            raise ValueError(
                f"library sampler: {self.config.path} has no column(s) {missing}; it has {sorted(rows[0])}"
            )
        return rows

    @cached_property
    def strata(self) -> dict[str, list[int]]:
        by: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(self.rows):
            by[str(row[self.config.stratum]) if self.config.stratum else ALL_STRATA].append(i)
        return dict(sorted(by.items()))

    def provides(self) -> set[str]:
        return set(self.columns)

    def total(self) -> int:
        n = self.config.per_stratum
        return sum(len(ix) if n is None else n for ix in self.strata.values())

    @cached_property
    def controls(self):
        return load_controls(self.config.population, self.config.controls)

    @cached_property
    def columns(self) -> dict[str, str]:
        return self.config.columns or {c: c for c in self.rows[0] if c not in (self.config.stratum, self.config.weight)}

    def attributes(self, row: dict[str, Any]) -> dict[str, Any]:
        return {a: self.config.recode.get(a, {}).get(row[c], row[c]) for a, c in self.columns.items()}

    def row_weight(self, row: dict[str, Any]) -> float:
        try:
            return float(row[self.config.weight]) if self.config.weight else 1.0
        except (TypeError, ValueError):
            raise ValueError(
                f"library sampler: weight column {self.config.weight!r} has {row[self.config.weight]!r}, not a number"
            ) from None

    def weight_of(self, stratum: str, drawn: int, row: dict[str, Any]) -> float:
        if self.config.weight:
            return self.row_weight(row)
        if stratum in self.controls:
            return self.controls.population(stratum) / drawn
        return 1.0

    def raked(self, stratum: str, indexes: list[int]) -> np.ndarray:
        """The stratum's rows' weights raked to its census controls on the chosen dimensions."""
        if stratum not in self.controls:
            raise ValueError(
                f"library sampler: rake needs strata that are states in the controls ({self.controls.label}); "
                f"got {stratum!r}"
            )
        cells: dict[str, list[str]] = {}
        recoded = [self.attributes(self.rows[i]) for i in indexes]
        for dimension in self.config.rake:
            if dimension not in self.controls[stratum]:
                raise ValueError(
                    f"library sampler: the controls ({self.controls.label}) have no {dimension}; "
                    f"they have {', '.join(self.controls[stratum])}"
                )
            known = DIMENSIONS[dimension][0]
            values = []
            for i, row in zip(indexes, recoded):
                try:
                    cell = control_category(dimension, row)
                except (TypeError, ValueError):
                    cell = None
                if cell not in known:
                    shown = {a: row[a] for a in dict.fromkeys((*DIMENSIONS[dimension][1], "age")) if a in row}
                    raise ValueError(
                        f"library sampler: row {i + 1} ({stratum}) has {shown}, not a census {dimension} cell "
                        f"({', '.join(sorted(known))}; age as a whole number); recode it"
                    )
                values.append(cell)
            cells[dimension] = values
        weights = np.array([self.row_weight(self.rows[i]) for i in indexes])
        try:
            return fit_state(
                stratum, self.controls, {d: encode(np.array(v)) for d, v in cells.items()}, weights
            ).weights
        except RuntimeError as exc:
            raise RuntimeError(f"library sampler: {exc}") from None

    def by_design(
        self, stratum: str, indexes: list[int], raked: np.ndarray | None, n: int, rng: np.random.Generator
    ) -> tuple[list[int], list[float]]:
        """``design: coverage``: rows drawn for coverage of their cells, weighted to the stratum's people."""
        weights = raked if raked is not None else np.array([self.row_weight(self.rows[i]) for i in indexes])
        if raked is None and not self.config.weight and stratum in self.controls:
            total = self.controls.population(stratum)
        else:
            total = float(weights.sum())
        codes: dict[tuple, int] = {}
        cells = np.array([codes.setdefault(cell_of(self.attributes(self.rows[i])), len(codes)) for i in indexes])
        picks, share = draw_by_design(weights, cells, n, rng, "coverage", self.config.floor)
        return [indexes[p] for p in picks.tolist()], (total * share).tolist()

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        return batched(self.personas(rng), batch_size)

    def personas(self, rng: np.random.Generator) -> Iterator[Persona]:
        source = f"library:{Path(self.config.path).name}"
        if self.config.rake:
            source += (
                f" raked to census:{','.join(self.controls.tables.get(d, d) for d in self.config.rake)} "
                f"{self.controls.label}"
            )
        next_id = 0
        for stratum, indexes in self.strata.items():
            n = self.config.per_stratum
            raked = self.raked(stratum, indexes) if self.config.rake else None
            if self.config.design == "coverage":
                picks, weights = self.by_design(stratum, indexes, raked, n, rng)
            elif raked is None:
                picks = indexes if n is None else rng.choice(indexes, size=n, replace=n > len(indexes)).tolist()
                weights = [self.weight_of(stratum, len(picks), self.rows[i]) for i in picks]
            elif n is None:
                picks, weights = indexes, raked.tolist()
            else:
                picks = rng.choice(indexes, size=n, replace=True, p=raked / raked.sum()).tolist()
                weights = [raked.sum() / n] * n
            for i, weight in zip(picks, weights):
                persona = Persona(id=next_id, stratum=stratum, weight=weight)
                next_id += 1
                for attribute, value in self.attributes(self.rows[i]).items():
                    persona.set(attribute, value, source)
                yield persona


@hookimpl
def register_samplers(register):
    register(LibrarySampler)
