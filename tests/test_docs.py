"""docs/plugins.md is the plugin contract: a hook, base-class method or public name left out of it fails here;
docs/architecture.md is the map of the code, checked against it."""

import inspect
import json
import re
from contextlib import closing

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, ROOT

import simrun
from simrun import hookspecs
from simrun.cli import cli
from simrun.components import KINDS, Component
from simrun.store import Store, table_names

DOC = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "simrun_spec")]
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, re.S)


def example(marker: str) -> str:
    """The docs' python block that holds ``marker``."""
    return next(block for block in BLOCKS if marker in block)


def share_with_example(tmp_path, marker: str, *overrides: str) -> float:
    """``mean_share.share`` of the example plugin's towns run with the docs' example plugin (the block holding
    ``marker``) in the plugins folder beside it, each override given as --set; all runs of a test share one log."""
    plugins = tmp_path / "plugins"
    if not plugins.is_dir():
        plugins.mkdir()
        (plugins / "docs_example.py").write_text(example(marker))
        (plugins / "simrun_example.py").write_text((EXAMPLE / "simrun_example.py").read_text())  # towns, mean_share
    common = ["--db", str(tmp_path / "d.db"), "--plugins-dir", str(plugins)]
    sets = [item for override in overrides for item in ("--set", override)]
    result = CliRunner().invoke(cli, ["run", str(EXAMPLE / "towns.yaml"), "--quiet", *sets, *common])
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(cli, ["show", result.output.strip(), "--json", *common], catch_exceptions=False)
    return json.loads(shown.output)["metrics"]["mean_share.share"]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section(hook):
    assert f"### `{hook}`" in DOC


@pytest.mark.parametrize("name", simrun.__all__)
def test_every_public_name_is_documented(name):
    assert f"`{name}`" in DOC


@pytest.mark.parametrize("cls", [Component, *KINDS.values()], ids=lambda c: c.__name__)
def test_every_base_class_member_is_documented(cls):
    assert f"### `{cls.__name__}`" in DOC
    own = [name for name in vars(cls) if not name.startswith("_") and name not in ("kind", "Config")]
    assert [name for name in own if f"`{name}" not in DOC] == []


def test_the_simulator_example_runs_and_caches_by_its_option(tmp_path):
    shares = [
        share_with_example(tmp_path, "class Echo(Simulator)", "simulator.use=echo", f"simulator.with.first={first}")
        for first in ("0.8", "0.3")
    ]
    assert shares == [pytest.approx(0.8), pytest.approx(0.3)]  # the second run is not served the first one's answers


def test_the_architecture_map_names_real_modules_every_stage_and_every_table(tmp_path):
    """docs/architecture.md is a newcomer's map: each path it names exists, each module of the engine and the run
    log is on it, and so is each table a run log has."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = {p.rstrip(".") for p in re.findall(r"`((?:core|plugins|tests|docs)/[\w./-]+)`", text)}
    named |= {p for p in re.findall(r"(?:core|plugins)/[\w/]+\.py", text)}
    assert [p for p in sorted(named) if not (ROOT / p).exists()] == []
    modules = [
        f"core/{package}/{f.name}" for package in ("engine", "store") for f in (ROOT / "core" / package).glob("*.py")
    ]
    assert [m for m in sorted(modules) if m not in named] == []
    with closing(Store(tmp_path / "new.db").db.conn) as conn:
        tables = table_names(conn)
    assert [t for t in sorted(tables) if f"`{t}`" not in text] == []


def test_the_rule_based_simulator_example_reads_the_persona_whatever_the_prompt_style(tmp_path):
    def share(*overrides: str) -> float:
        return share_with_example(tmp_path, "class AgeRule(", "simulator.use=age_rule", *overrides)

    table, first_person = share(), share("prompt.style=first_person")
    assert table == pytest.approx(first_person) and table not in (pytest.approx(0.5), pytest.approx(0.1))
    assert share("prompt.exclude=[age]") == pytest.approx(0.5)  # what the prompt leaves out, the simulator cannot see


def test_the_plugin_test_example_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its paths are its own file's, wherever the tests run from
    namespace: dict = {"__file__": str(ROOT / "tests" / "test_plugin_example.py")}
    exec(compile(example("run_scenario("), "docs/plugins.md", "exec"), namespace)
    namespace["test_towns_answers_put_the_bias_on_the_first_option"](tmp_path)


def test_a_system_template_without_the_persona_gives_the_simulator_no_attributes(tmp_path):
    """What the prompt does not show, neither its cache key nor its attributes hold: personas alike in text are
    alike to a rule-based simulator too (else the first persona's answer would be served to all)."""
    overrides = ("simulator.use=age_rule", "prompt.system=You are answering a survey.")
    assert share_with_example(tmp_path, "class AgeRule(", *overrides) == pytest.approx(0.5)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.strip().splitlines()[0][:40])
def test_every_python_block_of_the_plugin_docs_runs_with_the_public_api(block):
    """Each snippet runs as written given `from simrun import *` (a hook's signature, a class, a whole plugin),
    so a name the docs use that simrun lacks, or a typo in an example, fails here."""
    namespace = {name: getattr(simrun, name) for name in simrun.__all__}
    namespace["__file__"] = str(ROOT / "tests" / "test_plugin_example.py")  # the testing example's own file
    exec(compile(block, "docs/plugins.md", "exec"), namespace)
