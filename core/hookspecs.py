"""The hooks a simrun plugin can implement.

Each ``register_*`` hook receives a ``register`` callback; call it once per
component class the plugin adds. One plugin module may add components of
several kinds. The lifecycle hooks let observers (progress, exporters) watch a
run without touching the engine; they must not change what they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .models import Answer, Persona, RunInfo

hookspec = pluggy.HookspecMarker("simrun")

Register = Callable[[type], None]


@hookspec
def register_samplers(register: Register) -> None:
    """Add sampler classes: they draw personas per stratum.

    A sampler subclasses ``simrun.components.Sampler`` and implements
    ``sample(rng, batch_size) -> Iterator[list[Persona]]``
    (docs/plugins.md documents every hook and base-class method).
    """


@hookspec
def register_enrichers(register: Register) -> None:
    """Add enricher classes: they add attributes to a batch of personas.

    An enricher subclasses ``simrun.components.Enricher``, declares the
    attributes it ``needs`` and ``provides``, and implements ``enrich(batch)``.
    The engine orders enrichers by those declarations.
    """


@hookspec
def register_simulators(register: Register) -> None:
    """Add simulator classes: language-model backends that answer questions.

    A simulator subclasses ``simrun.components.Simulator``: ``answer(prompts)``
    returns a distribution over each question's options, and ``generate``
    produces text for enrichers.
    """


@hookspec
def register_metrics(register: Register) -> None:
    """Add metric classes: they score a finished run, reading from the store."""


@hookspec
def register_ablations(register: Register) -> None:
    """Add ablation classes: they turn one scenario into labelled variants."""


@hookspec
def register_executors(register: Register) -> None:
    """Add executor classes: they decide where the simulator's calls run (in-process, on a Ray cluster, ...).

    An executor subclasses ``simrun.components.Executor`` and implements
    ``map(method, chunks, options)``, yielding each chunk's replies as they finish.
    """


@hookspec
def run_started(run: RunInfo) -> None:
    """Called once when a run (or a resumed run) begins work."""


@hookspec
def batch_done(run: RunInfo, personas: list[Persona], answers: Sequence[Answer]) -> None:
    """Called after each persona batch is simulated and committed to the store; each answer is made when read."""


@hookspec
def batch_resumed(run: RunInfo, personas: list[Persona]) -> None:
    """Called for each batch a resumed run finds already done (its answers are in the run log, not repeated here)."""


@hookspec
def replicas_changed(run: RunInfo, alive: int, started: int) -> None:
    """Called when a run's executor starts simulator replicas and whenever the number alive changes."""


@hookspec
def run_finished(run: RunInfo, metrics: dict[str, Any]) -> None:
    """Called once a run has been scored; ``metrics`` maps names to values."""
