"""Compare a sweep's variants: how far each moved answers from the baseline (the shift), each metric with a
bootstrap interval and its difference from the baseline, and what to distrust.

Intervals come from resampling personas within strata (``simrun.resample``);
variants with the same sampled people share the resamples, so the interval of
a difference reflects the change, not persona sampling counted twice. With
replicates (``simrun sweep --seeds K``) every figure is the mean over the seeds,
and the seeds are resampled too. Metrics are recomputed on each resample's
answer shares; the ``shift`` (``simrun.shift``) needs no metric at all.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np

from .baselines import split
from .components import figure_label
from .diagnostics import diagnose, unsaid
from .engine import build_pipeline
from .models import INVALID_THRESHOLD, Question
from .registry import Registry
from .resample import Answers, Draw, draws
from .scenario import LoadedScenario, validate_data
from .shift import Figure, Shares, comparable, mean_figures, shift
from .store import Store
from .sweep import same_people
from .views import SharesView


def overall(store: Store, run_id: str) -> dict[str, float]:
    return {
        f"{m['metric']}.{figure_label(m['name'], m['question'])}": m["value"]
        for m in store.results.metrics(run_id)
        if not m["stratum"] and not split(m["metric"])[1]  # the personas' scores; baselines_of has the others
    }


def mean_of(values: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Each name's mean over the dicts (one per replicate); None where any replicate has no value."""
    out: dict[str, float | None] = {}
    for name in dict.fromkeys(name for v in values for name in v):
        got = [v.get(name) for v in values]
        out[name] = None if any(x is None for x in got) else float(np.mean(got))  # type: ignore[arg-type]
    return out


def baselines_of(store: Store, run_ids: list[str]) -> dict[str, dict[str, float | None]]:
    """baseline -> metric -> the overall value the metric scored on that baseline's answers (``NAME@BASELINE``),
    the mean over replicates."""
    per_run: dict[str, list[dict[str, float | None]]] = defaultdict(list)
    for run_id in run_ids:
        found: dict[str, dict[str, float | None]] = defaultdict(dict)
        for m in store.results.metrics(run_id):
            metric, baseline = split(m["metric"])
            if baseline and not m["stratum"]:
                found[baseline][f"{metric}.{figure_label(m['name'], m['question'])}"] = m["value"]
        for baseline, values in found.items():
            per_run[baseline].append(values)
    return {baseline: mean_of(values) for baseline, values in per_run.items()}


def percentile_interval(xs: list[float] | np.ndarray, reps: int) -> list[float] | None:
    xs = np.asarray(xs, dtype=float)
    if len(xs) != reps or not np.isfinite(xs).all():
        return None
    return [float(np.percentile(xs, 2.5)), float(np.percentile(xs, 97.5))]


class Variant:
    """One variant's finished runs (one per seed), its scenario, metrics and answers."""

    def __init__(self, store: Store, registry: Registry, label: str, records: list[dict]):
        self.label, self.records = label, records
        first = records[0]
        self.loaded: LoadedScenario = validate_data(
            json.loads(first["scenario_json"]), first["scenario_yaml"], f"run {first['id']} ({label})", registry
        )
        self.metrics = build_pipeline(self.loaded, registry).metrics
        self.resamplable = [(name, metric) for name, metric in self.metrics if metric.resamplable]
        self.questions: dict[str, Question] = {q.id: q for q in self.loaded.scenario.questions}
        self.answers = [Answers(store, r["id"]) for r in records]

    def pairs_with(self, other: Variant) -> bool:
        """The same sampled people, seed by seed: resamples can be shared, differences are paired."""
        return same_people(self.loaded, other.loaded) and [a.personas for a in self.answers] == [
            a.personas for a in other.answers
        ]

    def scores(self, replicate: int, counts: np.ndarray) -> tuple[dict[str, float], Shares]:
        """Every resamplable metric's overall figures, and the answer shares, of one seed's personas weighted by
        ``counts``."""
        answers = self.answers[replicate]
        shares, invalid = answers.shares(counts)
        view = SharesView(self.questions, shares, invalid, answers.sizes)
        out: dict[str, float] = {}
        for name, metric in self.resamplable:
            out.update({f"{name}.{r.label}": r.value for r in metric.compute(view) if not r.stratum})
        return out, shares

    def point_shares(self) -> list[Shares]:
        return [a.shares(np.ones(len(a.personas)))[0] for a in self.answers]


Scored = list[list[tuple[dict[str, float], Shares]]]  # per resample, per seed copy: (metric figures, shares)


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
    sweep = store.sweeps.get(sweep_id)
    labels: list[str] = json.loads(sweep["variants"])
    replicates = int(json.loads(sweep["ablation"]).get("replicates", 1))
    runs = {
        label: [r for r in records if r["status"] == "finished"]
        for label, records in store.sweeps.runs(sweep_id).items()
    }
    unfinished = [label for label in labels if len(runs.get(label, [])) < replicates]
    if unfinished:
        raise ValueError(
            f"sweep {sweep_id} has unfinished variants {unfinished}; to finish it, run `simrun sweep` again on the "
            "same file with the same --set options (a sweep is found again by its scenario)"
        )
    rng = np.random.default_rng(seed)
    variants = [Variant(store, registry, label, runs[label]) for label in labels]
    base = variants[0]
    base_draws = draws(rng, base.answers, reps)
    base_scored = score_draws(base, base_draws)
    base_values = mean_of([overall(store, r["id"]) for r in base.records])
    base_shares = base.point_shares()
    no_interval = sorted({name for v in variants for name, m in v.metrics if not m.resamplable})
    out = []
    for v in variants:
        paired = v.pairs_with(base)
        scored = base_scored if v is base else score_draws(v, base_draws if paired else draws(rng, v.answers, reps))
        metrics_out = metric_figures(store, v, scored, base_values, base_scored, paired, no_interval, reps)
        moved = None
        if v is not base:
            moved = shift_summary(v, base, base_shares, scored, base_scored, reps)
            if paired and all(a.aligned(b) for a, b in zip(v.answers, base.answers)):
                add_noise(moved, v, base, rng, reps)
                add_persona_shift(moved, v, base, base_draws, reps)
            metrics_out.update(
                {
                    f"shift.{name}": {**figure, "diff": figure["value"], "diff_ci": figure["ci"]}
                    for name, figure in moved["figures"].items()
                }
            )
        run_ids = [r["id"] for r in v.records]
        invalid = [
            o.model_dump() for run_id in run_ids for o in store.results.invalid_outputs(run_id, invalid_threshold)
        ]
        out.append(
            {
                "label": v.label,
                "run_id": run_ids[0],
                "run_ids": run_ids,
                "seeds": [r["seed"] for r in v.records],
                "paired": paired,
                "personas": len(v.answers[0].personas),  # per seed (the first; each seed draws as many)
                "personas_per_stratum": v.answers[0].per_stratum(),
                "failed_answers": sum(a.failed for a in v.answers),
                "metrics": metrics_out,
                "shift": moved,
                "baselines": baselines_of(store, run_ids),
                "diagnostics": seed_diagnostics(store, run_ids),
                "invalid_outputs": invalid,
                "mostly_failed": [o["step"] for o in invalid if o["mostly_failed"]],
            }
        )
    return {
        "sweep": sweep_id,
        "name": sweep["name"],
        "ablation": json.loads(sweep["ablation"]),
        "baseline": base.label,
        "reps": reps,
        "replicates": replicates,
        "variants": out,
        "no_interval": no_interval,
        "smallest_stratum": min(base.answers[0].per_stratum().values(), default=0),
        "invalid_threshold": invalid_threshold,
    }


def score_draws(variant: Variant, drawn: list[Draw]) -> Scored:
    return [[variant.scores(replicate, counts) for replicate, counts in copies] for copies in drawn]


def per_draw(scored: Scored, name: str) -> np.ndarray:
    """A metric figure in each resample: its mean over the resample's seed copies (NaN where it has none)."""
    return np.array([np.mean([figures.get(name, np.nan) for figures, _ in copies]) for copies in scored])


def metric_figures(
    store: Store,
    v: Variant,
    scored: Scored,
    base_values: dict[str, float | None],
    base_scored: Scored,
    paired: bool,
    no_interval: list[str],
    reps: int,
) -> dict[str, dict[str, Any]]:
    """Each metric figure: the value its runs stored (the mean over seeds), its interval, and its difference from
    the baseline's with the paired interval."""
    out = {}
    for name, value in mean_of([overall(store, r["id"]) for r in v.records]).items():
        drawn, before = per_draw(scored, name), base_values.get(name)
        out[name] = {
            "value": value,
            "ci": None if name.split(".", 1)[0] in no_interval else percentile_interval(drawn, reps),
            "diff": value - before if value is not None and before is not None else None,
            "diff_ci": percentile_interval(drawn - per_draw(base_scored, name), reps) if paired else None,
        }
    return out


def shift_summary(
    v: Variant, base: Variant, base_shares: list[Shares], scored: Scored, base_scored: Scored, reps: int
) -> dict[str, Any]:
    """The variant's shift: each figure (the mean over seeds) with its interval, per stratum, and per question the
    options whose share moved most."""
    questions = comparable(v.questions, base.questions)
    seeds = [shift(questions, mine, theirs) for mine, theirs in zip(v.point_shares(), base_shares)]
    point = mean_figures(seeds)
    drawn = [
        mean_figures([shift(questions, mine, theirs) for (_, mine), (_, theirs) in zip(copies, base_copies)])
        for copies, base_copies in zip(scored, base_scored)
    ]
    figures: dict[str, dict[str, Any]] = {}
    strata: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (name, stratum), x in sorted(point.items()):
        xs = [d.get((name, stratum), np.nan) for d in drawn]
        entry = {"value": x, "ci": percentile_interval(xs, reps)}
        if stratum:
            strata[name][stratum] = entry
        else:
            figures[name] = entry
            if len(seeds) > 1:
                entry["per_seed"] = [seed.get((name, stratum)) for seed in seeds]
    moved = {
        qid: sorted(
            [
                [option, figures[f"change.{qid}.{label}"]["value"], figures[f"change.{qid}.{label}"]["ci"]]
                for label, option in zip(q.labels, q.options)
                if f"change.{qid}.{label}" in figures
            ],
            key=lambda change: -abs(change[1]),
        )
        for qid, q in questions.items()
    }
    return {
        "figures": figures,
        "strata": dict(strata),
        "moved": moved,
        "questions": sorted(questions),
        "not_compared": sorted((set(v.questions) | set(base.questions)) - set(questions)),
    }


def add_noise(moved: dict[str, Any], v: Variant, base: Variant, rng: np.random.Generator, reps: int) -> None:
    """Each overall TVD's noise floor: its 95th percentile when each persona's answers under the variant and the
    baseline are swapped at random (in every seed), as they could be if the variant changed nothing."""
    questions = comparable(v.questions, base.questions)
    null: list[dict[Figure, float]] = []
    for _ in range(reps):
        per_seed = []
        for mine, theirs in zip(v.answers, base.answers):
            ones = np.ones(len(mine.personas))
            left, right = mine.swapped(theirs, rng.random(len(ones)) < 0.5)
            per_seed.append(shift(questions, mine.shares(ones, left)[0], mine.shares(ones, right)[0]))
        null.append(mean_figures(per_seed))
    for name, figure in moved["figures"].items():
        if name.startswith("tvd"):
            figure["noise"] = float(np.percentile([d.get((name, ""), np.nan) for d in null], 95))


def persona_shift(mine: Answers, theirs: Answers, questions: list[str], counts: np.ndarray) -> float:
    """How far each persona's own answer moved (TVD between its two answers, weighted by ``counts`` and weight),
    averaged over questions. Unlike the shift of shares, moves in opposite directions do not cancel."""
    per_question = []
    for qid in questions:
        rows, _, values = mine.questions[qid]
        w = counts[rows] * mine.weights[rows]
        moved = 0.5 * np.abs(values[:, :-1] - theirs.questions[qid][2][:, :-1]).sum(axis=1)
        per_question.append(float((w * moved).sum() / w.sum()) if w.sum() > 0 else np.nan)
    return float(np.mean(per_question)) if per_question else np.nan


def add_persona_shift(moved: dict[str, Any], v: Variant, base: Variant, drawn: list[Draw], reps: int) -> None:
    """The persona shift (``persona_shift``) of an ``aligned`` variant: its mean over seeds, with its interval."""
    questions = [q for q in moved["questions"] if all(q in a.questions for a in v.answers)]
    pairs = list(zip(v.answers, base.answers))
    point = np.mean([persona_shift(a, b, questions, np.ones(len(a.personas))) for a, b in pairs])
    xs = [np.mean([persona_shift(*pairs[k], questions, counts) for k, counts in copies]) for copies in drawn]
    if np.isfinite(point):
        moved["figures"]["persona"] = {"value": float(point), "ci": percentile_interval(xs, reps)}


def seed_diagnostics(store: Store, run_ids: list[str]) -> dict[str, Any]:
    """The first seed's checks, with the warnings of every seed (one of each kind, the first seed's first)."""
    checks = [diagnose(store, run_id) for run_id in run_ids]
    out = checks[0].model_dump()
    said: set[str] = set()
    out["warnings"] = unsaid(out["warnings"], said)
    for seed, check in zip(run_ids[1:], checks[1:]):
        out["warnings"] += [f"{warning} (run {seed})" for warning in unsaid(check.warnings, said)]
    return out
