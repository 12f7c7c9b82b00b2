"""Plugin loading: built-ins registered in code, third parties through entry points, a broken one left out in one
line.
"""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE

from simrun import __version__
from simrun.cli import cli
from simrun.registry import DEFAULT_PLUGINS, PluginError, load_registry


def fake_distribution(site, name: str, module: str, source: str) -> None:
    """An installed distribution with a 'simrun' entry point, as pip would leave it, on a folder put on PYTHONPATH."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[simrun]\n{name} = {module}\n")
    (site / f"{module}.py").write_text(source)


def simrun(site, *args, **env):
    return subprocess.run(
        [sys.executable, "-m", "simrun", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site), **env},
    )


GOOD = """
from simrun import hookimpl
from simrun.components import Metric

class Zero(Metric):
    name = "zero"

@hookimpl
def register_metrics(register):
    register(Zero)
"""


def test_built_ins_load_without_any_entry_point_metadata(monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    registry = load_registry()
    assert {c.package for c in registry.all()} == {"simrun"}
    assert {"census", "embedded", "election", "swap"} <= {c.name for c in registry.all()}
    assert len({c.plugin for c in registry.all()}) == len(DEFAULT_PLUGINS)


def test_a_broken_plugin_is_named_in_one_line_and_the_rest_works(tmp_path):
    fake_distribution(tmp_path, "brokenplug", "brokenplug_mod", "import no_such_module_anywhere\n")
    fake_distribution(tmp_path, "goodplug", "goodplug_mod", GOOD)
    listed = simrun(tmp_path, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "simrun: plugin brokenplug (brokenplug) failed to load and is left out: ModuleNotFoundError" in listed.stderr
    assert "Traceback" not in listed.stderr and listed.stderr.count("\n") == 1
    names = {(c["kind"], c["name"], c["package"]) for c in json.loads(listed.stdout)}
    assert ("metric", "zero", "goodplug") in names and ("simulator", "embedded", "simrun") in names
    runs = simrun(tmp_path, "runs", "--db", str(tmp_path / "none.db"))
    assert runs.returncode == 2 and "no run log" in runs.stderr  # the command itself still works


def test_simrun_load_plugins_chooses_the_third_party_plugins(tmp_path):
    fake_distribution(tmp_path, "goodplug", "goodplug_mod", GOOD)
    fake_distribution(tmp_path, "brokenplug", "brokenplug_mod", "raise RuntimeError('boom')\n")
    only_good = simrun(tmp_path, "plugins", "--json", SIMRUN_LOAD_PLUGINS="goodplug")
    assert only_good.returncode == 0 and only_good.stderr == ""
    assert "zero" in {c["name"] for c in json.loads(only_good.stdout)}
    none = simrun(tmp_path, "plugins", "--json", SIMRUN_LOAD_PLUGINS="")
    assert none.stderr == "" and {c["package"] for c in json.loads(none.stdout)} == {"simrun"}


def test_a_plugin_that_registers_something_invalid_is_left_out_in_one_line(tmp_path):
    fake_distribution(
        tmp_path,
        "badreg",
        "badreg_mod",
        "from simrun import hookimpl\n\n\n@hookimpl\ndef register_metrics(register):\n    register(int)\n",
    )
    listed = simrun(tmp_path, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "simrun: plugin badreg (badreg) failed to load and is left out: PluginError" in listed.stderr
    assert "Traceback" not in listed.stderr


def test_a_plugins_dir_component_is_used_instead_of_an_installed_one_of_its_name_with_a_note(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_census.py").write_text(
        (EXAMPLE / "simrun_example.py").read_text().replace('name = "towns"', 'name = "census"')
    )
    registry = load_registry(plugins)
    info = registry.get("sampler", "census")
    assert info.package == "local" and info.plugin.endswith("my_census.py")
    assert registry.notices == [
        f"sampler 'census' from --plugins-dir ({plugins / 'my_census.py'}) is used instead of the one installed "
        f"by simrun {__version__}"
    ]
    result = CliRunner().invoke(cli, ["plugins", "--plugins-dir", str(plugins)])
    assert result.exit_code == 0 and "note: sampler 'census' from --plugins-dir" in " ".join(result.output.split())


def test_one_name_twice_in_one_folder_is_still_an_error_naming_both(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for copy in ("a.py", "b.py"):
        (plugins / copy).write_text((EXAMPLE / "simrun_example.py").read_text())
    with pytest.raises(PluginError, match=r"registered twice: by .*a\.py and by .*b\.py"):
        load_registry(plugins)
