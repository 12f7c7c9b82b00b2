"""Scenario YAML as simrun reads it: bounded, strict, and with every field's line kept for error messages.

YAML 1.2 booleans (so options like Yes/No stay text), no duplicate keys, at
most 1 MiB of UTF-8, aliases expanding to at most 100,000 values and 64 levels
deep: an alias bomb or a deeply nested file is refused, never expanded.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

PathKey = tuple[str | int, ...]

MAX_SCENARIO_BYTES = 1 << 20  # a scenario is a page of YAML; past this it is not one
MAX_YAML_NODES = 100_000  # after expanding aliases: a "billion laughs" file is refused, not expanded
MAX_YAML_DEPTH = 64


class ScenarioLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (only true/false, so options like Yes/No stay text) and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        self.flatten_mapping(node)  # merge keys (<<: *base) first, as SafeLoader does
        seen: dict[tuple[str, Any], int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # SafeLoader refuses unhashable keys itself
            if (type(key).__name__, key) in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (first on line {seen[(type(key).__name__, key)]}): "
                    "the second would silently replace the first",
                    key_node.start_mark,
                )
            seen[(type(key).__name__, key)] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


ScenarioLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    ScenarioLoader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=ScenarioLoader)  # noqa: S506 - a SafeLoader subclass


def check_yaml_size(node: yaml.Node | None) -> None:
    """Refuse a document whose aliases expand past MAX_YAML_NODES nodes or that nests past MAX_YAML_DEPTH."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            raise yaml.YAMLError(f"nested more than {MAX_YAML_DEPTH} levels deep")
        if id(n) not in sizes:
            children = (
                [c for pair in n.value for c in pair]
                if isinstance(n, yaml.MappingNode)
                else (n.value if isinstance(n, yaml.SequenceNode) else [])
            )
            sizes[id(n)] = 1 + sum(size(c, depth + 1) for c in children)
            if sizes[id(n)] > MAX_YAML_NODES:
                raise yaml.YAMLError(
                    f"more than {MAX_YAML_NODES} values once its aliases are expanded (an alias bomb?)"
                )
        return sizes[id(n)]

    if node is not None:
        size(node, 0)


def line_index(node: yaml.Node, path: PathKey = (), index: dict | None = None) -> dict[PathKey, int]:
    """Map every field path in the YAML document to its 1-based line."""
    index = {} if index is None else index
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = path + (key.value,)
            index[child] = key.start_mark.line + 1
            line_index(value, child, index)
            index[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            line_index(item, path + (i,), index)
    return index


def load_bounded(text: str) -> Any:
    """A YAML value within the bounds (size of expansion, depth); anything else is a ``yaml.YAMLError``."""
    try:
        check_yaml_size(yaml.compose(text, Loader=ScenarioLoader))
        return load_yaml(text)
    except RecursionError:
        raise yaml.YAMLError(f"nested more than {MAX_YAML_DEPTH} levels deep") from None
