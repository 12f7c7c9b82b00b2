"""Compare a sweep's variants: each metric with a bootstrap interval, and its difference from the baseline.

Personas are resampled with replacement within strata; variants that share
the baseline's personas get the same resamples (a paired bootstrap), so the
interval of a difference reflects the change, not persona sampling noise
counted twice. Metrics are recomputed on each resample's answer shares.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from .baselines import split
from .engine import build_pipeline
from .models import ALL_STRATA, INVALID_THRESHOLD
from .registry import Registry
from .scenario import validate_data
from .shares import ShareSums
from .store import Store
from .views import SharesView


class Answers:
    """One run's answers as arrays, for fast reweighting."""

    def __init__(self, store: Store, run_id: str):
        personas: list[tuple[str, int]] = []
        index: dict[int, int] = {}
        weights: list[float] = []
        by_question: dict[str, tuple[list[int], list[dict[str, float]], list[float]]] = defaultdict(
            lambda: ([], [], [])
        )
        for row in store.answer_rows(run_id):
            pid = row["persona_id"]
            if pid not in index:
                index[pid] = len(personas)
                personas.append((row["stratum"], pid))
                weights.append(row["weight"])
            rows, dists, invalid = by_question[row["question_id"]]
            rows.append(index[pid])
            dists.append(json.loads(row["distribution"]))
            invalid.append(row["invalid"])
        self.personas = personas
        self.weights = np.array(weights)
        self.strata = sorted({s for s, _ in personas})
        self.stratum_index = np.array([self.strata.index(s) for s, _ in personas])
        self.questions = {}
        self.sizes: dict[str, dict[str, int]] = {}
        for qid, (rows, dists, invalid) in by_question.items():
            members = {(personas[r][0], personas[r][1]) for r in rows}
            counts = Counter(stratum for stratum, _ in members)
            self.sizes[qid] = {**counts, ALL_STRATA: len(members)}
            labels = sorted({label for d in dists for label in d})
            probs = np.array([[d.get(label, 0.0) for label in labels] for d in dists])
            self.questions[qid] = (np.array(rows), labels, np.column_stack([probs, invalid]))

    def resample_counts(self, rng: np.random.Generator, reps: int) -> np.ndarray:
        """(reps, personas): how often each persona is drawn, resampling within strata."""
        counts = np.zeros((reps, len(self.personas)))
        for s in range(len(self.strata)):
            members = np.flatnonzero(self.stratum_index == s)
            counts[:, members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=reps)
        return counts

    def resample(
        self, counts: np.ndarray
    ) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
        """Option shares and invalid mass per question and stratum, personas weighted by ``counts``."""
        sums = ShareSums()
        w = counts * self.weights
        for qid, (rows, labels, values) in self.questions.items():
            sums.add(qid, labels, self.strata, self.stratum_index[rows], w[rows], values)
        return sums.shares(), sums.invalid()


def overall(store: Store, run_id: str) -> dict[str, float]:
    return {
        f"{m['metric']}.{m['name']}": m["value"]
        for m in store.metrics(run_id)
        if not m["stratum"] and not split(m["metric"])[1]  # the personas' scores; baselines_of has the others
    }


def baselines_of(store: Store, run_id: str) -> dict[str, dict[str, float]]:
    """baseline -> metric -> the overall value the metric scored on that baseline's answers (``NAME@BASELINE``)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for m in store.metrics(run_id):
        metric, baseline = split(m["metric"])
        if baseline and not m["stratum"]:
            out[baseline][f"{metric}.{m['name']}"] = m["value"]
    return dict(out)


def compare(
    store: Store,
    registry: Registry,
    sweep_id: str,
    reps: int = 200,
    seed: int = 0,
    invalid_threshold: float = INVALID_THRESHOLD,
) -> dict[str, Any]:
    """Every variant's metrics with intervals and differences, and the enrichment steps that wrote nothing usable.

    A variant with a step whose output was invalid for more than
    ``invalid_threshold`` of its personas is marked ``mostly_failed``: its
    difference from the baseline then measures the failure, not the step.
    """
    sweep = store.sweep(sweep_id)
    labels: list[str] = json.loads(sweep["variants"])
    runs = store.sweep_runs(sweep_id)
    unfinished = [label for label in labels if runs.get(label, {}).get("status") != "finished"]
    if unfinished:
        raise ValueError(f"sweep {sweep_id} has unfinished variants {unfinished}; run the sweep again to finish it")
    rng = np.random.default_rng(seed)
    baseline = labels[0]
    draws: dict[str, np.ndarray] = {}
    shared_counts: tuple[list, np.ndarray] | None = None
    values: dict[str, dict[str, list[float]]] = {}
    no_interval: set[str] = set()
    for label in labels:
        run = runs[label]
        loaded = validate_data(json.loads(run["scenario_json"]), run["scenario_yaml"], f"run {run['id']}", registry)
        metrics = build_pipeline(loaded, registry).metrics
        answers = Answers(store, run["id"])
        if shared_counts is not None and shared_counts[0] == answers.personas:
            counts = shared_counts[1]
        else:
            counts = answers.resample_counts(rng, reps)
            if shared_counts is None:
                shared_counts = (answers.personas, counts)
        draws[label] = counts
        if label == baseline:
            smallest = int(np.bincount(answers.stratum_index).min())
        per_rep: dict[str, list[float]] = defaultdict(list)
        questions = {q.id: q for q in loaded.scenario.questions}
        for b in range(reps):
            view = SharesView(questions, *answers.resample(counts[b]), answers.sizes)
            for name, metric in metrics:
                if not metric.resamplable:
                    no_interval.add(name)
                    continue
                for r in metric.compute(view):
                    if not r.stratum:
                        per_rep[f"{name}.{r.name}"].append(r.value)
        values[label] = per_rep

    def interval(xs: list[float] | np.ndarray) -> list[float] | None:
        xs = np.asarray(xs, dtype=float)
        if len(xs) != reps or not np.isfinite(xs).all():
            return None
        return [float(np.percentile(xs, 2.5)), float(np.percentile(xs, 97.5))]

    base_point = overall(store, runs[baseline]["id"])
    variants = []
    for label in labels:
        point = overall(store, runs[label]["id"])
        paired = draws[label] is draws[baseline]
        metrics_out = {}
        for name, value in point.items():
            reps_v, reps_b = values[label].get(name, []), values[baseline].get(name, [])
            diff_ci = (
                interval(np.array(reps_v) - np.array(reps_b)) if paired and len(reps_v) == len(reps_b) == reps else None
            )
            base = base_point.get(name)
            diff = (
                value - base if value is not None and base is not None else None
            )  # None: no data (NaN is stored as NULL)
            metrics_out[name] = {"value": value, "ci": interval(reps_v), "diff": diff, "diff_ci": diff_ci}
        invalid = [o.model_dump() for o in store.invalid_outputs(runs[label]["id"], invalid_threshold)]
        variants.append(
            {
                "label": label,
                "run_id": runs[label]["id"],
                "paired": paired,
                "metrics": metrics_out,
                "baselines": baselines_of(store, runs[label]["id"]),
                "invalid_outputs": invalid,
                "mostly_failed": [o["step"] for o in invalid if o["mostly_failed"]],
            }
        )
    return {
        "sweep": sweep_id,
        "name": sweep["name"],
        "ablation": json.loads(sweep["ablation"]),
        "baseline": baseline,
        "reps": reps,
        "variants": variants,
        "no_interval": sorted(no_interval),
        "smallest_stratum": smallest,
        "invalid_threshold": invalid_threshold,
    }
