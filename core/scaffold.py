"""``simrun plugin new KIND NAME``: a plugin package that installs and passes its own test as written, so an author
starts from something that runs and changes it, rather than from a blank file and the docs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path
from string import Template

import click

from .cli_support import fail, with_plugins
from .components import KINDS
from .registry import REGISTER_HOOKS, Registry
from .scaffold_kinds import KINDS as TEMPLATES

NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

PYPROJECT = """[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A simrun $kind: $name"
requires-python = ">=3.11"
dependencies = ["simrun"]

[project.optional-dependencies]
test = ["pytest"]

[project.entry-points.simrun]
$name = "$module"

[tool.setuptools]
py-modules = ["$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

README = """# $dist

A simrun $kind, `$name`, made by `simrun plugin new $kind $name`.

Install it beside simrun (the environment simrun runs in), then run its test:

```
pip install -e '.[test]'
python -m pytest
```

- `$module.py` holds the $kind and the `$hook` hook that registers it. simrun finds it through the `simrun`
  entry point in `pyproject.toml`: `simrun plugins` lists it once installed.
- `tests/scenario.yaml` is a small scenario that uses it: `simrun tests/scenario.yaml` runs it, `simrun show`
  shows the run. `tests/test_$module.py` runs it with `simrun.testing.run_scenario` and asserts on what came back.

Installed with `pip install -e`, an edit takes effect at the next run. A simulator's cached answers follow its
source: edit its rules and its next run asks again. simrun's docs/plugins.md describes every hook and component.
"""

MODULE = '''"""$doc"""

$imports


$component

@hookimpl
def $hook(register):
    register($cls)
'''


def installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def class_name(kind: str, name: str) -> str:
    """``first_share`` -> ``FirstShareMetric``; a name that ends with its kind keeps it once."""
    camel = "".join(part.capitalize() for part in name.split("_") if part)
    return camel if camel.endswith(kind.capitalize()) else camel + kind.capitalize()


def scaffold(kind: str, name: str, parent: Path) -> Path:
    """Write the package for a ``kind`` named ``name`` into a new folder under ``parent``; return the folder."""
    if kind not in TEMPLATES:
        raise ValueError(f"KIND: no plugin kind '{kind}'; the kinds are {', '.join(TEMPLATES)}")
    if not NAME.match(name):
        raise ValueError(f"NAME: '{name}' is not a component name: lowercase letters, digits and _, from a letter")
    template = TEMPLATES[kind]
    dist = "simrun-" + name.replace("_", "-")
    folder = parent / dist
    if folder.exists():
        raise FileExistsError(f"{folder} already exists: pick another NAME or --dir")
    fields = {
        "kind": kind,
        "name": name,
        "dist": dist,
        "module": f"simrun_{name}",
        "cls": class_name(kind, name),
        "hook": REGISTER_HOOKS[kind],
    }

    def fill(text: str) -> str:
        return Template(text).substitute(fields)

    module = {  # filled first: a value's own text is never read for $ fields
        "doc": f"{dist}: a simrun {kind}. {KINDS[kind].__doc__}",
        "imports": fill(template.imports).rstrip("\n"),
        "component": fill(template.component).rstrip("\n") + "\n",
    }
    files = {
        "pyproject.toml": fill(PYPROJECT),
        "README.md": fill(README),
        f"simrun_{name}.py": Template(MODULE).substitute({**fields, **module}),
        "tests/scenario.yaml": f"name: {name}-test\nseed: 1\n" + fill(template.scenario),
        f"tests/test_simrun_{name}.py": fill(template.test),
    }
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    return folder


@click.group()
def plugin() -> None:
    """Start a plugin of your own: `simrun plugin new KIND NAME`."""


@plugin.command(name="new")
@click.argument("kind", type=click.Choice(list(TEMPLATES)))
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where the package's folder (simrun-NAME) is made.",
)
@with_plugins
def new(kind: str, name: str, parent: Path, registry: Registry) -> None:
    """Write a plugin package for a KIND named NAME: pyproject.toml with the entry point, the component (a small
    one that works), a scenario that uses it, a test, and a README.

    \b
    simrun plugin new metric first_share
    cd simrun-first-share && pip install -e '.[test]' && python -m pytest
    """
    if name in registry.components[kind]:
        taken = registry.components[kind][name]
        where = "loaded from --plugins-dir" if taken.package == "local" else f"installed ({taken.package})"
        fail(f"NAME: a {kind} named '{name}' is already {where}: pick another name")
    dist, module = "simrun-" + name.replace("_", "-"), f"simrun_{name}"
    if installed(dist) or importlib.util.find_spec(module) is not None:
        fail(f"NAME: {dist} (module {module}) is already installed: a new one would replace it; pick another name")
    try:
        folder = scaffold(kind, name, parent)
    except (ValueError, FileExistsError) as exc:
        fail(str(exc))
    article = "an" if kind[0] in "aeiou" else "a"
    click.echo(f"wrote {folder}: {article} {kind} named '{name}'")
    click.echo(f"next: cd {folder} && pip install -e '.[test]' && python -m pytest")
