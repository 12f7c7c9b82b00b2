"""``election``: simulated presidential vote by state against the real result.

Per state, the Democratic two-party share is the personas' weighted mean
probability of the Democratic option over the two candidates. It is scored
against the real 2024 result (MEDSL, shipped in the package), or any results
file with the same columns given as ``truth``: by error (MAE, RMSE, bias), by
calls and electoral votes, by alignment 1 - W, and by correlation (Pearson and
Spearman across states), which says whether the states come out in the right
order even when the level is off. ``sampling_mae_points`` is the MAE that as
many real voters per state as the run has personas reach by chance alone: the
floor under ``mae_points`` at that N.

Maine and Nebraska split their electoral votes by district; with state-level
results only, both are counted winner-take-all. For 2024 that gives the
certified totals anyway (Harris 226, Trump 312): Harris's district vote in
NE-2 and Trump's in ME-2 cancel.

A state simulated at exactly 0.5 (within 1e-9: the uniform baseline's every
state) is called for neither party: it counts in ``states_tied``, not in
``states_called`` nor in either party's electoral votes. So is a state whose
personas put no mass on either candidate: its share is taken as 0.5, no
preference, as the uniform baseline's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from simrun import (
    ALL_STRATA,
    CheckContext,
    FixedSharesView,
    Metric,
    MetricValue,
    Problem,
    StrictConfig,
    correlation,
    data,
    hookimpl,
    pyplot,
)

TRUTH_COLUMNS = {"state", "dem_votes", "rep_votes", "electoral_votes"}
TIE = 1e-9  # a simulated two-party share this close to 0.5 calls the state for neither party


def two_party_share(dem: float, rep: float) -> float:
    """The Democratic share of the two-party mass; 0.5 (no preference, a tie) when there is none."""
    return dem / (dem + rep) if dem + rep > 0 else 0.5


def read_truth(path: Path) -> dict[str, dict[str, float]]:
    """Votes and electoral votes by state, every line checked: numbers >= 0 and some votes."""
    truth = {}
    for line, row in data.table_rows(path, sorted(TRUTH_COLUMNS)):
        where = f"{path}:{line}: state {row['state']}"
        truth[row["state"]] = {k: data.non_negative(row[k], f"{where}: {k}") for k in sorted(TRUTH_COLUMNS - {"state"})}
        if truth[row["state"]]["dem_votes"] + truth[row["state"]]["rep_votes"] <= 0:
            raise ValueError(f"{where}: no votes for either party")
    if not truth:
        raise ValueError(f"{path}: no states in the file")
    return truth


def sampling_mae(shares: np.ndarray, sizes: list[int]) -> float:
    """The mean absolute error N voters drawn at random reach, per state exactly (binomial), averaged: the floor
    under a run's MAE at its number of personas per state. NaN where a state has no persona."""
    from scipy.stats import binom

    errors = []
    for p, n in zip(shares, sizes):
        if n <= 0:
            return float("nan")
        k = np.arange(n + 1)
        errors.append(float(np.sum(binom.pmf(k, n, p) * np.abs(k / n - p))))
    return float(np.mean(errors))


class ElectionMetric(Metric):
    """Per-state Democratic two-party share vs real results: error, bias, calls, electoral votes."""

    name = "election"
    baselines = True  # also scored on uniform answers and on the model with no persona
    resamplable = True  # reads answer shares only: bootstrap intervals in compare

    class Config(StrictConfig):
        question: str = Field("vote2024", description="Id of the vote question.")
        dem_option: str = Field("A", description="Label of the Democratic candidate's option.")
        rep_option: str = Field("B", description="Label of the Republican candidate's option.")
        abstain_option: str | None = Field(
            None, description="Label of a 'did not vote' option, if the question has one."
        )
        truth: str | None = Field(
            None, description="CSV with state, dem_votes, rep_votes, electoral_votes; default: 2024 (MEDSL)."
        )
        forecast: str | None = Field(
            None,
            description="An earlier election in the same format: scored as the naive forecast that every state "
            "votes as it did then (election@forecast, beside the personas' score).",
        )

        @field_validator("truth", "forecast")
        @classmethod
        def _readable(cls, value: str | None) -> str | None:
            if value is not None:
                read_truth(Path(value))
            return value

    @classmethod
    def check(cls, config: Config, context: CheckContext) -> list[Problem]:
        question = context.question(config.question)
        if question is None:
            return [
                Problem(
                    "question",
                    f"no question '{config.question}' in the scenario "
                    f"(it has {', '.join(q.id for q in context.scenario.questions)})",
                )
            ]
        chosen = {
            "dem_option": config.dem_option,
            "rep_option": config.rep_option,
            "abstain_option": config.abstain_option,
        }
        problems = [
            Problem(
                field,
                f"'{label}' is not an option label of {question.id}; its labels are "
                + ", ".join(f"{lab} ({text})" for lab, text in zip(question.labels, question.options)),
            )
            for field, label in chosen.items()
            if label is not None and label not in question.labels
        ]
        if config.dem_option == config.rep_option:
            problems.append(Problem("rep_option", f"the same option as dem_option ('{config.dem_option}')"))
        truth = read_truth(Path(config.truth) if config.truth else data.path("president_2024.csv"))
        if context.strata is not None and not context.strata & truth.keys():
            problems.append(
                Problem(
                    "truth",
                    f"no state in common with the sampler's strata ({', '.join(sorted(context.strata)[:8])}...): "
                    "every score would be empty",
                )
            )
        return problems

    def plots(self, by_stratum: dict[str, dict[str, float]]) -> list[tuple[str, Any]]:
        """Simulated vs real Democratic share by state, and each state's error, most Democratic first."""
        states = sorted(
            (s for s, v in by_stratum.items() if "dem_share" in v and "true_dem_share" in v),
            key=lambda s: -by_stratum[s]["true_dem_share"],
        )
        if not states:
            return []
        plt = pyplot()
        sim = [by_stratum[s]["dem_share"] * 100 for s in states]
        true = [by_stratum[s]["true_dem_share"] * 100 for s in states]
        scatter, ax = plt.subplots(figsize=(7, 7))
        ax.scatter(true, sim, s=18, color="#3465a4")
        low, high = min(true + sim) - 3, max(true + sim) + 3
        ax.plot([low, high], [low, high], color="#888", linestyle="--", linewidth=1, label="simulated = real")
        for s, x, y in zip(states, true, sim):
            ax.annotate(s, (x, y), fontsize=7, xytext=(2, 2), textcoords="offset points")
        ax.set(
            xlabel="real Democratic two-party share (%)",
            ylabel="simulated Democratic two-party share (%)",
            title="Simulated vs real vote by state",
            xlim=(low, high),
            ylim=(low, high),
        )
        ax.legend(loc="upper left")
        bars, ax = plt.subplots(figsize=(11, 4))
        errors = [a - b for a, b in zip(sim, true)]
        ax.bar(states, errors, color=["#3465a4" if e > 0 else "#cc0000" for e in errors])
        ax.axhline(0, color="#444", linewidth=0.8)
        ax.set(
            ylabel="simulated - real (points)",
            title="Error by state, most Democratic (left) to most Republican (right)",
        )
        ax.tick_params(axis="x", labelsize=7, rotation=90)
        return [("simulated vs real Democratic share by state", scatter), ("error by state", bars)]

    def own_baselines(self, run) -> dict[str, FixedSharesView]:
        """``forecast``: each state's two-party result in the earlier election, as if the personas had voted so."""
        c = self.config
        if c.forecast is None or c.question not in run.questions:
            return {}
        earlier = read_truth(Path(c.forecast))
        states = [s for s in run.shares(c.question) if s in earlier]
        dem = {s: earlier[s]["dem_votes"] / (earlier[s]["dem_votes"] + earlier[s]["rep_votes"]) for s in states}
        votes = {s: earlier[s]["dem_votes"] + earlier[s]["rep_votes"] for s in states}
        national = sum(dem[s] * votes[s] for s in states) / sum(votes.values()) if states else 0.5
        shares = {s: {c.dem_option: d, c.rep_option: 1 - d} for s, d in {**dem, ALL_STRATA: national}.items()}
        return {"forecast": FixedSharesView(run, {c.question: shares})}

    def compute(self, run) -> list[MetricValue]:
        from scipy.stats import rankdata, wasserstein_distance  # 1.5 s to import: only when scoring

        c = self.config
        if c.question not in run.questions:
            raise ValueError(
                f"election metric: no question '{c.question}' in this scenario (have {sorted(run.questions)})"
            )
        truth = read_truth(Path(c.truth) if c.truth else data.path("president_2024.csv"))
        shares = run.shares(c.question)
        states = sorted(s for s in shares if s in truth)
        if not states:
            raise ValueError("election metric: no simulated stratum matches a state in the truth file")
        sim = np.array(
            [two_party_share(shares[s].get(c.dem_option, 0.0), shares[s].get(c.rep_option, 0.0)) for s in states]
        )
        true = np.array([truth[s]["dem_votes"] / (truth[s]["dem_votes"] + truth[s]["rep_votes"]) for s in states])
        votes = np.array([truth[s]["dem_votes"] + truth[s]["rep_votes"] for s in states])
        ev = np.array([truth[s]["electoral_votes"] for s in states])
        error = sim - true
        tied = np.abs(sim - 0.5) <= TIE
        dem_called, rep_called = (sim > 0.5) & ~tied, (sim < 0.5) & ~tied
        sizes = run.sizes(c.question)
        values = [
            MetricValue(name="mae_points", value=float(np.mean(np.abs(error)) * 100)),
            # What chance alone costs at the run's N: a perfect simulator's personas still vote as a sample
            MetricValue(name="sampling_mae_points", value=sampling_mae(true, [sizes.get(s, 0) for s in states]) * 100),
            MetricValue(name="rmse_points", value=float(math.sqrt(np.mean(error**2)) * 100)),
            MetricValue(name="bias_points", value=float(np.mean(error) * 100)),
            MetricValue(
                name="states_called", value=float(np.sum(dem_called & (true > 0.5)) + np.sum(rep_called & (true < 0.5)))
            ),
            MetricValue(name="states_tied", value=float(np.sum(tied))),
            MetricValue(name="states", value=float(len(states))),
            MetricValue(name="dem_electoral_votes", value=float(ev[dem_called].sum())),
            MetricValue(name="rep_electoral_votes", value=float(ev[rep_called].sum())),
            MetricValue(name="true_dem_electoral_votes", value=float(ev[true > 0.5].sum())),
            MetricValue(name="national_dem_share", value=float(np.sum(sim * votes) / votes.sum())),
            MetricValue(name="true_national_dem_share", value=float(np.sum(true * votes) / votes.sum())),
            # Correlation, not only distance: does the simulation order the states as the voters did?
            MetricValue(name="pearson_r", value=correlation(sim, true)),
            MetricValue(name="spearman_rho", value=correlation(rankdata(sim), rankdata(true))),
            # Alignment 1 - W in both readings: (a) per state, W between the simulated
            # and real two-candidate vote distributions (|sim - true| on a 0..1 support),
            # averaged; (b) W between the distributions of state shares.
            MetricValue(name="invalid_rate", value=float(run.invalid(c.question).get(ALL_STRATA, 0.0))),
            MetricValue(name="alignment_per_state", value=float(1 - np.mean(np.abs(error)))),
            MetricValue(name="alignment_state_shares", value=float(1 - wasserstein_distance(sim, true))),
        ]
        if c.abstain_option is not None:
            values.append(
                MetricValue(name="abstain_rate", value=float(shares.get(ALL_STRATA, {}).get(c.abstain_option, 0.0)))
            )
        for s, p, t in zip(states, sim, true):
            values += [
                MetricValue(name="dem_share", value=float(p), stratum=s),
                MetricValue(name="true_dem_share", value=float(t), stratum=s),
                MetricValue(name="error_points", value=float((p - t) * 100), stratum=s),
            ]
        return values


@hookimpl
def register_metrics(register):
    register(ElectionMetric)
