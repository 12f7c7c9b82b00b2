"""The README's commands and plugin example stay true."""

import re

import numpy as np
from conftest import ROOT

from simrun.registry import load_registry

README = (ROOT / "README.md").read_text()


def test_readme_plugin_example_loads_and_samples(tmp_path):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    (tmp_path / "towns_readme.py").write_text(code)
    registry = load_registry(tmp_path)
    info = registry.get("sampler", "towns")
    assert info.package == "local"
    sampler = info.cls(info.cls.Config(per_town=3))
    personas = [p for batch in sampler.sample(np.random.default_rng(0), 4) for p in batch]
    assert len(personas) == sampler.total() == 6
    assert [p.id for p in personas] == list(range(6))


def test_readme_commands_match_ci():
    ci = (ROOT / ".ci" / "run").read_text()
    install = re.search(r"```bash\n(python3 -m venv.*?)\n", README).group(1)
    tests = re.search(r"Run the tests:\n\n```bash\n(.*?)\n```", README).group(1)
    assert install in ci and tests in ci
    assert "simrun scenarios/election.yaml" in README
