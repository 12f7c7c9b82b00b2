"""Compare a sweep's variants: how far each moved answers from the baseline, each metric with a bootstrap interval
and its difference from the baseline, and what to distrust.

Personas are resampled with replacement within strata; variants that share
the baseline's personas get the same resamples (a paired bootstrap), so the
interval of a difference reflects the change, not persona sampling noise
counted twice. A sweep with replicates (``simrun sweep --seeds K``: each variant
run under K seeds) pools them and resamples in two stages, the seeds first,
then personas within each seed and stratum, so the intervals include what
changes from seed to seed. Metrics are recomputed on each resample's answer
shares; the ``shift`` (``simrun.shift``) needs no metric at all.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from .baselines import split
from .diagnostics import diagnose
from .engine import build_pipeline
from .models import ALL_STRATA, INVALID_THRESHOLD, Question
from .registry import Registry
from .scenario import LoadedScenario, validate_data
from .shares import ShareSums
from .shift import Figure, Shares, most_moved, shift, swapped_values
from .store import Store
from .views import SharesView


class Answers:
    """A variant's answers as arrays, for fast reweighting: one run, or its replicates' runs pooled."""

    def __init__(self, store: Store, run_ids: list[str]):
        personas: list[tuple[int, str, int]] = []  # (replicate, stratum, persona id)
        index: dict[tuple[int, int], int] = {}
        weights: list[float] = []
        by_question: dict[str, tuple[list[int], list[dict[str, float]], list[float]]] = defaultdict(
            lambda: ([], [], [])
        )
        for replicate, run_id in enumerate(run_ids):
            for row in store.answer_rows(run_id):
                key = (replicate, row["persona_id"])
                if key not in index:
                    index[key] = len(personas)
                    personas.append((replicate, row["stratum"], row["persona_id"]))
                    weights.append(row["weight"])
                rows, dists, invalid = by_question[row["question_id"]]
                rows.append(index[key])
                dists.append(json.loads(row["distribution"]))
                invalid.append(row["invalid"])
        self.replicates = len(run_ids)
        self.personas = personas
        self.weights = np.array(weights)
        self.strata = sorted({s for _, s, _ in personas})
        self.stratum_index = np.array([self.strata.index(s) for _, s, _ in personas], dtype=int)
        self.groups: dict[tuple[int, int], np.ndarray] = {}  # (replicate, stratum) -> its personas
        for i, (replicate, _, _) in enumerate(personas):
            self.groups.setdefault((replicate, int(self.stratum_index[i])), []).append(i)  # type: ignore[arg-type]
        self.groups = {k: np.array(v) for k, v in self.groups.items()}
        self.questions: dict[str, tuple[np.ndarray, list[str], np.ndarray]] = {}
        self.sizes: dict[str, dict[str, int]] = {}
        for qid, (rows, dists, invalid) in by_question.items():
            members = {personas[r] for r in rows}
            counts = Counter(stratum for _, stratum, _ in members)
            self.sizes[qid] = {**counts, ALL_STRATA: len(members)}
            labels = sorted({label for d in dists for label in d})
            probs = np.array([[d.get(label, 0.0) for label in labels] for d in dists])
            self.questions[qid] = (np.array(rows), labels, np.column_stack([probs, invalid]))

    def per_stratum(self) -> dict[str, int]:
        """Personas per stratum in each replicate (the fewest over replicates)."""
        out: dict[str, int] = {}
        for (_, s), members in self.groups.items():
            out[self.strata[s]] = min(out.get(self.strata[s], len(members)), len(members))
        return out

    def resample_counts(self, rng: np.random.Generator, reps: int) -> np.ndarray:
        """(reps, personas): how often each persona is drawn: the replicates first (with replacement, when there
        are several), then personas within each replicate's strata."""
        counts = np.zeros((reps, len(self.personas)))
        k = self.replicates
        seeds = rng.multinomial(k, np.full(k, 1 / k), size=reps) if k > 1 else np.ones((reps, 1))
        for (replicate, _), members in sorted(self.groups.items()):
            drawn = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=reps)
            counts[:, members] = drawn * seeds[:, replicate : replicate + 1]
        return counts

    def resample(self, counts: np.ndarray, values: dict[str, np.ndarray] | None = None) -> tuple[Shares, dict]:
        """Option shares and invalid mass per question and stratum, personas weighted by ``counts``; ``values``
        replaces a question's answer rows (a random swap with another variant's)."""
        sums = ShareSums()
        w = counts * self.weights
        for qid, (rows, labels, stored) in self.questions.items():
            chosen = stored if values is None else values[qid]
            sums.add(qid, labels, self.strata, self.stratum_index[rows], w[rows], chosen)
        return sums.shares(), sums.invalid()

    def aligned(self, other: Answers) -> bool:
        """The same personas answering the same questions in the same rows: answers can be swapped persona by
        persona."""
        return self.personas == other.personas and all(
            qid in other.questions
            and np.array_equal(rows, other.questions[qid][0])
            and labels == other.questions[qid][1]
            for qid, (rows, labels, _) in self.questions.items()
        )


def overall(store: Store, run_id: str) -> dict[str, float]:
    return {
        f"{m['metric']}.{m['name']}": m["value"]
        for m in store.metrics(run_id)
        if not m["stratum"] and not split(m["metric"])[1]  # the personas' scores; baselines_of has the others
    }


def mean_of(values: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Each name's mean over the dicts (one per replicate); None where any replicate has no value."""
    names = list(dict.fromkeys(name for v in values for name in v))
    out: dict[str, float | None] = {}
    for name in names:
        got = [v.get(name) for v in values]
        out[name] = None if any(x is None for x in got) else float(np.mean(got))  # type: ignore[arg-type]
    return out


def baselines_of(store: Store, run_ids: list[str]) -> dict[str, dict[str, float | None]]:
    """baseline -> metric -> the overall value the metric scored on that baseline's answers (``NAME@BASELINE``),
    the mean over replicates."""
    per_run: dict[str, list[dict[str, float | None]]] = defaultdict(list)
    for run_id in run_ids:
        found: dict[str, dict[str, float | None]] = defaultdict(dict)
        for m in store.metrics(run_id):
            metric, baseline = split(m["metric"])
            if baseline and not m["stratum"]:
                found[baseline][f"{metric}.{m['name']}"] = m["value"]
        for baseline, values in found.items():
            per_run[baseline].append(values)
    return {baseline: mean_of(values) for baseline, values in per_run.items()}


def interval(xs: list[float] | np.ndarray, reps: int) -> list[float] | None:
    xs = np.asarray(xs, dtype=float)
    if len(xs) != reps or not np.isfinite(xs).all():
        return None
    return [float(np.percentile(xs, 2.5)), float(np.percentile(xs, 97.5))]


class Variant:
    """One variant's runs (one per seed), its scenario, metrics and answers."""

    def __init__(self, store: Store, registry: Registry, label: str, records: list[dict]):
        self.label, self.records = label, records
        first = records[0]
        self.loaded: LoadedScenario = validate_data(
            json.loads(first["scenario_json"]), first["scenario_yaml"], f"run {first['id']} ({label})", registry
        )
        self.metrics = build_pipeline(self.loaded, registry).metrics
        self.questions: dict[str, Question] = {q.id: q for q in self.loaded.scenario.questions}
        self.answers = Answers(store, [r["id"] for r in records])

    def scores(self, counts: np.ndarray, no_interval: set[str]) -> tuple[dict[str, float], Shares]:
        """Every resamplable metric's overall figures, and the answer shares, for personas weighted by ``counts``."""
        shares, invalid = self.answers.resample(counts)
        view = SharesView(self.questions, shares, invalid, self.answers.sizes)
        out: dict[str, float] = {}
        for name, metric in self.metrics:
            if not metric.resamplable:
                no_interval.add(name)
                continue
            out.update({f"{name}.{r.name}": r.value for r in metric.compute(view) if not r.stratum})
        return out, shares


def compare(
    store: Store,
    registry: Registry,
    sweep_id: str,
    reps: int = 200,
    seed: int = 0,
    invalid_threshold: float = INVALID_THRESHOLD,
) -> dict[str, Any]:
    """Every variant's shift from the baseline, metrics with intervals and differences, diagnostics, and the
    enrichment steps that wrote nothing usable.

    A variant with a step whose output was invalid for more than
    ``invalid_threshold`` of its personas is marked ``mostly_failed``: its
    difference from the baseline then measures the failure, not the step.
    """
    sweep = store.sweep(sweep_id)
    labels: list[str] = json.loads(sweep["variants"])
    replicates = int(json.loads(sweep["ablation"]).get("replicates", 1))
    runs = store.sweep_runs(sweep_id)
    unfinished = [label for label in labels if sum(r["status"] == "finished" for r in runs.get(label, [])) < replicates]
    if unfinished:
        raise ValueError(f"sweep {sweep_id} has unfinished variants {unfinished}; run the sweep again to finish it")
    rng = np.random.default_rng(seed)
    baseline = labels[0]
    variants = {label: Variant(store, registry, label, runs[label]) for label in labels}
    base = variants[baseline]
    shared = base.answers.resample_counts(rng, reps)
    ones = np.ones(len(base.answers.personas))
    no_interval: set[str] = set()
    base_reps = [base.scores(shared[b], no_interval) for b in range(reps)]
    base_point, base_shares = base.scores(ones, no_interval)
    out = []
    for label in labels:
        v = variants[label]
        paired = v.answers.personas == base.answers.personas
        counts = shared if paired else v.answers.resample_counts(rng, reps)
        rep_scores = base_reps if label == baseline else [v.scores(counts[b], no_interval) for b in range(reps)]
        point_scores, point_shares = (base_point, base_shares) if label == baseline else v.scores(ones, set())
        figures = point_values(store, v, point_scores)
        base_figures = point_values(store, base, base_point)
        metrics_out = {}
        for name, value in figures.items():
            reps_v = [scores.get(name, np.nan) for scores, _ in rep_scores]
            reps_b = [scores.get(name, np.nan) for scores, _ in base_reps]
            before = base_figures.get(name)
            metrics_out[name] = {
                "value": value,
                "ci": interval(reps_v, reps) if name.split(".", 1)[0] not in no_interval else None,
                "diff": value - before if value is not None and before is not None else None,
                "diff_ci": interval(np.array(reps_v) - np.array(reps_b), reps) if paired else None,
            }
        moved = None
        if label != baseline:
            moved = shift_summary(v, point_shares, base_shares, rep_scores, base_reps, reps)
            if paired and v.answers.aligned(base.answers):
                add_noise(moved, v, base, rng, reps)
            for name, figure in moved["figures"].items():
                metrics_out[f"shift.{name}"] = {
                    "value": figure["value"],
                    "ci": figure["ci"],
                    "diff": figure["value"],
                    "diff_ci": figure["ci"],
                    "noise": figure.get("noise"),
                }
        run_ids = [r["id"] for r in v.records]
        invalid = [o.model_dump() for run_id in run_ids for o in store.invalid_outputs(run_id, invalid_threshold)]
        diagnostics = diagnose(store, run_ids[0])
        out.append(
            {
                "label": label,
                "run_id": run_ids[0],
                "run_ids": run_ids,
                "seeds": [r["seed"] for r in v.records],
                "paired": paired,
                "personas": len(v.answers.personas),
                "personas_per_stratum": v.answers.per_stratum(),
                "metrics": metrics_out,
                "shift": moved,
                "baselines": baselines_of(store, run_ids),
                "diagnostics": diagnostics.model_dump(),
                "invalid_outputs": invalid,
                "mostly_failed": [o["step"] for o in invalid if o["mostly_failed"]],
            }
        )
    fewest = min(base.answers.per_stratum().values(), default=0)
    return {
        "sweep": sweep_id,
        "name": sweep["name"],
        "ablation": json.loads(sweep["ablation"]),
        "baseline": baseline,
        "reps": reps,
        "replicates": replicates,
        "variants": out,
        "no_interval": sorted(no_interval),
        "smallest_stratum": fewest,
        "invalid_threshold": invalid_threshold,
    }


def point_values(store: Store, variant: Variant, pooled: dict[str, float]) -> dict[str, float | None]:
    """A variant's metric values: as its run stored them; with replicates, resamplable metrics on the pooled
    answers and the others' mean over the replicates."""
    stored = mean_of([overall(store, r["id"]) for r in variant.records])
    if variant.answers.replicates == 1:
        return stored
    return {**stored, **{name: value for name, value in pooled.items() if name in stored}}


def shift_summary(
    v: Variant,
    point: Shares,
    base_point: Shares,
    rep_scores: list[tuple[dict, Shares]],
    base_reps: list[tuple[dict, Shares]],
    reps: int,
) -> dict[str, Any]:
    """The variant's shift: each figure with its bootstrap interval, and per question the options that moved most."""
    value = shift(v.questions, point, base_point)
    drawn = [shift(v.questions, shares, base_shares) for (_, shares), (_, base_shares) in zip(rep_scores, base_reps)]
    figures: dict[str, dict[str, Any]] = {}
    strata: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (name, stratum), x in value.items():
        entry = {"value": x, "ci": interval([d.get((name, stratum), np.nan) for d in drawn], reps)}
        if stratum:
            strata[name][stratum] = entry
        else:
            figures[name] = entry
    questions = {
        qid: [list(change) for change in most_moved(q, point[qid][ALL_STRATA], base_point[qid][ALL_STRATA])]
        for qid, q in v.questions.items()
        if qid in point and qid in base_point
    }
    return {"figures": figures, "strata": dict(strata), "moved": questions}


def add_noise(moved: dict[str, Any], v: Variant, base: Variant, rng: np.random.Generator, reps: int) -> None:
    """Each overall figure's noise floor: the 95th percentile of its absolute value when each persona's answers
    under the variant and the baseline are swapped at random."""
    ones = np.ones(len(v.answers.personas))
    null: list[dict[Figure, float]] = []
    for _ in range(reps):
        flip = rng.random(len(ones)) < 0.5
        mine, theirs = {}, {}
        for qid, (rows, _, values) in v.answers.questions.items():
            other = base.answers.questions[qid][2]
            mine[qid] = swapped_values(flip, rows, values, other)
            theirs[qid] = swapped_values(flip, rows, other, values)
        null.append(shift(v.questions, v.answers.resample(ones, mine)[0], v.answers.resample(ones, theirs)[0]))
    for name, figure in moved["figures"].items():
        figure["noise"] = float(np.percentile([abs(d.get((name, ""), np.nan)) for d in null], 95))
