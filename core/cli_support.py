"""What every simrun command shares: one-line errors, the --db and --plugins-dir options, opening a scenario."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
from rich.text import Text

from .compare import compare
from .display import errors
from .engine import build_pipeline, planned_total
from .models import INVALID_THRESHOLD
from .redaction import redact
from .registry import PluginError, Registry, load_registry
from .scenario import LoadedScenario, ScenarioError, load_scenario
from .store import Store, StoreError
from .sweep import plan_sweep


def fail(message: str, code: int = 2) -> NoReturn:
    errors.print(Text.assemble(("error:", "bold red"), " ", redact(message)), soft_wrap=True)
    sys.exit(code)


def resume_command(run_id: str | None, db_path: str, registry: Registry) -> str:
    """The command that continues a run, with the plugins folder it was started with."""
    plugins = f" --plugins-dir {registry.plugins_dir}" if registry.plugins_dir else ""
    return f"simrun run --resume {run_id} --db {db_path}{plugins}"


def failed(exc: Exception, run_id: str | None, db_path: str, registry: Registry) -> NoReturn:
    """A run that stopped on an error from a plugin or a backend: one line, and how to go on
    (SIMRUN_DEBUG=1: the traceback).
    """
    if os.environ.get("SIMRUN_DEBUG"):
        raise exc
    where = " ".join([f"run {run_id} failed" if run_id else "failed", *getattr(exc, "__notes__", ())])
    resume = f"; fix the cause, then continue with: {resume_command(run_id, db_path, registry)}" if run_id else ""
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
        say(registry.notices)
        try:
            return fn(*args, registry=registry, **kwargs)
        except StoreError as exc:
            fail(str(exc))
        except BrokenPipeError:  # the reader of standard output stopped (simrun export RUN | head), as with any tool
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            sys.exit(128 + signal.SIGPIPE)
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
        planned_total(build_pipeline(loaded, registry), loaded)  # configs, the enricher plan, personas planned
    except ScenarioError as exc:
        fail("invalid scenario\n" + exc.render())
    say(loaded.notices)
    return loaded


def say(notices: list[str]) -> None:
    for notice in notices:
        errors.print(Text.assemble(("note:", "bold yellow"), " ", notice), soft_wrap=True)


def plan_variants(loaded: LoadedScenario, registry: Registry) -> list[tuple[str, LoadedScenario]]:
    """The sweep's variants, every one valid, or one line per problem; a note for each variant left out."""
    said = len(loaded.notices)
    try:
        variants = plan_sweep(loaded, registry)
    except ScenarioError as exc:
        fail("invalid sweep\n" + exc.render())
    say(loaded.notices[said:])
    return variants


def comparison(
    store: Store,
    registry: Registry,
    sweep_id: str,
    reps: int,
    not_found: str,
    invalid_threshold: float = INVALID_THRESHOLD,
) -> dict[str, Any]:
    """compare(), with its errors said to the user: a run's id given for a sweep's, plugins the sweep was run with
    that are not loaded here."""
    try:
        return compare(store, registry, sweep_id, reps=reps, invalid_threshold=invalid_threshold)
    except KeyError:
        try:
            store.runs.get(sweep_id)
        except KeyError:
            fail(not_found)
        fail(
            f"'{sweep_id}' is a run, not a sweep: `simrun show {sweep_id}` shows it; `simrun runs --json` gives each "
            "run's sweep_id"
        )
    except ScenarioError as exc:
        fail(f"sweep {sweep_id}: {not_loaded(exc)}")
    except ValueError as exc:
        fail(str(exc))


def not_loaded(exc: ScenarioError) -> str:
    """A stored scenario that no longer validates, in one line: usually a plugin it was run with is not loaded."""
    first = exc.issues[0].message if exc.issues else str(exc)
    return (
        f"its stored scenario does not validate here ({first}); if it was run with a plugin, load it the same way: "
        "--plugins-dir DIR, or install the plugin's package"
    )
