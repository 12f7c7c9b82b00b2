"""The commands that write files: export (answers), sample (personas) and report (an HTML page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .cli_support import common, comparison, fail, invalid_threshold_option, open_scenario, overrides_option
from .display import errors, run_summary, scores
from .engine import build_pipeline, started
from .engine.calls import ModelCalls
from .engine.enrichment import enrich
from .engine.sampling import batches
from .progress import progress_bar
from .registry import Registry
from .scenario import ScenarioError, validate_data
from .store import Store
from .writers import FORMATS, RowWriter, format_for


@click.command()
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from the file name, else csv.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="File to write (default: standard output; parquet needs a file).",
)
@common
def export(run_id: str, fmt: str | None, output: str | None, db_path: str, registry: Registry) -> None:
    """Export a run's answers, one row per persona x question x repeat (the scenario's repeats), with persona attributes
    and option probabilities."""
    store = Store(db_path, read_only=True)
    try:
        store.runs.get(run_id)
    except KeyError:
        fail(f"no run '{run_id}' in {db_path}; `simrun runs` lists them")
    personas = {p.id: p for p in store.personas.rows(run_id)}
    try:
        with RowWriter(output, format_for(output, fmt)) as writer:
            batch: list[dict] = []
            for row in store.answers.rows(run_id, prompts=True):
                persona = personas[row["persona_id"]]
                batch.append(
                    {
                        "run_id": run_id,
                        "persona_id": row["persona_id"],
                        "stratum": row["stratum"],
                        "weight": row["weight"],
                        **{f"attr_{k}": v for k, v in persona.attributes.items()},
                        "question_id": row["question_id"],
                        "repeat": row["repeat"],
                        **{f"p_{k}": v for k, v in row["distribution"].items()},
                        "invalid": row["invalid"],
                        "model": row["model"],
                        "raw": row["raw"],
                        "error": row["error"],
                        "prompt": row["prompt"],
                    }
                )
                if len(batch) == 1000:
                    writer.write(batch)
                    batch = []
            writer.write(batch)
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))


@click.command(name="sample")
@click.argument("scenario", type=click.Path(dir_okay=False))
@overrides_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), required=True, help="File to write: .csv, .jsonl or .parquet."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from the file name.")
@common
def sample_command(
    scenario: str, overrides: tuple[str, ...], output: str, fmt: str | None, db_path: str, registry: Registry
) -> None:
    """Write SCENARIO's personas (sampled and enriched) to a file, without asking any question.

    One row per persona: id, stratum, weight, every attribute, and each
    attribute's provenance as JSON. Text an enricher generates is cached in
    the run log (--db), so a later run of the same scenario reuses it.
    """
    loaded = open_scenario(scenario, registry, overrides)
    pipeline = build_pipeline(loaded, registry)
    store = Store(db_path)
    calls = ModelCalls(store)  # generated text is cached for later runs
    try:
        with (
            started(loaded, pipeline, registry),
            RowWriter(output, format_for(output, fmt)) as writer,
            progress_bar(errors.is_terminal) as bar,
        ):
            task = bar.add_task("sampling personas", total=pipeline.sampler.total())
            for index, batch, _ in batches(store, loaded, pipeline, None):
                batch = enrich(batch, index, loaded, pipeline, calls)
                writer.write(
                    [
                        {
                            "id": p.id,
                            "stratum": p.stratum,
                            "weight": p.weight,
                            **p.attributes,
                            "provenance": json.dumps(p.provenance),
                        }
                        for p in batch
                    ]
                )
                bar.advance(task, len(batch))
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    errors.print(f"wrote {writer.rows} personas to {output}")


@click.command()
@click.argument("run_or_sweep_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The HTML file to write.")
@click.option(
    "--reps", default=200, show_default=True, type=click.IntRange(20, 100000), help="Bootstrap resamples (sweeps)."
)
@invalid_threshold_option
@common
def report(
    run_or_sweep_id: str, output: str, reps: int, invalid_threshold: float, db_path: str, registry: Registry
) -> None:
    """Write one self-contained HTML page for a run (or a sweep) with its plots and tables.

    Both start with what to distrust (few personas, failed answers, position
    bias, off-option answers, personas the model ignores). A run gets its
    metrics beside the baselines, each metric's own plots and its answer shares
    per stratum. A sweep gets each variant's shift from the baseline (how far
    its answers moved, with intervals and a noise floor; by question and by
    stratum), each metric as differences from the baseline around zero with the
    uniform and no-persona scores as reference lines, and the per-state error
    of every variant. Enrichment steps that wrote nothing usable for more than
    --invalid-threshold of the personas are named at the top, and their
    variants marked.
    """
    from .report import run_report, sweep_report

    store = Store(db_path, read_only=True)
    try:
        summary = run_summary(store, run_or_sweep_id, invalid_threshold)
        page = run_report(store, summary, metric_figures(store.runs.get(run_or_sweep_id), summary, registry))
    except KeyError:
        result = comparison(
            store,
            registry,
            run_or_sweep_id,
            reps,
            f"no run or sweep '{run_or_sweep_id}' in {db_path}",
            invalid_threshold,
        )
        per_state = {v["label"]: scores(store, v["run_id"])[2] for v in result["variants"]}
        page = sweep_report(result, per_state)
    Path(output).write_text(page)
    errors.print(f"wrote {output}")


def metric_figures(record: dict[str, Any], summary: dict[str, Any], registry: Registry) -> list[tuple[str, Any]]:
    """Each of the run's metrics draws its own plots from its values per stratum."""
    try:
        loaded = validate_data(
            json.loads(record["scenario_json"]), record["scenario_yaml"], f"run {record['id']}", registry
        )
    except ScenarioError as exc:
        errors.print(f"no plots: the stored scenario no longer validates ({exc.render()})", style="yellow")
        return []
    figures = []
    for name, spec in loaded.scenario.metric_specs():
        info = registry.get("metric", spec.use)
        prefix = f"{name}."
        by_stratum = {
            stratum: {key.removeprefix(prefix): value for key, value in values.items() if key.startswith(prefix)}
            for stratum, values in summary["metrics_by_stratum"].items()
        }
        figures += info.build(spec.with_).plots(by_stratum)
    return figures
