"""Plugin discovery and the registry of named components.

Every plugin, built-in or not, is found through the ``simrun`` entry-point
group; ``--plugins-dir`` adds local ``.py`` files without packaging them.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from . import hookspecs
from .components import KINDS, Component

REGISTER_HOOKS = {
    "sampler": "register_samplers",
    "enricher": "register_enrichers",
    "simulator": "register_simulators",
    "metric": "register_metrics",
    "ablation": "register_ablations",
}


class PluginError(Exception):
    """A plugin that cannot be loaded or registers something invalid."""


class UnknownComponent(LookupError):
    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        super().__init__(
            f"no {kind} named '{name}'; {hint}installed: {', '.join(sorted(known)) or 'none'}"
        )


@dataclass(frozen=True)
class ComponentInfo:
    kind: str
    name: str
    cls: type[Component]
    plugin: str
    package: str
    version: str


@dataclass
class Registry:
    manager: pluggy.PluginManager
    components: dict[str, dict[str, ComponentInfo]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def get(self, kind: str, name: str) -> ComponentInfo:
        try:
            return self.components[kind][name]
        except KeyError:
            raise UnknownComponent(kind, name, list(self.components[kind])) from None

    def all(self) -> list[ComponentInfo]:
        return [info for by_name in self.components.values() for info in by_name.values()]


def _load_dir(manager: pluggy.PluginManager, directory: Path) -> None:
    for path in sorted(directory.glob("*.py")):
        module_name = f"simrun_local_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"cannot import plugin file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise PluginError(f"{path}: {type(exc).__name__}: {exc}") from exc
        manager.register(module, name=str(path))


def load_registry(plugins_dir: str | Path | None = None) -> Registry:
    manager = pluggy.PluginManager("simrun")
    manager.add_hookspecs(hookspecs)
    try:
        manager.load_setuptools_entrypoints("simrun")
    except Exception as exc:
        raise PluginError(f"an installed plugin (entry-point group 'simrun') failed to load: {type(exc).__name__}: {exc}") from exc
    if plugins_dir is not None:
        directory = Path(plugins_dir)
        if not directory.is_dir():
            raise PluginError(f"--plugins-dir {directory}: not a directory")
        _load_dir(manager, directory)

    sources = {
        manager.get_name(plugin): (dist.project_name, dist.version)
        for plugin, dist in manager.list_plugin_distinfo()
    }
    registry = Registry(manager)
    for kind, hook_name in REGISTER_HOOKS.items():
        base = KINDS[kind]
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            package, version = sources.get(impl.plugin_name, ("local", ""))

            def register(cls: type, _plugin: str = impl.plugin_name) -> None:
                if not (isinstance(cls, type) and issubclass(cls, base)):
                    raise PluginError(f"plugin {_plugin} registered {cls!r} as a {kind}: not a {base.__name__} subclass")
                name = getattr(cls, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {_plugin}: {cls.__name__} has no name")
                unknown = set(getattr(cls, "non_semantic", ())) - set(cls.Config.model_fields)
                if unknown:
                    raise PluginError(f"plugin {_plugin}: {cls.__name__}.non_semantic names no Config field: {', '.join(sorted(unknown))}")
                if name in registry.components[kind]:
                    other = registry.components[kind][name].plugin
                    raise PluginError(f"{kind} '{name}' registered twice: by {other} and by {_plugin}")
                registry.components[kind][name] = ComponentInfo(
                    kind, name, cls, _plugin, package, version
                )

            impl.function(register=register)
    return registry
