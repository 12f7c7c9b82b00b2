import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from simrun.cli import cli
from simrun.components import Executor, Simulator, SimulatorSpec
from simrun.engine import Engine
from simrun.plugins.executors.local import LocalExecutor
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import Store
from simrun.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "example_plugin"
SCENARIOS = ROOT / "scenarios"
TOWNS_SWEEP = EXAMPLE / "towns_sweep.yaml"
NO_DATABASE = {"validate", "plugins", "plugin", "schema"}  # commands that never touch a run log take no --db

# vLLM (openai>=3) cannot share a venv with litellm (openai<3): its tests run in their own venv (README, .ci/run).
HAS_VLLM = importlib.util.find_spec("vllm") is not None
collect_ignore = [] if HAS_VLLM else ["vllm_backend"]


def pytest_report_header(config):
    return (
        None
        if HAS_VLLM
        else "tests/vllm_backend not collected here: vLLM is not installed (they run in the vLLM venv, see README)"
    )


def in_process(simulator: Simulator) -> Executor:
    """The local executor, started on ``simulator``: what the engine's calls go through."""
    executor = LocalExecutor()
    executor.start(simulator, SimulatorSpec(name=simulator.name))
    return executor


@pytest.fixture(scope="session")
def registry():
    return load_registry(EXAMPLE)


@pytest.fixture
def invoke(tmp_path):
    """Run the simrun CLI in-process with the example plugin and a fresh database."""

    def run(*args: str, db: Path | None = None):
        database = [] if args[0] in NO_DATABASE else ["--db", str(db or tmp_path / "simrun.db")]
        return CliRunner().invoke(cli, [*args, *database, "--plugins-dir", str(EXAMPLE)], catch_exceptions=False)

    return run


class PersonasView:
    """A run view holding only personas, for metrics that read personas alone."""

    def __init__(self, personas):
        self._personas = personas

    def personas(self):
        return iter(self._personas)


def sweep_towns(registry, db, *overrides):
    """The example plugin's sweep (towns, leave age or generation out), run into ``db``: (store, sweep id)."""
    store = Store(db)
    return store, run_sweep(
        load_scenario(TOWNS_SWEEP, registry, list(overrides)), registry, store, Engine(registry, store)
    )
