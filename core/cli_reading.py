"""The commands that read: validate a scenario, list plugins and the schema, list runs, show one, browse the log,
read a survey's questions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from .cli_support import (
    common,
    fail,
    invalid_threshold_option,
    open_scenario,
    overrides_option,
    plan_variants,
    with_plugins,
)
from .display import console, print_run, run_summary, unclipped
from .instruments import FORMATS, Format, InstrumentError, read_instrument
from .models import OPTION_LABELS
from .registry import Registry
from .scenario import scenario_schema
from .store import Store


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@overrides_option
@with_plugins
def validate(scenario: str, overrides: tuple[str, ...], registry: Registry) -> None:
    """Check SCENARIO (fields, plugin names, their configs, enricher order) without running it."""
    loaded = open_scenario(scenario, registry, overrides)
    s = loaded.scenario
    variants = plan_variants(loaded, registry) if s.ablation is not None else []
    console.print(
        Text("ok", "green"),
        f"{scenario}: {s.name} - sampler {s.sampler.use}, {len(s.enrichers)} enricher(s), "
        f"simulator {s.simulator.use} (executor {s.executor.use}), {len(s.questions)} question(s), "
        f"metrics: {', '.join(s.metrics) or 'none'}",
    )
    if s.ablation is not None:
        seeds = f" x {s.ablation.replicates} seeds" if s.ablation.replicates > 1 else ""
        console.print(
            f"sweep: {len(variants) // s.ablation.replicates} variants{seeds} ({s.ablation.use}); `simrun compare` "
            "measures each variant's shift from the baseline with or without metrics"
        )


@click.command()
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
    table = unclipped(Table("kind", "name", "package", "version", "what it does"))
    for r in rows:
        table.add_row(r["kind"], r["name"], r["package"], r["version"], r["doc"])
    console.print(table)


@click.command()
@with_plugins
def schema(registry: Registry) -> None:
    """Print the JSON Schema of scenario files, with every installed component's Config."""
    click.echo(json.dumps(scenario_schema(registry), indent=2))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common
def runs(as_json: bool, db_path: str, registry: Registry) -> None:
    """List the runs in the run log, newest first."""
    store = Store(db_path, read_only=True)
    rows = [
        {k: r[k] for k in ("id", "name", "status", "seed", "sweep_id", "variant", "created_at", "finished_at")}
        for r in store.runs.all()
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


@click.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--prompt",
    "prompt_of",
    nargs=2,
    metavar="PERSONA QUESTION",
    help="Print the exact prompt persona PERSONA (its id) was asked QUESTION (its id) with, and nothing else.",
)
@click.option("--repeat", default=0, show_default=True, help="With --prompt: which repeat of the question.")
@invalid_threshold_option
@common
def show(
    run_id: str,
    as_json: bool,
    prompt_of: tuple[str, str] | None,
    repeat: int,
    invalid_threshold: float,
    db_path: str,
    registry: Registry,
) -> None:
    """Show one run: components, counts, enrichment steps that wrote nothing usable, answer shares and metrics.

    With --prompt PERSONA QUESTION, the exact prompt of that one answer: re-rendered from the persona and the
    run's prompt settings, and checked against the cache key it was asked under.
    """
    store = Store(db_path, read_only=True)
    if prompt_of:
        persona, question = prompt_of
        try:
            text, matches = store.prompts.get(run_id, int(persona), question, repeat)
        except (KeyError, ValueError):
            fail(
                f"run '{run_id}' in {db_path} has no answer of persona {persona} to question '{question}' "
                f"(repeat {repeat}); `simrun export {run_id}` lists them"
            )
        click.echo(text)
        if not matches:
            fail(
                "this re-rendering does not match the prompt this answer was asked with (its cache key differs): "
                "the run was logged by a simrun that renders prompts differently",
                1,
            )
        return
    try:
        summary = run_summary(store, run_id, invalid_threshold)
    except KeyError:
        try:
            store.sweeps.get(run_id)
        except KeyError:
            fail(f"no run '{run_id}' in {db_path}; `simrun runs` lists them")
        fail(f"'{run_id}' is a sweep, not a run: `simrun compare {run_id}` compares its variants")
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        print_run(summary)


@click.command()
@click.option("--port", default=8001, show_default=True, help="The port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The interface; 0.0.0.0 for every one.")
@common
def browse(port: int, host: str, db_path: str, registry: Registry) -> None:
    """Browse the run log in datasette (pip install -e '.[browse]'), read-only, until Ctrl-C.

    Every table and column is described; canned queries give a run's shares
    by stratum, one persona's attributes and its answers with the exact
    prompts, and one metric across runs and sweeps.
    """
    if importlib.util.find_spec("datasette") is None:
        fail("simrun browse needs datasette, which is not installed: pip install -e '.[browse]'")
    if any(c in Path(db_path).name for c in "#?%"):
        fail(f"datasette cannot open a file whose name has #, ? or % ({db_path}): rename it, or link it as another")
    from .browse import serve

    try:
        serve(db_path, host, port, lambda url: click.echo(f"browsing {db_path} at {url} (Ctrl-C to stop)", err=True))
    except OSError as exc:
        fail(str(exc))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from the file's name and header.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: the questions and the skipped.")
def questions(file: str, fmt: Format | None, as_json: bool) -> None:
    """Print the questions FILE would bring to a scenario, and every one it skips with its type and why.

    \b
    FILE is one of:
      a Qualtrics survey export (.qsf): single-answer multiple choice, and
        Likert matrices as one question per row sharing the scale;
      a Pew ATP / OpinionQA question file (columns key, question,
        references or options, option_ordinal; 'Refused' is not offered);
      a question bank CSV (columns id, text, options as "A | B | C" or a
        JSON list, never separated by commas; optionally ordinal: numbers,
        or auto; and truth: the real answer distribution over the options
        as shares or counts, one per option, "0.3 | 0.5 | 0.2" or a JSON
        list, for the wasserstein metric).
    Ordinals come from the order of the options; trailing "Don't know",
    "Refused" and alike have none. Use it in a scenario as
      questions: [{from: FILE, only: [ID, ...]}]
    """
    try:
        instrument = read_instrument(file, fmt)
    except InstrumentError as exc:
        fail(str(exc))
    if as_json:
        click.echo(instrument.model_dump_json(indent=2, exclude_none=True))
        return
    table = Table(title=f"{len(instrument.questions)} question(s) from {file} ({instrument.format})", show_lines=True)
    table.add_column("id", no_wrap=True)
    table.add_column("question")
    table.add_column("options")
    for q in instrument.questions:
        scale = q.ordinal or []
        options = [
            f"{OPTION_LABELS[i]}. {o}" + (f" [{scale[i]:g}]" if i < len(scale) else "") for i, o in enumerate(q.options)
        ]
        table.add_row(q.id, q.text, "\n".join(options))
    console.print(table)
    if instrument.skipped:
        skipped = Table(title=f"{len(instrument.skipped)} skipped")
        for column in ("id", "type", "why"):
            skipped.add_column(column)
        for s in instrument.skipped:
            skipped.add_row(s.id, s.type, s.reason)
        console.print(skipped)
