"""`simrun plugin new KIND NAME`: a package per kind that pip installs and whose own test passes as written."""

import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

from simrun.registry import load_registry
from simrun.scaffold_kinds import KINDS
from simrun.scenario import load_scenario


def test_every_kind_installs_with_pip_and_passes_its_own_tests(tmp_path, invoke):
    """What the docs tell an author to do: `pip install -e .` then `python -m pytest`, in an environment that
    has simrun (a fresh venv that sees this one's packages, so nothing is installed here). The build uses this
    environment's setuptools and wheel (no download); stdlib distutils, as the fresh venv has no shim of its own."""
    for kind in KINDS:
        result = invoke("plugin", "new", kind, f"my_{kind}", "--dir", str(tmp_path))
        assert result.exit_code == 0, result.output
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    child = env / "bin" / "python"
    site = subprocess.run(
        [child, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    (Path(site) / "simrun-parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    packages = [arg for kind in KINDS for arg in ("-e", str(tmp_path / f"simrun-my-{kind}"))]
    offline = {**os.environ, "SETUPTOOLS_USE_DISTUTILS": "stdlib"}
    install = subprocess.run(
        [child, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", *packages],
        capture_output=True,
        text=True,
        env=offline,
    )
    assert install.returncode == 0, install.stderr
    listed = subprocess.run([child, "-m", "simrun", "plugins"], capture_output=True, text=True)
    assert all(f"my_{kind}" in listed.stdout for kind in KINDS), listed.stdout + listed.stderr
    for kind in KINDS:  # each package's tests, from its own folder, as its README says
        folder = tmp_path / f"simrun-my-{kind}"
        tests = subprocess.run(
            [child, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=folder, capture_output=True, text=True
        )
        assert tests.returncode == 0, f"{kind}:\n{tests.stdout[-3000:]}{tests.stderr[-2000:]}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_s_component_loads_and_its_scenario_validates(kind, tmp_path, invoke):
    assert invoke("plugin", "new", kind, "shiny", "--dir", str(tmp_path)).exit_code == 0
    folder = tmp_path / "simrun-shiny"
    registry = load_registry(folder)  # the module sits at the package's top: --plugins-dir loads it uninstalled
    assert registry.get(kind, "shiny").plugin.endswith("simrun_shiny.py")
    data = yaml.safe_load((folder / "tests" / "scenario.yaml").read_text())
    assert load_scenario(folder / "tests" / "scenario.yaml", registry).scenario.name == data["name"]
    compile((folder / "tests" / "test_simrun_shiny.py").read_text(), "test", "exec")


def test_bad_kinds_names_and_folders_are_said(tmp_path, invoke):
    wrong_kind = invoke("plugin", "new", "metrics", "x", "--dir", str(tmp_path))
    assert wrong_kind.exit_code == 2 and "'metrics' is not one of" in wrong_kind.output
    for name in ("First-Share", "1st", "a b", "[x]"):
        result = invoke("plugin", "new", "metric", name, "--dir", str(tmp_path))
        assert result.exit_code == 2 and f"NAME: '{name}' is not a component name" in result.output
    taken = invoke("plugin", "new", "simulator", "embedded", "--dir", str(tmp_path))
    assert taken.exit_code == 2 and "a simulator named 'embedded' is already installed (simrun)" in taken.output
    assert invoke("plugin", "new", "metric", "twice", "--dir", str(tmp_path)).exit_code == 0
    again = invoke("plugin", "new", "enricher", "twice", "--dir", str(tmp_path))
    assert again.exit_code == 2 and "simrun-twice already exists" in again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["simrun-twice"]
