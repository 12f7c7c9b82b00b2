"""Scoring: every metric on the run's answers, and on each baseline's, written to ``metrics``."""

from __future__ import annotations

from typing import Any

from ..baselines import SEPARATOR, BaselineView
from ..components import Metric, Sampler
from ..models import ModelAnswer
from ..registry import Registry
from ..scenario import LoadedScenario
from ..store import Store
from ..views import RunView


def score(
    store: Store,
    registry: Registry,
    run_id: str,
    loaded: LoadedScenario,
    metrics: list[tuple[str, Metric]],
    baselines: dict[str, dict[str, ModelAnswer]],
    faults: dict[str, int],
) -> dict[str, float]:
    """Every metric on the run, then each metric that declares ``baselines`` on each baseline's answers; a
    baseline a metric cannot build or score is left out, noted in ``faults`` (kept with the run's stats)."""
    run_sampler = loaded.scenario.sampler

    def sampler(spec: dict[str, Any] | None) -> Sampler:
        use, config = (spec["use"], spec.get("with") or {}) if spec else (run_sampler.use, run_sampler.with_)
        return registry.get("sampler", use).build(config)

    view = RunView(store, run_id, loaded.scenario.questions, sampler)
    values: dict[str, float] = {}
    for name, metric in metrics:
        try:
            results = metric.compute(view)
        except Exception as exc:
            exc.add_note(f"in metric '{name}' (compute)")
            raise
        store.results.write_metrics(run_id, name, [r.model_dump() for r in results])
        values.update({f"{name}.{r.label}": r.value for r in results if not r.stratum})
    shared = {baseline: BaselineView(view, answers) for baseline, answers in baselines.items()}
    for name, metric in metrics:
        try:
            own = metric.own_baselines(view)
        except Exception as exc:  # noqa: BLE001 - a baseline the metric cannot build never fails the run
            faults[f"baseline_own_unbuilt:{name}: {type(exc).__name__}"] = 1
            own = {}
        views = {**(shared if metric.baselines else {}), **own}
        for baseline, reference in views.items():
            try:
                results = metric.compute(reference)
            except Exception as exc:  # noqa: BLE001 - a baseline the metric cannot score never fails the run
                faults[f"baseline_{baseline}_unscored:{name}: {type(exc).__name__}"] = 1
                continue
            store.results.write_metrics(run_id, f"{name}{SEPARATOR}{baseline}", [r.model_dump() for r in results])
    if faults:
        store.runs.add_stats(run_id, faults)
    return values
