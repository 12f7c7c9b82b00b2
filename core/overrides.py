"""``--set PATH=VALUE``: a scenario's fields changed from the command line, and by ablations (``set_path``)."""

from __future__ import annotations

from typing import Any

import yaml

from .scenario_models import ScenarioError, ScenarioIssue
from .yaml_input import load_bounded


def set_path(data: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.0.c`` in nested scenario data, creating mappings as needed."""
    keys: list[str | int] = [int(k) if k.isdigit() else k for k in dotted.split(".")]
    target: Any = data
    for i, key in enumerate(keys[:-1]):
        if isinstance(target, list):
            target = target[key]  # type: ignore[index]
            continue
        if not isinstance(target.get(key), (dict, list)):
            target[key] = [] if isinstance(keys[i + 1], int) else {}
        target = target[key]
    target[keys[-1]] = value  # type: ignore[index]


def misfit(data: Any, dotted: str) -> str:
    """Where a dotted path leaves the data: the list it indexes past the end of, or with a name (``set_path``
    makes whatever mappings are missing, so only a list stops it)."""
    walked: list[str] = []
    for key in dotted.strip().split("."):
        if isinstance(data, list):
            if not key.isdigit() or int(key) >= len(data):
                size = f"a list of {len(data)}, indexed 0 to {len(data) - 1}" if data else "an empty list"
                return f": {'.'.join(walked)} is {size}"
            data = data[int(key)]
        elif isinstance(data, dict) and key in data:
            data = data[key]
        else:
            return ""
        walked.append(key)
    return ""


def apply_overrides(data: dict, overrides: list[str], source: str) -> list[str]:
    """Apply ``a.b.c=value`` overrides in place; return the paths they set."""
    paths = []
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        if not sep or not dotted:
            raise ScenarioError(
                source, [ScenarioIssue((), f"--set {item!r}: expected PATH=VALUE, e.g. sampler.with.per_state=5")]
            )
        raw = raw.strip()
        try:
            value = load_bounded(raw) if raw else ""
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ScenarioError(
                source,
                [
                    ScenarioIssue(
                        (), f"--set {item[:120]!r}: the value is not valid YAML ({problem}); quote it if it is text"
                    )
                ],
            ) from None
        try:
            set_path(data, dotted.strip(), value)
        except (IndexError, KeyError, TypeError, AttributeError):
            raise ScenarioError(
                source,
                [
                    ScenarioIssue(
                        (), f"--set {item!r}: '{dotted}' does not fit the scenario's structure{misfit(data, dotted)}"
                    )
                ],
            ) from None
        paths.append(dotted.strip())
    return paths
