"""Helpers for a plugin's tests: run a scenario into a run log of its own and read the run back.

    from simrun.testing import run_scenario

    def test_my_simulator(tmp_path):
        run = run_scenario("scenario.yaml", plugins_dir="plugins", db=tmp_path / "t.db", overrides=["seed=3"])
        assert run.metrics["mean_share.share"] > 0.5
        assert all(a.distribution["A"] > 0.5 for a in run.answers())

A scenario may also be given as a dict (what the YAML file would hold). The run goes through the same engine,
cache and run log as ``simrun run``, so what a test sees is what a user gets.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .display import scores
from .engine import Engine
from .models import Answer, Persona
from .registry import Registry, load_registry
from .scenario import LoadedScenario, load_scenario, parse_scenario
from .store import Store
from .views import RunView


class FinishedRun:
    """A run ``run_scenario`` made, read back from its run log."""

    def __init__(self, store: Store, run_id: str, loaded: LoadedScenario):
        self.store, self.id, self.loaded = store, run_id, loaded
        self.view = RunView(store, run_id, loaded.scenario.questions)
        overall, baselines, by_stratum = scores(store, run_id)
        self.metrics: dict[str, float] = overall  # METRIC.NAME -> the overall value, as `simrun show` prints it
        self.baselines: dict[str, dict[str, float]] = baselines  # baseline -> the same figures on its answers
        self.metrics_by_stratum: dict[str, dict[str, float]] = by_stratum

    @property
    def db(self) -> str:
        """The run log's path: give it to `simrun show ID --db PATH` to look at the run."""
        return self.store.path

    def shares(self, question_id: str) -> dict[str, dict[str, float]]:
        """Weighted option shares per stratum (``ALL`` for everyone)."""
        return self.view.shares(question_id)

    def personas(self) -> Iterator[Persona]:
        return self.view.personas()

    def answers(self) -> Iterator[Answer]:
        """The answers a metric's ``run.answers()`` gives: ``Answer``s with the persona's stratum and weight."""
        return self.view.answers()


def run_scenario(
    scenario: str | Path | dict[str, Any],
    *,
    plugins_dir: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    db: str | Path | None = None,
    registry: Registry | None = None,
) -> FinishedRun:
    """Run ``scenario`` (a file, or its contents as a dict) with the plugins of ``plugins_dir`` and those
    installed, each ``overrides`` item applied as ``--set`` would; log it to ``db`` (a new file in a temporary
    folder, removed with the returned run, when not given). An invalid scenario raises ``ScenarioError`` with
    the same messages ``simrun validate`` prints."""
    if isinstance(overrides, str):
        raise TypeError(f"overrides is a list of PATH=VALUE items, e.g. [{overrides!r}]")
    registry = registry or load_registry(plugins_dir)
    if isinstance(scenario, dict):
        loaded = parse_scenario(yaml.safe_dump(scenario, sort_keys=False), "<scenario>", registry, list(overrides))
    else:
        loaded = load_scenario(scenario, registry, list(overrides))
    folder = None
    if db is None:
        folder = tempfile.TemporaryDirectory(prefix="simrun-test-")
        db = Path(folder.name) / "simrun.db"
    store = Store(db)
    run = FinishedRun(store, Engine(registry, store).run(loaded), loaded)
    if folder is not None:  # the log goes with the run: its connection closed, then its folder removed
        weakref.finalize(run, lambda: (store.db.conn.close(), folder.cleanup()))
    return run
