"""The ``simrun`` command."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.table import Table
from rich.text import Text

from . import __version__
from .compare import compare
from .display import console, errors, print_comparison, print_run, run_summary
from .engine import Engine, PlanError, build_pipeline
from .models import INVALID_THRESHOLD
from .progress import progress_bar, watching
from .redaction import redact
from .registry import PluginError, Registry, load_registry
from .scenario import LoadedScenario, ScenarioError, load_scenario, scenario_schema, validate_data
from .store import Store, StoreError
from .sweep import plan_sweep, run_sweep
from .writers import FORMATS, RowWriter, format_for


def fail(message: str, code: int = 2) -> NoReturn:
    errors.print(Text.assemble(("error:", "bold red"), " ", redact(message)), soft_wrap=True)
    sys.exit(code)


def failed(exc: Exception, run_id: str | None, db_path: str) -> NoReturn:
    """A run that stopped on an error from a plugin or a backend: one line, and how to go on
    (SIMRUN_DEBUG=1: the traceback).
    """
    if os.environ.get("SIMRUN_DEBUG"):
        raise exc
    where = f"run {run_id} failed" if run_id else "failed"
    resume = f"; fix the cause, then continue with: simrun run --resume {run_id} --db {db_path}" if run_id else ""
    fail(f"{where}: {type(exc).__name__}: {exc}{resume} (SIMRUN_DEBUG=1 shows the traceback)", 1)


def with_plugins(fn: Callable) -> Callable:
    """--plugins-dir and the registry, and one line (no traceback) for a storage fault or an unwritable output."""

    @click.option(
        "--plugins-dir",
        type=click.Path(file_okay=False),
        help="Load every .py file in this folder as a plugin, without packaging it.",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, plugins_dir: str | None, **kwargs: Any) -> Any:
        try:
            registry = load_registry(plugins_dir)
        except PluginError as exc:
            fail(f"plugin: {exc}")
        try:
            return fn(*args, registry=registry, **kwargs)
        except StoreError as exc:
            fail(str(exc))
        except OSError as exc:  # an output file that cannot be written, a full disk
            fail(f"{exc.filename or 'writing'}: {exc.strerror or exc}")

    return wrapper


def common(fn: Callable) -> Callable:
    """--db and --plugins-dir: every command that reads or writes the run log."""
    return click.option(
        "--db",
        "db_path",
        default="simrun.db",
        show_default=True,
        type=click.Path(dir_okay=False),
        help="The SQLite run log.",
    )(with_plugins(fn))


overrides_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a scenario field, e.g. --set sampler.with.per_state=5 (repeatable; VALUE is YAML).",
)

invalid_threshold_option = click.option(
    "--invalid-threshold",
    default=INVALID_THRESHOLD,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Mark an enrichment step (e.g. an LLM tier) whose output was invalid for more than this share of personas.",
)


def open_scenario(path: str, registry: Registry, overrides: tuple[str, ...]) -> LoadedScenario:
    try:
        loaded = load_scenario(path, registry, list(overrides))
        build_pipeline(loaded, registry)  # config values and the enricher plan, before any work
        return loaded
    except ScenarioError as exc:
        fail("invalid scenario\n" + exc.render())


class ScenarioGroup(click.Group):
    """`simrun FILE.yaml` is `simrun run FILE.yaml`."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in self.commands and (args[0].endswith((".yaml", ".yml")) or Path(args[0]).is_file()):
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)


@click.group(cls=ScenarioGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="simrun")
def cli() -> None:
    """Simulate human populations with LLM personas.

    \b
    simrun scenarios/election.yaml        run a scenario (same as `simrun run`)
    simrun validate FILE.yaml             check a scenario without running it
    simrun runs / simrun show RUN_ID      what has been run, and its results
    simrun sweep FILE.yaml                run every variant of an ablation
    simrun compare SWEEP_ID               variants' metrics with bootstrap intervals
    simrun report ID -o report.html       a run or sweep as one HTML page with plots
    simrun plugins                        every installed component

    Every run is logged to SQLite (simrun.db by default): personas, prompts,
    answer distributions and metrics.
    """


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False), required=False)
@overrides_option
@click.option("--resume", "resume_id", metavar="RUN_ID", help="Continue a killed or failed run where it stopped.")
@click.option("--no-cache", is_flag=True, help="Ask the model again even where the cache has an answer.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no result tables.")
@common
def run(
    scenario: str | None,
    overrides: tuple[str, ...],
    resume_id: str | None,
    no_cache: bool,
    quiet: bool,
    db_path: str,
    registry: Registry,
) -> None:
    """Run SCENARIO: sample personas, ask the model, score the answers.

    With --resume RUN_ID the scenario is read back from the run log, and only
    unfinished batches are simulated; cached model answers are never asked for
    again.
    """
    store = Store(db_path)
    if resume_id:
        try:
            record = store.run(resume_id)
        except KeyError:
            fail(f"no run '{resume_id}' in {db_path}; `simrun runs` lists them")
        try:
            loaded = validate_data(
                json.loads(record["scenario_json"]), record["scenario_yaml"], f"run {resume_id}", registry
            )
        except ScenarioError as exc:
            fail("the stored scenario no longer validates\n" + exc.render())
    elif scenario is None:
        fail("give a scenario file, or --resume RUN_ID")
    else:
        loaded = open_scenario(scenario, registry, overrides)
    engine = Engine(registry, store, use_cache=not no_cache)
    try:
        description = f"simulating {len(loaded.scenario.questions)} question(s)"
        with watching(registry, not quiet and errors.is_terminal, description):
            run_id = engine.run(loaded, resume=resume_id)
    except PlanError as exc:
        fail(exc.render())
    except KeyboardInterrupt:
        fail(f"interrupted; continue with: simrun run --resume {engine.run_id} --db {db_path}", 130)
    except StoreError as exc:
        fail(
            f"{exc}"
            + (f"; then continue with: simrun run --resume {engine.run_id} --db {db_path}" if engine.run_id else "")
        )
    except OSError:
        raise
    except Exception as exc:
        failed(exc, engine.run_id, db_path)
    if not quiet:
        print_run(store, run_id)
    else:
        click.echo(run_id)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@overrides_option
@click.option("--no-cache", is_flag=True, help="Ask the model again even where the cache has an answer.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no result table.")
@common
def sweep(
    scenario: str, overrides: tuple[str, ...], no_cache: bool, quiet: bool, db_path: str, registry: Registry
) -> None:
    """Run every variant of SCENARIO's ablation block, each as a child run of one sweep.

    \b
    ablation: {use: attributes, with: {attributes: [age, education]}}   leave one out
    ablation: {use: swap, with: {field: enrichers, options: {...}}}     replace one part
    ablation: {use: grid, with: {fields: {seed: [1, 2, 3]}}}            every combination

    Variants that keep the sampler and enrichers reuse the baseline's personas;
    cached model answers are reused; running the same command again after a
    crash finishes the sweep without redoing finished variants.
    """
    loaded = open_scenario(scenario, registry, overrides)
    store = Store(db_path)
    engine = Engine(registry, store, use_cache=not no_cache)
    try:
        variants = plan_sweep(loaded, registry)
        if not quiet:
            errors.print(f"{len(variants)} variants: " + ", ".join(label for label, _ in variants))
        with watching(registry, not quiet and errors.is_terminal, f"sweep: {len(variants)} variants") as progress:
            sweep_id = run_sweep(loaded, registry, store, engine, progress)
    except ScenarioError as exc:
        fail("invalid sweep\n" + exc.render())
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to finish the sweep", 130)
    except (StoreError, OSError):
        raise
    except Exception as exc:
        failed(exc, engine.run_id, db_path)
    if quiet:
        click.echo(sweep_id)
        return
    print_comparison(compare(store, registry, sweep_id, reps=200), [])
    console.print(f"sweep {sweep_id}: `simrun compare {sweep_id}` for other metrics or --json")


def comparison(
    store: Store,
    registry: Registry,
    sweep_id: str,
    reps: int,
    not_found: str,
    invalid_threshold: float = INVALID_THRESHOLD,
) -> dict[str, Any]:
    """compare(), with its errors said to the user."""
    try:
        return compare(store, registry, sweep_id, reps=reps, invalid_threshold=invalid_threshold)
    except KeyError:
        fail(not_found)
    except ValueError as exc:
        fail(str(exc))


@cli.command(name="compare")
@click.argument("sweep_id")
@click.option(
    "--metric", "wanted", multiple=True, help="Only this metric (e.g. election or election.mae_points); repeatable."
)
@click.option("--reps", default=200, show_default=True, type=click.IntRange(20, 100000), help="Bootstrap resamples.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@invalid_threshold_option
@common
def compare_command(
    sweep_id: str,
    wanted: tuple[str, ...],
    reps: int,
    as_json: bool,
    invalid_threshold: float,
    db_path: str,
    registry: Registry,
) -> None:
    """Compare a sweep's variants: each metric with a bootstrap interval and its difference from the baseline.

    A variant whose enrichment step (e.g. an LLM tier) wrote nothing usable for
    more than --invalid-threshold of its personas is marked, with the share and
    the most common reason: its difference from the baseline measures the
    failure, not the step.
    """
    result = comparison(
        Store(db_path, read_only=True),
        registry,
        sweep_id,
        reps,
        f"no sweep '{sweep_id}' in {db_path}",
        invalid_threshold,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_comparison(result, list(wanted))


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@overrides_option
@with_plugins
def validate(scenario: str, overrides: tuple[str, ...], registry: Registry) -> None:
    """Check SCENARIO (fields, plugin names, their configs, enricher order) without running it."""
    loaded = open_scenario(scenario, registry, overrides)
    s = loaded.scenario
    console.print(
        Text("ok", "green"),
        f"{scenario}: {s.name} - sampler {s.sampler.use}, {len(s.enrichers)} enricher(s), "
        f"simulator {s.simulator.use}, {len(s.questions)} question(s), metrics: {', '.join(s.metrics) or 'none'}",
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_plugins
def plugins(as_json: bool, registry: Registry) -> None:
    """List every installed component: kind, name, source package and version."""
    rows = [
        {
            "kind": c.kind,
            "name": c.name,
            "package": c.package,
            "version": c.version,
            "plugin": c.plugin,
            "doc": (c.cls.__doc__ or "").strip().splitlines()[0] if c.cls.__doc__ else "",
        }
        for c in sorted(registry.all(), key=lambda c: (c.kind, c.name))
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("kind", "name", "package", "version", "what it does")
    for r in rows:
        table.add_row(r["kind"], r["name"], r["package"], r["version"], r["doc"])
    console.print(table)


@cli.command()
@with_plugins
def schema(registry: Registry) -> None:
    """Print the JSON Schema of scenario files, with every installed component's Config."""
    click.echo(json.dumps(scenario_schema(registry), indent=2))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common
def runs(as_json: bool, db_path: str, registry: Registry) -> None:
    """List the runs in the run log, newest first."""
    store = Store(db_path, read_only=True)
    rows = [
        {k: r[k] for k in ("id", "name", "status", "seed", "sweep_id", "variant", "created_at", "finished_at")}
        for r in store.runs()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(caption="simrun show ID for one run; --json for every field (seed, sweep, finished)")
    table.add_column("id", no_wrap=True)  # never cut: it is what show, export and --resume take
    table.add_column("name / variant", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    for r in rows:
        name = f"{r['name']} / {r['variant']}" if r["variant"] else r["name"]
        table.add_row(r["id"], name, r["status"], r["created_at"][:16].replace("T", " "))
    console.print(table)


@cli.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@invalid_threshold_option
@common
def show(run_id: str, as_json: bool, invalid_threshold: float, db_path: str, registry: Registry) -> None:
    """Show one run: components, counts, enrichment steps that wrote nothing usable, answer shares and metrics."""
    store = Store(db_path, read_only=True)
    try:
        summary = run_summary(store, run_id, invalid_threshold)
    except KeyError:
        fail(f"no run '{run_id}' in {db_path}; `simrun runs` lists them")
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        print_run(store, run_id, invalid_threshold)


@cli.command()
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
    """Export a run's answers, one row per persona x question, with persona attributes and option probabilities."""
    store = Store(db_path, read_only=True)
    try:
        store.run(run_id)
    except KeyError:
        fail(f"no run '{run_id}' in {db_path}; `simrun runs` lists them")
    personas = {p.id: p for p in store.personas(run_id)}
    try:
        with RowWriter(output, format_for(output, fmt)) as writer:
            batch: list[dict] = []
            for row in store.answer_rows(run_id):
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
                        **{f"p_{k}": v for k, v in json.loads(row["distribution"]).items()},
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


@cli.command(name="sample")
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
    engine = Engine(registry, Store(db_path))  # generated text is cached for later runs
    try:
        with RowWriter(output, format_for(output, fmt)) as writer, progress_bar(errors.is_terminal) as bar:
            task = bar.add_task("sampling personas", total=pipeline.sampler.total())
            for index, batch, _ in engine.batches(loaded, pipeline, None):
                batch = engine.enrich(batch, index, loaded, pipeline)
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
    finally:
        pipeline.simulator.close()
    errors.print(f"wrote {writer.rows} personas to {output}")


@cli.command()
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

    A run with the election metric gets simulated vs real share by state and
    the error per state; a sweep gets each metric per variant with bootstrap
    intervals and the per-state error of every variant. Enrichment steps that
    wrote nothing usable for more than --invalid-threshold of the personas are
    named at the top, and their variants marked.
    """
    from .report import run_report, sweep_report

    store = Store(db_path, read_only=True)
    try:
        summary = run_summary(store, run_or_sweep_id, invalid_threshold)
        page = run_report(store, summary, metric_figures(store.run(run_or_sweep_id), summary, registry))
    except KeyError:
        result = comparison(
            store,
            registry,
            run_or_sweep_id,
            reps,
            f"no run or sweep '{run_or_sweep_id}' in {db_path}",
            invalid_threshold,
        )
        per_state = {v["label"]: run_summary(store, v["run_id"])["metrics_by_stratum"] for v in result["variants"]}
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
        figures += info.cls(info.cls.Config.model_validate(spec.with_)).plots(by_stratum)
    return figures


def main() -> None:
    cli()
