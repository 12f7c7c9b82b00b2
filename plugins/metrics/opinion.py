"""``opinion``: OpinionQA representativeness (Santurkar et al. 2023) against real Pew answers.

For each question, representativeness is 1 - W(model, human) / (max ordinal -
min ordinal): the Wasserstein distance between the two answer distributions
on the question's ordinal scale (OpinionQA's ``option_ordinal``, which is not
always monotone: "About the same" sits at 1.5), normalised by the scale's
range. Refusals are not offered to the model and are left out of the human
distribution, as OpinionQA does. Scores are averaged over questions, for
everyone and for each demographic group the personas can be placed in; the
human baseline is each group's own distribution scored against everyone's.
Two readings come with each score: ``sampling_ceiling``, the representativeness
as many real respondents as the run has personas (in that group) reach, drawn
from the human counts (the attainable maximum at that N), and ``position_r``,
the correlation across questions of the simulated and human mean positions on
each question's scale, 0 to 1 from end to end so scales of any length compare
(the right ordering of questions, whatever the level).

The data are read from the path given (files as in ``shared/data/opinionqa``:
``opinionqa_questions.csv`` and ``opinionqa_group_counts.csv.gz``); simrun
ships no Pew data. The counts are unweighted respondent counts.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from simrun import Metric, MetricValue, Question, StrictConfig, correlation, hookimpl, pyplot, read_instrument

QUESTIONS = "opinionqa_questions.csv"
COUNTS = "opinionqa_group_counts.csv.gz"
DISAGREEMENT = "raw/Pew_American_Trends_Panel_disagreement_500/info.csv"
# Groups simrun's education cannot tell apart are merged on the human side too.
MERGED = {
    ("EDUCATION", "High school graduate"): "High school or some college",
    ("EDUCATION", "Some college, no degree"): "High school or some college",
}


def representativeness(model: np.ndarray, human: np.ndarray, ordinal: np.ndarray) -> float:
    """1 - W1(model, human) / (max ordinal - min ordinal) on the ordinal support.

    Options past the end of ``ordinal`` (no place on the scale) are left out
    and both distributions renormalised over the rest.
    """
    from scipy.stats import wasserstein_distance

    k = len(ordinal)
    model, human = model[:k] / model[:k].sum(), human[:k] / human[:k].sum()
    span = float(ordinal.max() - ordinal.min())
    return 1.0 - wasserstein_distance(ordinal, ordinal, model, human) / span


CEILING_DRAWS = 20  # samples of real respondents averaged per question and group


def sampled_ceiling(human: np.ndarray, ordinal: np.ndarray, n: int, rng: np.random.Generator) -> float:
    """The representativeness ``n`` real respondents drawn from ``human`` reach on average: the best a run of
    ``n`` personas can expect, since even a perfect simulator's answers carry that sampling noise."""
    k = len(ordinal)
    p = human[:k] / human[:k].sum()
    draws = rng.multinomial(max(n, 1), p, size=CEILING_DRAWS)
    return float(np.mean([representativeness(d.astype(float), p, ordinal) for d in draws if d.sum() > 0]))


def mean_position(distribution: np.ndarray, ordinal: np.ndarray) -> float:
    """The mean answer on the question's scale, from 0 (its lowest ordinal) to 1 (its highest): questions with 2
    and 5 options compare, so a correlation across questions follows opinion, not the length of the scales."""
    k = len(ordinal)
    p = distribution[:k] / distribution[:k].sum()
    return float((p @ ordinal - ordinal.min()) / (ordinal.max() - ordinal.min()))


def scorable(question: Question) -> bool:
    return question.ordinal is not None and len(question.ordinal) >= 2 and max(question.ordinal) > min(question.ordinal)


def _dollars(label: str) -> float | None:
    """Midpoint of an income band such as '$30,000 to $34,999', 'under $10,000' or '$200,000 or more'."""
    amounts = [float(a.replace(",", "")) for a in re.findall(r"\$([\d,]+)", label)]
    if not amounts:
        return None
    if "under" in label.lower():
        return amounts[0] / 2
    return sum(amounts) / len(amounts)


def income_group(label: str) -> str | None:
    dollars = _dollars(str(label))
    if dollars is None:
        return None
    for limit, group in (
        (30000, "Less than $30,000"),
        (50000, "$30,000-$50,000"),
        (75000, "$50,000-$75,000"),
        (100000, "$75,000-$100,000"),
    ):
        if dollars < limit:
            return group
    return "$100,000 or more"


def age_group(age: int) -> str:
    return "18-29" if age < 30 else "30-49" if age < 50 else "50-64" if age < 65 else "65+"


def pew_label(*labels: str) -> Callable[[object], str | None]:
    """Match a persona's value onto one of Pew's group labels, ignoring case; None if it is none of them."""
    by_lower = {label.lower(): label for label in labels}
    return lambda value: by_lower.get(str(value).strip().lower())


EDUCATION = {
    "less than high school": "Less than high school",
    "high school": "High school or some college",
    "associate degree": "Associate's degree",
    "bachelor's degree": "College graduate/some postgrad",
    "graduate degree": "Postgraduate",
}

# Pew attribute -> (persona attribute, how its value becomes a Pew group).
GROUPS: dict[str, tuple[str, Callable[[object], str | None]]] = {
    "SEX": ("sex", pew_label("Male", "Female")),
    "AGE": ("age", lambda a: age_group(int(a))),
    "RACE": ("race_ethnicity", pew_label("White", "Black", "Asian", "Hispanic", "Other")),
    "EDUCATION": ("education", lambda e: EDUCATION.get(str(e))),
    "INCOME": ("household_income", income_group),
    "CREGION": ("census_region", pew_label("Northeast", "Midwest", "South", "West")),
    "POLPARTY": ("party", pew_label("Republican", "Democrat", "Independent", "Other")),
    "POLIDEOLOGY": ("ideology", pew_label("Very conservative", "Conservative", "Moderate", "Liberal", "Very liberal")),
}


@cache
def read_questions(path: Path) -> dict[str, Question]:
    """key -> question, 'Refused' left out; keys Pew gave to several questions are left out too."""
    return {q.id: q for q in read_instrument(path / QUESTIONS, "pew").questions}


@cache
def read_counts(path: Path) -> dict[str, dict[tuple[str, str], dict[str, float]]]:
    """key -> (attribute, group) -> option -> count; ('ALL', 'ALL') is everyone (the SEX rows summed)."""
    counts: dict[str, dict[tuple[str, str], dict[str, float]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(float))
    )
    with gzip.open(path / COUNTS, "rt", newline="") as f:
        for r in csv.DictReader(f):
            if r["attribute"] not in GROUPS:
                continue
            group = MERGED.get((r["attribute"], r["group"]), r["group"])
            n = float(r["count"])
            counts[r["key"]][(r["attribute"], group)][r["option"]] += n
            if r["attribute"] == "SEX":
                counts[r["key"]][("ALL", "ALL")][r["option"]] += n
    return counts


class OpinionMetric(Metric):
    """OpinionQA representativeness, overall and per demographic group, vs real Pew answer counts."""

    name = "opinion"
    baselines = True  # also scored on uniform answers and on the model with no persona

    class Config(StrictConfig):
        path: str = Field(
            description="Folder with opinionqa_questions.csv and opinionqa_group_counts.csv.gz "
            "(as in shared/data/opinionqa)."
        )
        subset: Literal["disagreement_500", "all"] = Field(
            "disagreement_500", description="The paper's 500 high-disagreement questions, or all."
        )
        keys: list[str] | None = Field(
            None, description="Exactly these question keys (e.g. WORRYB_W26) instead of a subset."
        )
        limit: int | None = Field(
            None, ge=1, description="At most this many questions, drawn at random (seeded) from the subset."
        )
        seed: int = 0

        @field_validator("path")
        @classmethod
        def _files_exist(cls, value: str) -> str:
            folder = Path(value).expanduser()
            missing = [name for name in (QUESTIONS, COUNTS) if not (folder / name).is_file()]
            if missing:
                raise ValueError(f"{folder} lacks {missing}; expected the OpinionQA files as in shared/data/opinionqa")
            return value

    @property
    def folder(self) -> Path:
        return Path(self.config.path).expanduser().resolve()

    def questions(self) -> list[Question]:
        rows, counts = read_questions(self.folder), read_counts(self.folder)
        if self.config.keys is not None:
            unknown = [k for k in self.config.keys if k not in rows or k not in counts]
            if unknown:
                raise ValueError(f"opinion: no question text or human counts for {unknown}")
            keys = list(self.config.keys)
        else:
            if self.config.subset == "all":
                keys = sorted(rows)
            else:
                with (self.folder / DISAGREEMENT).open(newline="") as f:
                    keys = sorted({r["key"] for r in csv.DictReader(f)})
            keys = [k for k in keys if k in rows and k in counts]  # only questions with human answers can be scored
            if self.config.limit is not None and self.config.limit < len(keys):
                picked = np.random.default_rng(self.config.seed).choice(len(keys), self.config.limit, replace=False)
                keys = [keys[i] for i in sorted(picked)]
        return [q for q in (rows[k] for k in keys) if scorable(q) or self.config.keys is not None]

    def plots(self, by_stratum: dict[str, dict[str, float]]) -> list[tuple[str, Any]]:
        """Representativeness by demographic group, beside what one group of real respondents reaches of another."""
        groups = sorted(s for s, v in by_stratum.items() if "representativeness" in v)
        if not groups:
            return []
        plt = pyplot()
        figure, ax = plt.subplots(figsize=(8, max(3, 0.28 * len(groups))))
        y = range(len(groups))
        ax.barh(
            [i + 0.2 for i in y],
            [by_stratum[g]["representativeness"] for g in groups],
            height=0.4,
            label="simulated",
            color="#3465a4",
        )
        ax.barh(
            [i - 0.2 for i in y],
            [by_stratum[g].get("human_baseline", float("nan")) for g in groups],
            height=0.4,
            label="human baseline",
            color="#aaa",
        )
        ax.set_yticks(list(y), groups, fontsize=7)
        ax.set(xlabel="representativeness (1 - W / span)", title="OpinionQA representativeness by group")
        ax.legend()
        return [("representativeness by group", figure)]

    def compute(self, run) -> list[MetricValue]:
        counts = read_counts(self.folder)
        questions = [q for q in self.questions() if q.id in run.questions and scorable(q)]
        # model distributions: everyone and per group, weighted by persona weight
        personas = {p.id: p for p in run.personas()}
        membership = {
            pid: {attr: fn(p.attributes[key]) for attr, (key, fn) in GROUPS.items() if key in p.attributes}
            for pid, p in personas.items()
        }
        sums: dict[str, dict[tuple[str, str], np.ndarray]] = defaultdict(dict)
        wanted = {q.id: q for q in questions}
        for row in run.answers():
            q = wanted.get(row.question_id)
            if q is None:
                continue
            p = np.array([row.distribution.get(label, 0.0) for label in q.labels]) * row.weight
            for key in [("ALL", "ALL"), *((a, g) for a, g in membership[row.persona_id].items() if g)]:
                sums[q.id][key] = sums[q.id].get(key, 0.0) + p
        sizes: dict[tuple[str, str], int] = defaultdict(int)  # personas per group: the ceiling's sample size
        for groups in membership.values():
            for key in [("ALL", "ALL"), *((a, g) for a, g in groups.items() if g)]:
                sizes[key] += 1
        rng = np.random.default_rng(self.config.seed)
        scores: dict[tuple[str, str], list[float]] = defaultdict(list)
        baseline: dict[tuple[str, str], list[float]] = defaultdict(list)
        ceiling: dict[tuple[str, str], list[float]] = defaultdict(list)
        positions: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for q in questions:
            ordinal = np.array(q.ordinal)
            human = {
                key: np.array([by_option.get(o, 0.0) for o in q.options]) for key, by_option in counts[q.id].items()
            }
            everyone = human[("ALL", "ALL")]
            for key, model in sums[q.id].items():
                truth = human.get(key)
                k = len(q.ordinal)
                if truth is None or truth[:k].sum() == 0 or model[:k].sum() == 0:
                    continue
                scores[key].append(representativeness(model, truth, ordinal))
                if key != ("ALL", "ALL"):
                    baseline[key].append(representativeness(truth, everyone, ordinal))
                ceiling[key].append(sampled_ceiling(truth, ordinal, sizes[key], rng))
                positions[key].append((mean_position(model, ordinal), mean_position(truth, ordinal)))
        overall = scores.get(("ALL", "ALL"), [])
        everyone = ("ALL", "ALL")
        values = [
            MetricValue(name="representativeness", value=float(np.mean(overall)) if overall else float("nan")),
            MetricValue(name="questions", value=float(len(overall))),
            *self.readings(ceiling[everyone], positions[everyone], ""),
        ]
        for (attr, group), xs in sorted(scores.items()):
            if attr == "ALL":
                continue
            stratum = f"{attr}={group}"
            values.append(MetricValue(name="representativeness", value=float(np.mean(xs)), stratum=stratum))
            values.append(
                MetricValue(name="human_baseline", value=float(np.mean(baseline[(attr, group)])), stratum=stratum)
            )
            values += self.readings(ceiling[(attr, group)], positions[(attr, group)], stratum)
        return values

    @staticmethod
    def readings(ceiling: list[float], positions: list[tuple[float, float]], stratum: str) -> list[MetricValue]:
        """What makes a representativeness readable: the ceiling N real respondents reach, and whether the
        simulated mean positions rise and fall across questions with the human ones."""
        model, human = (np.array(side) for side in zip(*positions)) if positions else (np.array([]), np.array([]))
        return [
            MetricValue(
                name="sampling_ceiling", value=float(np.mean(ceiling)) if ceiling else float("nan"), stratum=stratum
            ),
            MetricValue(name="position_r", value=correlation(model, human), stratum=stratum),
        ]


@hookimpl
def register_metrics(register):
    register(OpinionMetric)
