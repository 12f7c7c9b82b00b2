"""Census control tables and the persona cells they constrain, shared by samplers and metrics.

A control table is long: ``state, table, dimension, category, count``. The
shipped ones (ACS 2018 1-year, ``simrun/data/SOURCES.md``) cover adults and
citizens of voting age in every state and DC; a user's own file is read the
same way, every line checked. ``control_category`` puts a persona in its cell
of a dimension, so a sampler can rake to the tables and a metric can compare
personas with them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from . import data

CONTROLS = {"adults": "acs2018_adult_controls.csv", "citizen_voting_age": "acs2018_cvap_controls.csv"}
AGE_BANDS = ((18, 29, "18-29"), (30, 44, "30-44"), (45, 64, "45-64"), (65, 200, "65+"))
SEXES = ("female", "male")
MARITAL = ("never married", "married", "separated", "widowed", "divorced")
EMPLOYMENT = ("employed", "unemployed", "not in labor force", "armed forces")
CITIZENSHIP = ("born a citizen", "naturalized citizen", "not a citizen")
EDUCATION = ("less than high school", "high school", "associate degree", "bachelor's degree", "graduate degree")
HOUSEHOLD_INCOME = (  # B19001's bands, in 2018 dollars
    "under $10,000",
    "$10,000 to $14,999",
    "$15,000 to $19,999",
    "$20,000 to $24,999",
    "$25,000 to $29,999",
    "$30,000 to $34,999",
    "$35,000 to $39,999",
    "$40,000 to $44,999",
    "$45,000 to $49,999",
    "$50,000 to $59,999",
    "$60,000 to $74,999",
    "$75,000 to $99,999",
    "$100,000 to $124,999",
    "$125,000 to $149,999",
    "$150,000 to $199,999",
    "$200,000 or more",
)
BANDS = tuple(b for _, _, b in AGE_BANDS)
# control dimension -> its categories (what the seed can match) and the persona attributes it constrains
DIMENSIONS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "sex_age": (frozenset(f"{s}|{b}" for s in SEXES for b in BANDS), ("sex", "age")),
    "sex": (frozenset(SEXES), ("sex",)),
    "age_band": (frozenset(BANDS), ("age",)),
    "race_ethnicity": (frozenset({"white", "black", "hispanic", "asian", "other"}), ("race_ethnicity",)),
    "education": (frozenset(EDUCATION) | {"under 25"}, ("education",)),
    "education_18plus": (frozenset(EDUCATION), ("education",)),
    "sex_marital": (frozenset(f"{s}|{m}" for s in SEXES for m in MARITAL), ("sex", "marital_status")),
    "sex_age_employment": (
        frozenset(f"{s}|{b}|{e}" for s in SEXES for b in BANDS for e in EMPLOYMENT),
        ("sex", "age", "employment_status"),
    ),
    "sex_citizenship": (frozenset(f"{s}|{c}" for s in SEXES for c in CITIZENSHIP), ("sex", "citizenship")),
    "citizenship_age": (
        frozenset(f"{c}|{b}" for c in ("citizen", "not a citizen") for b in BANDS),
        ("citizenship", "age"),
    ),
    "citizen_education": (
        frozenset({f"citizen|{e}" for e in EDUCATION} | {"not a citizen"}),
        ("citizenship", "education"),
    ),
    "household_income": (frozenset(HOUSEHOLD_INCOME), ("household_income",)),
}
TOTALS_AGREE = 0.005  # relative: dimensions of one state must describe the same population


class Controls(dict):
    """state -> dimension -> category -> people, read from a long table; ``tables`` names each dimension's source."""

    def __init__(self, counts: dict[str, dict[str, dict[str, float]]], tables: dict[str, str], label: str):
        super().__init__(counts)
        self.tables, self.label = tables, label

    def population(self, state: str) -> float:
        """The people a state's controls describe (every dimension sums to it)."""
        return sum(next(iter(self[state].values())).values())


def read_controls(path: Path, label: str) -> Controls:
    """A control table (columns state, table, dimension, category, count), checked line by line and state by state."""
    counts: dict[str, dict[str, dict[str, float]]] = {}
    tables: dict[str, str] = {}
    for line, row in data.table_rows(path, ["state", "table", "dimension", "category", "count"]):
        where = f"{path}:{line}: table {row['table']}, state {row['state']}, {row['dimension']}={row['category']}"
        if row["dimension"] not in DIMENSIONS:
            raise ValueError(
                f"{where}: unknown dimension {row['dimension']!r}; "
                f"the census sampler can rake {', '.join(sorted(DIMENSIONS))}"
            )
        if row["category"] not in DIMENSIONS[row["dimension"]][0]:
            raise ValueError(
                f"{where}: unknown category; {row['dimension']} has "
                f"{', '.join(sorted(DIMENSIONS[row['dimension']][0]))}"
            )
        cell = counts.setdefault(row["state"], {}).setdefault(row["dimension"], {})
        cell[row["category"]] = cell.get(row["category"], 0.0) + data.non_negative(row["count"], f"{where}: count")
        tables.setdefault(row["dimension"], row["table"])
    for state, dimensions in counts.items():
        if set(dimensions) != set(tables):
            raise ValueError(
                f"{path}: state {state} lacks control table(s) for {', '.join(sorted(set(tables) - set(dimensions)))}"
            )
        totals = {d: sum(c.values()) for d, c in dimensions.items()}
        low, high = min(totals.values()), max(totals.values())
        if high > 0 and (high - low) / high > TOTALS_AGREE:
            listed = ", ".join(f"{tables[d]} {d} {n:,.0f}" for d, n in sorted(totals.items()))
            raise ValueError(f"{path}: totals for state {state} disagree by more than {TOTALS_AGREE:.1%}: {listed}")
    return Controls(counts, tables, label)


def load_controls(population: str = "adults", file: str | None = None) -> Controls:
    """The shipped controls for a population (ACS 2018 1-year, core/data/SOURCES.md), or a user's file (read afresh)."""
    if file is not None:
        return read_controls(Path(file).expanduser(), f"file {Path(file).name}")
    return shipped_controls(population)


@cache
def shipped_controls(population: str) -> Controls:
    return read_controls(data.path(CONTROLS[population]), "ACS 2018 1-year")


def control_category(dimension: str, attributes: dict) -> str | None:
    """A persona's cell in a control dimension, or None when it lacks the attributes."""
    try:
        if dimension == "sex_age":
            return f"{attributes['sex']}|{age_band(int(attributes['age']))}"
        if dimension == "education":
            return "under 25" if int(attributes["age"]) < 25 else str(attributes["education"])
        if dimension == "age_band":
            return age_band(int(attributes["age"]))
        if dimension == "education_18plus":
            return str(attributes["education"])
        if dimension == "sex_marital":
            return f"{attributes['sex']}|{attributes['marital_status']}"
        if dimension == "sex_age_employment":
            return f"{attributes['sex']}|{age_band(int(attributes['age']))}|{attributes['employment_status']}"
        if dimension == "sex_citizenship":
            return f"{attributes['sex']}|{attributes['citizenship']}"
        if dimension == "citizenship_age":
            citizen = "not a citizen" if attributes["citizenship"] == "not a citizen" else "citizen"
            return f"{citizen}|{age_band(int(attributes['age']))}"
        if dimension == "citizen_education":
            return (
                "not a citizen"
                if attributes["citizenship"] == "not a citizen"
                else f"citizen|{attributes['education']}"
            )
        return str(attributes[dimension])
    except KeyError:
        return None


def age_band(age: int) -> str:
    return next(label for lo, hi, label in AGE_BANDS if lo <= age <= hi)
