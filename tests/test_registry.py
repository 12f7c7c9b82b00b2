"""Plugin loading: built-ins registered in code, third parties through entry points, a broken one left out in one
line.
"""

import json
import os
import subprocess
import sys

from simrun.registry import DEFAULT_PLUGINS, load_registry


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
