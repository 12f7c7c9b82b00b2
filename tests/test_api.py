"""``import simrun`` is the whole plugin API: every plugin, built-in ones included, imports from it and nothing else in
simrun.
"""

import ast
from pathlib import Path

import simrun

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


def simrun_imports(path: Path) -> list[str]:
    """Every module a file imports that is simrun or under it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "simrun":
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "simrun"]
    return found


def test_plugins_import_only_the_public_namespace():
    offenders = {
        str(p.relative_to(PLUGINS)): [m for m in simrun_imports(p) if m != "simrun"] for p in PLUGINS.rglob("*.py")
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_every_public_name_exists_and_is_listed_once():
    assert len(simrun.__all__) == len(set(simrun.__all__))
    assert [name for name in simrun.__all__ if not hasattr(simrun, name)] == []
