"""Plugin discovery and the registry of named components.

The built-ins are listed in ``DEFAULT_PLUGINS`` and registered in code, so they
load from any checkout (as ``llm`` and ``datasette`` do); third-party plugins
come through the ``simrun`` entry-point group (``SIMRUN_LOAD_PLUGINS=a,b``
loads only those, empty none); ``--plugins-dir`` adds local ``.py`` files
without packaging them. A third-party plugin that fails to import is named in
one line and left out: commands that do not need it go on.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from . import __version__, hookspecs
from .components import KINDS, Component, Simulator, SimulatorSpec

DEFAULT_PLUGINS = (
    "simrun.plugins.samplers.census",
    "simrun.plugins.samplers.library",
    "simrun.plugins.enrichers.region",
    "simrun.plugins.enrichers.survey",
    "simrun.plugins.enrichers.llm_tiers",
    "simrun.plugins.enrichers.calibrate",
    "simrun.plugins.simulators.embedded",
    "simrun.plugins.simulators.litellm_api",
    "simrun.plugins.simulators.vllm_offline",
    "simrun.plugins.metrics.election",
    "simrun.plugins.metrics.opinion",
    "simrun.plugins.metrics.wasserstein",
    "simrun.plugins.metrics.stability",
    "simrun.plugins.metrics.fidelity",
    "simrun.plugins.metrics.persona_text",
    "simrun.plugins.metrics.coverage",
    "simrun.plugins.metrics.calibration",
    "simrun.plugins.ablations.attributes",
    "simrun.plugins.ablations.swap",
    "simrun.plugins.ablations.grid",
    "simrun.plugins.executors.local",
    "simrun.plugins.executors.ray_cluster",
)
ENTRY_POINTS = "simrun"

REGISTER_HOOKS = {
    "sampler": "register_samplers",
    "enricher": "register_enrichers",
    "simulator": "register_simulators",
    "metric": "register_metrics",
    "ablation": "register_ablations",
    "executor": "register_executors",
}


class PluginError(Exception):
    """A plugin that cannot be loaded or registers something invalid."""


class UnknownComponent(LookupError):
    def __init__(self, kind: str, name: str, known: list[str], broken: dict[str, str] | None = None):
        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        failed = "".join(f"; plugin {plugin} failed to load ({error})" for plugin, error in (broken or {}).items())
        where = (
            ""
            if close
            else "; a plugin in a folder of .py files loads with --plugins-dir FOLDER, an installed one through "
            "the 'simrun' entry point (simrun plugins lists what is loaded)"
        )
        super().__init__(
            f"no {kind} named '{name}'; {hint}installed: {', '.join(sorted(known)) or 'none'}{failed}{where}"
        )


@dataclass(frozen=True)
class ComponentInfo:
    kind: str
    name: str
    cls: type[Component]
    plugin: str
    package: str
    version: str

    def build(self, config: dict[str, Any]) -> Component:
        """The component made from a scenario's ``with:`` block (pydantic's ValidationError if it does not fit)."""
        return self.cls(self.cls.Config.model_validate(config))


@dataclass
class Registry:
    manager: pluggy.PluginManager
    components: dict[str, dict[str, ComponentInfo]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    broken: dict[str, str] = field(default_factory=dict)  # entry point -> why it failed to load
    plugins_dir: str | None = None  # the --plugins-dir it was loaded with, so replicas elsewhere load it too
    notices: list[str] = field(default_factory=list)  # worth a line before a command's output (overrides)

    def get(self, kind: str, name: str) -> ComponentInfo:
        try:
            return self.components[kind][name]
        except KeyError:
            raise UnknownComponent(kind, name, list(self.components[kind]), self.broken) from None

    def add(self, kind: str, plugin: str, package: str, version: str, cls: type) -> None:
        """What a plugin's ``register`` callback does: check the class, then file it under its kind and name."""
        base = KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"plugin {plugin} registered {cls!r} as a {kind}: not a {base.__name__} subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin}: {cls.__name__} has no name")
        unknown = set(getattr(cls, "non_semantic", ())) - set(cls.Config.model_fields)
        if unknown:
            listed = ", ".join(sorted(unknown))
            raise PluginError(f"plugin {plugin}: {cls.__name__}.non_semantic names no Config field: {listed}")
        info = ComponentInfo(kind, name, cls, plugin, package, version)
        existing = self.components[kind].get(name)
        if existing is not None:
            if (package == "local") == (existing.package == "local"):  # two files of one folder, or two packages
                raise PluginError(f"{kind} '{name}' registered twice: by {existing.plugin} and by {plugin}")
            local, installed = (info, existing) if package == "local" else (existing, info)
            self.notices.append(
                f"{kind} '{name}' from --plugins-dir ({local.plugin}) is used instead of the one installed by "
                f"{installed.package} {installed.version}".rstrip()
            )
            info = local
        self.components[kind][name] = info

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


def _load_entry_points(manager: pluggy.PluginManager, sources: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Third-party plugins (all, or those SIMRUN_LOAD_PLUGINS names); returns the ones that failed, with why."""
    wanted = os.environ.get("SIMRUN_LOAD_PLUGINS")
    chosen = None if wanted is None else {name.strip() for name in wanted.split(",") if name.strip()}
    broken = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        if entry.value in DEFAULT_PLUGINS or manager.has_plugin(entry.name):
            continue  # a built-in (an install from before they were registered in code) or a name already taken
        package = entry.dist.name if entry.dist else "?"
        if chosen is not None and entry.name not in chosen and package not in chosen:
            continue
        try:
            manager.register(entry.load(), name=entry.name)  # pluggy checks its hooks' signatures here
        except Exception as exc:  # noqa: BLE001 - any error in a third party's import
            leave_out(broken, entry.name, package, exc)
            continue
        sources[entry.name] = (package, entry.dist.version if entry.dist else "")
    return broken


def leave_out(broken: dict[str, str], plugin: str, package: str, exc: Exception) -> None:
    """A third-party plugin that cannot be used: said in one line, remembered for UnknownComponent."""
    broken[plugin] = f"{type(exc).__name__}: {exc}"
    print(f"simrun: plugin {plugin} ({package}) failed to load and is left out: {broken[plugin]}", file=sys.stderr)


def load_registry(plugins_dir: str | Path | None = None) -> Registry:
    manager = pluggy.PluginManager("simrun")
    manager.add_hookspecs(hookspecs)
    sources: dict[str, tuple[str, str]] = {}
    for module_name in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name.rsplit(".", 1)[-1])
        sources[module_name.rsplit(".", 1)[-1]] = ("simrun", __version__)
    broken = _load_entry_points(manager, sources)
    if plugins_dir is not None:
        directory = Path(plugins_dir)
        if not directory.is_dir():
            raise PluginError(f"--plugins-dir {directory}: not a directory")
        _load_dir(manager, directory)

    registry = Registry(
        manager, broken=broken, plugins_dir=None if plugins_dir is None else str(Path(plugins_dir).resolve())
    )
    for kind, hook_name in REGISTER_HOOKS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            package, version = sources.get(impl.plugin_name, ("local", ""))
            try:
                impl.function(register=functools.partial(registry.add, kind, impl.plugin_name, package, version))
            except Exception as exc:
                if package in ("simrun", "local"):  # a built-in, or a --plugins-dir file the user asked for: say so
                    raise
                leave_out(registry.broken, impl.plugin_name, package, exc)
    return registry


def build_simulator(spec: SimulatorSpec) -> Simulator:
    """The simulator a spec describes, built from this machine's plugins (what an executor's replica runs)."""
    return load_registry(spec.plugins_dir).get("simulator", spec.name).build(spec.config)
