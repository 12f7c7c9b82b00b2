"""The ``simrun`` command: its group, and the commands that run things (run, sweep, compare); the commands that
read the log are in ``cli_reading``, those that write files in ``cli_files``."""

from __future__ import annotations

import difflib
import json
import tempfile
from pathlib import Path

import click
from rich.text import Text

from . import __version__
from .cli_files import export, report, sample_command
from .cli_reading import browse, plugins, questions, runs, schema, show, validate
from .cli_support import (
    common,
    comparison,
    fail,
    failed,
    invalid_threshold_option,
    open_scenario,
    overrides_option,
    plan_variants,
    resume_command,
)
from .display import console, errors, print_run, run_summary
from .engine import Engine, PlanError
from .progress import watching
from .registry import Registry
from .scaffold import plugin
from .scenario import LoadedScenario, ScenarioError, apply_overrides, validate_data
from .store import Store, StoreError
from .sweep import run_sweep
from .sweep_text import print_comparison, selected_by


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
    simrun plugin new KIND NAME           start a plugin package that runs

    Every run is logged to SQLite (simrun.db by default): personas, prompts,
    answer distributions and metrics.
    """


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False), required=False)
@overrides_option
@click.option("--resume", "resume_id", metavar="RUN_ID", help="Continue a killed or failed run where it stopped.")
@click.option(
    "--take-over",
    is_flag=True,
    help="With --resume: take the run over even though its owner, a process on another host, looks alive.",
)
@click.option("--no-cache", is_flag=True, help="Ask the model again even where the cache has an answer.")
@click.option(
    "--estimate",
    is_flag=True,
    help="Send nothing: print the calls, tokens and cost of the answers the cache does not have yet.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no result tables.")
@common
def run(
    scenario: str | None,
    overrides: tuple[str, ...],
    resume_id: str | None,
    take_over: bool,
    no_cache: bool,
    estimate: bool,
    quiet: bool,
    db_path: str,
    registry: Registry,
) -> None:
    """Run SCENARIO: sample personas, ask the model, score the answers.

    With --resume RUN_ID the scenario is read back from the run log, and only
    unfinished batches are simulated; cached model answers are never asked for
    again. A resumed run may move: --set executor.with.address=HOST:6379.
    """
    if estimate:
        if scenario is None:
            fail("--estimate needs a scenario file")
        estimate_run(open_scenario(scenario, registry, overrides), registry, db_path, no_cache)
        return
    if resume_id:
        if not Path(db_path).is_file():
            fail(f"no run log {db_path} to resume {resume_id} from; --db names the file the run was logged to")
        store = Store(db_path)
        try:
            record = store.runs.get(resume_id)
        except KeyError:
            fail(f"no run '{resume_id}' in {db_path}; `simrun runs` lists them")
        moved = [o for o in overrides if o.partition("=")[0].strip().split(".")[0] not in RESUMABLE]
        if moved:
            fail(
                f"--set {moved[0]}: a resumed run keeps its scenario; only executor (where the calls run) and "
                "baselines (scored after), which never change an answer, may be set"
            )
        data, source = json.loads(record["scenario_json"]), f"run {resume_id}"
        try:
            overridden = apply_overrides(data, list(overrides), source)
            loaded = validate_data(data, record["scenario_yaml"], source, registry, overridden=overridden)
        except ScenarioError as exc:
            fail("the stored scenario no longer validates\n" + exc.render())
    elif scenario is None:
        fail("give a scenario file, or --resume RUN_ID")
    else:
        loaded = open_scenario(scenario, registry, overrides)
        if loaded.scenario.ablation is not None:
            errors.print(
                Text.assemble(
                    ("note:", "bold yellow"),
                    f" {scenario} has an ablation block; `simrun run` runs the scenario as written, once: "
                    f"`simrun sweep {scenario}` runs every variant",
                ),
                soft_wrap=True,
            )
        store = Store(db_path)  # only now: a scenario that fails validation leaves no run log behind
    engine = Engine(registry, store, use_cache=not no_cache)
    try:
        description = f"simulating {len(loaded.scenario.questions)} question(s)"
        with watching(registry, not quiet and errors.is_terminal, description):
            run_id = engine.run(loaded, resume=resume_id, take_over=take_over)
    except PlanError as exc:
        fail(exc.render())
    except KeyboardInterrupt:
        fail(f"interrupted; continue with: {resume_command(engine.run_id, db_path, registry)}", 130)
    except StoreError as exc:
        fail(
            f"{exc}"
            + (f"; then continue with: {resume_command(engine.run_id, db_path, registry)}" if engine.run_id else "")
        )
    except OSError:
        raise
    except Exception as exc:
        failed(exc, engine.run_id, db_path, registry)
    if not quiet:
        print_run(run_summary(store, run_id))
    else:
        click.echo(run_id)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@overrides_option
@click.option(
    "--seeds",
    type=click.IntRange(1, 100),
    help="Run every variant under K seeds (the scenario's seed, seed + 1, ...): compare's intervals then include "
    "seed-to-seed variation. Same as replicates: K in the ablation block.",
    metavar="K",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Run up to N variants side by side, each with its own executor (on a Ray cluster, its own replicas: "
    "N times `replicas` must fit it); variants that reuse the baseline's personas start once it is done. This "
    "process stays the only writer of the run log. Pays when the model waits elsewhere (a cluster, an API); "
    "variants on this machine's own cores only compete for them.",
    metavar="N",
)
@click.option("--no-cache", is_flag=True, help="Ask the model again even where the cache has an answer.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no result table.")
@common
def sweep(
    scenario: str,
    overrides: tuple[str, ...],
    seeds: int | None,
    parallel: int,
    no_cache: bool,
    quiet: bool,
    db_path: str,
    registry: Registry,
) -> None:
    """Run every variant of SCENARIO's ablation block, each as a child run of one sweep.

    \b
    ablation: {use: attributes, with: {attributes: [age, education]}}   leave one out
    ablation: {use: swap, with: {field: enrichers, options: {...}}}     replace one part
    ablation: {use: grid, with: {fields: {seed: [1, 2, 3]}}}            every combination

    Variants that keep the sampler and enrichers reuse the baseline's personas;
    cached model answers are reused; running the same command again after a
    crash finishes the sweep without redoing finished variants.

    At the end it prints what `simrun compare SWEEP_ID` does: how far each
    variant moved answers from the baseline (shift), every metric with its
    interval, and what to distrust (few personas, position bias, off-option
    answers, personas the model ignores).
    """
    loaded = open_scenario(scenario, registry, overrides)
    if seeds is not None:
        if loaded.scenario.ablation is None:
            fail(f"--seeds {seeds}: {scenario} has no ablation block to run under several seeds; see `simrun sweep -h`")
        loaded = open_scenario(scenario, registry, (*overrides, f"ablation.replicates={seeds}"))
    try:
        variants = plan_variants(loaded, registry)  # every variant valid before the run log is created
    except Exception as exc:  # an ablation plugin's own fault, said in one line as during the sweep
        failed(exc, None, db_path, registry)
    store = Store(db_path)
    engine = Engine(registry, store, use_cache=not no_cache)
    try:
        if not quiet:
            labels = list(dict.fromkeys(label for label, _ in variants))
            runs_each = len(variants) // len(labels)
            errors.print(
                f"{len(labels)} variants"
                + (f" x {runs_each} seeds" if runs_each > 1 else "")
                + ": "
                + ", ".join(labels)
            )
        with watching(registry, not quiet and errors.is_terminal, f"sweep: {len(variants)} variants") as progress:
            sweep_id = run_sweep(loaded, registry, store, engine, progress, parallel)
    except ScenarioError as exc:
        fail("invalid sweep\n" + exc.render())
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to finish the sweep", 130)
    except (StoreError, OSError):
        raise
    except Exception as exc:
        failed(exc, engine.run_id, db_path, registry)
    if quiet:
        click.echo(sweep_id)
        return
    print_comparison(comparison(store, registry, sweep_id, 200, f"no sweep '{sweep_id}'"), [])
    console.print(f"sweep {sweep_id}: `simrun compare {sweep_id}` for other metrics or --json")


@cli.command(name="compare")
@click.argument("sweep_id")
@click.option(
    "--metric",
    "wanted",
    multiple=True,
    help="Only this metric (e.g. election), figure (election.mae_points; wasserstein.tvd for every question's, "
    "wasserstein.tvd[Q1] for one), or shift for the shift by question; repeatable.",
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
    """Compare a sweep's variants: how far each moved answers, each metric with an interval, what to distrust.

    \b
    shift      how far each variant's answer shares moved from the baseline's
               (points of answer share, 0 = same answers; the option that
               moved most), with a paired bootstrap interval and a noise
               floor: the shift swapping answers at random between the two
               gives; and how far each persona's own answer moved. Needs no
               truth: for a leave-one-out sweep, which attribute matters.
               --metric shift adds each question's shift.
    metrics    each with a 95% bootstrap interval (personas resampled within
               strata; with --seeds, seeds too) and its difference from the
               baseline, beside the same metric on the uniform and no-persona
               baselines.
    warnings   few personas per stratum, failed answers, position bias,
               off-option answers, personas the model ignores: what
               undermines the figures. docs/ablation.md reads one example.

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
    check_metrics(result, wanted)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_comparison(result, list(wanted))


def check_metrics(result: dict, wanted: tuple[str, ...]) -> None:
    """Every --metric names a metric or a figure of one the sweep has; a typo is an error with the nearest names."""
    known = {"shift"} | {k for v in result["variants"] for n in v["metrics"] for k in selected_by(n)}
    for name in wanted:
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
            fail(
                f"--metric {name}: the sweep has no such metric"
                + (f" (did you mean {' or '.join(near)}?)" if near else "")
                + f". It has: {', '.join(sorted(n for n in known if '.' not in n))} "
                "(and their figures, e.g. NAME.FIGURE; `simrun compare --json` lists them)"
            )


RESUMABLE = {"executor", "baselines"}  # what --set may change on --resume: never an answer


def estimate_run(loaded: LoadedScenario, registry: Registry, db_path: str, no_cache: bool) -> None:
    """What the run would ask, against the cache in ``db_path`` when there is one (none is created)."""
    with tempfile.TemporaryDirectory() as empty:
        store = Store(db_path, read_only=True) if Path(db_path).is_file() else Store(Path(empty) / "none.db")
        answers, cached, asked, baseline, written = Engine(registry, store, use_cache=not no_cache).estimate(loaded)
    if asked.cost_usd is None:
        why = asked.price_note or f"the {loaded.scenario.simulator.use} simulator reports no price"
        cost = f"no price known for this model: {why}"
    else:
        cost = f"${asked.cost_usd:,.4f}" + (f" ({asked.price_note})" if asked.price_note else "")
    to_send = (
        f"to send: {asked.calls:,} call(s)"
        + (f" ({baseline:,} of them for the no-persona baseline)" if baseline else "")
        + f", ~{asked.prompt_tokens:,} prompt and {asked.completion_tokens:,} completion tokens, {cost}"
        if asked.calls
        else "nothing to send"
    )
    click.echo(f"{answers:,} answer(s), {cached:,} in the cache; {to_send}")
    if asked.calls and asked.calls - baseline != answers - cached:
        click.echo(
            "calls are counted per distinct request: personas whose prompts are the same share one, each option "
            "order asked is one, and a simulator that samples makes one per sample"
        )
    if written.calls:
        click.echo(
            f"and for enrichers: up to {written.calls:,} call(s) (every retry counted), ~{written.prompt_tokens:,} "
            f"prompt and up to {written.completion_tokens:,} completion tokens, not priced; the answers above are "
            "counted without what enrichers would write into personas"
        )


for command in (validate, plugins, plugin, schema, runs, show, browse, questions, export, sample_command, report):
    cli.add_command(command)


def main() -> None:
    cli()
