"""A plugin's own failure names the plugin: which component, in which method, at which field of the scenario."""

import pytest
from conftest import EXAMPLE

import simrun.scaffold
from simrun import Enricher, Metric, Sampler, Simulator, StrictConfig
from simrun.engine import Engine, PlanError, build_pipeline, planned_total
from simrun.registry import load_registry
from simrun.scenario import ScenarioError, load_scenario
from simrun.store import Store

TOWNS = EXAMPLE / "towns.yaml"


class MissingFile(Sampler):
    name = "missing_file"

    class Config(StrictConfig):
        path: str = "nope.csv"

    def total(self):
        return len(open(self.config.path).readlines())


class Boom(Metric):
    name = "boom"

    def compute(self, run):
        raise RuntimeError("kaboom")


class Broken(Enricher):
    name = "broken"
    provides = frozenset({"mood"})

    def enrich(self, batch, context):
        raise KeyError("age")


class Bare(Simulator):
    name = "bare"


@pytest.fixture
def with_faulty():
    registry = load_registry(EXAMPLE)  # a registry of its own: the shared one is never changed
    for kind, cls in (("sampler", MissingFile), ("metric", Boom), ("enricher", Broken), ("simulator", Bare)):
        registry.add(kind, "faulty", "test", "", cls)
    return registry


def test_a_sampler_whose_total_fails_is_named_at_its_field_before_anything_runs(with_faulty):
    loaded = load_scenario(
        TOWNS, with_faulty, ["sampler={use: missing_file, with: {path: /no/such.csv}}", "enrichers=[]"]
    )
    with pytest.raises(PlanError) as caught:
        planned_total(build_pipeline(loaded, with_faulty), loaded)
    assert "sampler.with: sampler 'missing_file': total() failed: FileNotFoundError" in caught.value.render()


@pytest.mark.parametrize(
    "override,note",
    [("metrics={boom: {}}", "in metric 'boom' (compute)"), ("enrichers=[{use: broken}]", "in enricher 'broken'")],
)
def test_a_component_that_raises_during_a_run_is_named(with_faulty, tmp_path, override, note):
    loaded = load_scenario(TOWNS, with_faulty, [override])
    with pytest.raises(Exception) as caught:
        Engine(with_faulty, Store(tmp_path / "f.db")).run(loaded)
    assert any(note in n for n in caught.value.__notes__)


def test_the_cli_says_which_component_failed(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "simrun_example.py").write_text((EXAMPLE / "simrun_example.py").read_text())
    (plugins / "boom.py").write_text(
        "from simrun import Metric, hookimpl\n\n\nclass Boom(Metric):\n    name = 'boom'\n\n"
        "    def compute(self, run):\n        raise RuntimeError('kaboom')\n\n\n"
        "@hookimpl\ndef register_metrics(register):\n    register(Boom)\n"
    )
    from click.testing import CliRunner

    from simrun.cli import cli

    args = ["run", str(TOWNS), "--quiet", "--db", str(tmp_path / "b.db"), "--set", "metrics={boom: {}}"]
    result = CliRunner().invoke(cli, [*args, "--plugins-dir", str(plugins)])
    assert result.exit_code == 1 and "in metric 'boom' (compute): RuntimeError: kaboom" in result.output


def test_a_component_without_options_says_so(with_faulty):
    with pytest.raises(ScenarioError, match="simulator.with.first: unknown field .* It takes no options"):
        load_scenario(TOWNS, with_faulty, ["simulator={use: bare, with: {first: 0.7}}"])


def test_plugin_new_refuses_a_name_whose_package_is_installed(invoke, tmp_path, monkeypatch):
    monkeypatch.setattr(simrun.scaffold, "installed", lambda dist: dist == "simrun-kinds")
    result = invoke("plugin", "new", "metric", "kinds", "--dir", str(tmp_path))
    assert result.exit_code == 2 and "simrun-kinds (module simrun_kinds) is already installed" in result.output
    local = invoke("plugin", "new", "sampler", "towns", "--dir", str(tmp_path))
    assert "a sampler named 'towns' is already loaded from --plugins-dir" in local.output
    assert list(tmp_path.iterdir()) == []
