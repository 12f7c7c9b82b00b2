"""Base classes for the six kinds of component a plugin can register.

A component is a class with a ``name``, a pydantic ``Config`` that validates
its ``with:`` block in a scenario, and the methods of its kind. Work is
batch-first: every method takes and returns lists.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .models import Answer, ModelAnswer, Persona, Prompt, Question
from .plugin_source import plugin_source


class StrictConfig(BaseModel):
    """Config base: an unknown key in a ``with:`` block is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Problem(NamedTuple):
    """What a component's config gets wrong about its scenario: ``field`` (dotted, in its block; "" for the block) and
    why.
    """

    field: str
    message: str


class CheckContext(BaseModel):
    """What a component's ``check`` may read: the whole scenario, and the strata the sampler will produce."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    scenario: Any  # simrun.scenario.Scenario, its questions including those metrics bring
    strata: frozenset[str] | None = None  # None: the sampler cannot say before sampling
    registry: Any = None  # simrun.registry.Registry: the installed components, for sampler()

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.scenario.questions if q.id == question_id), None)

    def provided(self) -> frozenset[str] | None:
        """Every attribute the scenario's sampler and enrichers declare they provide; None when one declares
        nothing (a sampler whose columns are only known from its file), so nothing can be said to be missing."""
        specs = [("sampler", self.scenario.sampler), *(("enricher", e) for e in self.scenario.enrichers)]
        out: set[str] = set()
        for kind, spec in specs:
            try:
                declared = self.registry.get(kind, spec.use).build(spec.with_).declared("provides")
            except (LookupError, ValidationError, TypeError, ValueError, OSError):
                return None  # its own check reports what is wrong with it
            if kind == "sampler" and not declared:
                return None
            out |= declared
        return frozenset(out)

    def sampler(self, use: str, config: dict[str, Any]) -> Sampler:
        """The installed sampler ``use`` built from ``config`` (a component that names another, such as the
        coverage metric's reference population); ValueError with what is installed, or what the config lacks."""
        try:
            info = self.registry.get("sampler", use)
        except LookupError as exc:
            raise ValueError(str(exc)) from None
        try:
            return info.build(config)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise ValueError(f"sampler {use}: {where + ': ' if where else ''}{error['msg']}") from None


class Component:
    kind: ClassVar[str]
    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]] = StrictConfig

    def __init__(self, config: BaseModel | None = None):
        self.config = config if config is not None else self.Config()

    def declared(self, what: str) -> frozenset[str]:
        """``provides``, ``needs`` or ``uses`` as a set of attribute names, declared either way: a (frozen)set
        attribute or a method returning one. Anything else is a TypeError that names the component."""
        value = getattr(self, what, frozenset())
        if callable(value):
            value = value()
        if isinstance(value, (set, frozenset, list, tuple)) and all(isinstance(v, str) for v in value):
            return frozenset(value)
        raise TypeError(
            f"{self.kind} '{self.name}': {what} must be a set of attribute names (or a method returning one), "
            f"not {type(value).__name__}"
        )

    @classmethod
    def check(cls, config: BaseModel, context: CheckContext) -> list[Problem]:
        """Problems that only the whole scenario shows (a question or option that does not exist, a file
        that shares no stratum with the sampler), found by ``validate`` and before a run asks anything."""
        return []


def batched(personas: Iterable[Persona], batch_size: int) -> Iterator[list[Persona]]:
    """Group a stream of personas into batches of ``batch_size`` (the last may be smaller).

    Automatic garbage collection pauses while a batch is built: personas hold no reference cycles, and a
    collection then would only rescan every object already alive (with pandas imported, 1,000,000 census
    personas took 13.5 s instead of 10.3 s). Whatever the batch's construction leaves is collected after.
    """
    stream = iter(personas)
    while True:
        enabled = gc.isenabled()
        gc.disable()
        try:
            batch = list(itertools.islice(stream, batch_size))
        finally:
            if enabled:
                gc.enable()
        if not batch:
            return
        yield batch


class Sampler(Component):
    """Draws personas per stratum from a population."""

    kind = "sampler"

    def provides(self) -> set[str]:
        """Attributes every persona from this sampler has."""
        return set()

    @classmethod
    def planned_strata(cls, config: BaseModel) -> frozenset[str] | None:
        """The strata this config will sample (for other components' checks); None if only sampling tells."""
        return None

    def total(self) -> int:
        """How many personas ``sample`` will yield (for progress and planning)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, batch_size: int) -> Iterator[list[Persona]]:
        """Yield batches of personas; the same rng state yields the same batches."""
        raise NotImplementedError

    def population_cells(self, dimensions: tuple[str, ...]) -> dict[str, dict[tuple[str | None, ...], float]] | None:
        """People per joint cell (``simrun.cell_of``) of these control dimensions in each stratum of the population
        this sampler draws from, for the ``coverage`` metric; None (the default) when the sampler cannot tell."""
        return None


class Generate(Protocol):
    def __call__(
        self,
        prompts: list[str],
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> list[str]: ...


class EnrichContext(BaseModel):
    """What an enricher may use beyond its batch.

    ``generate`` is the scenario simulator's text generation, cached in the run
    log and resumable like answers: call it rather than the simulator itself.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    seed: int
    simulator: Any = None
    generate: Any = None


class Enricher(Component):
    """Adds attributes to personas; ordered by what it ``needs`` and ``provides``."""

    kind = "enricher"
    # Class attributes usually; an enricher whose attributes depend on its config sets them per instance.
    needs: frozenset[str] = frozenset()
    uses: frozenset[str] = frozenset()  # optional: read when present, so run after whoever provides them
    provides: frozenset[str] = frozenset()

    def enrich(self, batch: list[Persona], context: EnrichContext) -> list[Persona]:
        raise NotImplementedError


COST_COUNTER = "cost_microusd"  # a simulator's stats key for what its calls cost, in millionths of a USD


class Estimate(BaseModel):
    """What asking some prompts would take: calls, tokens and USD (``cost_usd`` None: no price known)."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None = None
    price_note: str | None = Field(
        None, description="Where the price comes from, or why none is known: what --estimate tells the user."
    )


class Simulator(Component):
    """A language-model backend."""

    kind = "simulator"
    chunk_size: ClassVar[int] = 32  # prompts per call; each call's answers are cached as soon as it returns
    # Config fields that never change an answer (concurrency, timeouts, the name of a key's variable): left out of
    # cache keys. Every other field is in them, so a new option can never serve a stale answer.
    non_semantic: ClassVar[frozenset[str]] = frozenset()

    @property
    def model(self) -> str:
        """The model's name as logged with every answer."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """Everything that changes an answer; part of every cache key, so changing any of it never reuses one.

        By default the simulator's name, its model and its whole validated
        config but the ``non_semantic`` fields. Extend it with what the config
        cannot show (``{**super().identity(), "weights": fingerprint}``); to
        leave a field out, declare it in ``non_semantic`` instead.
        """
        return {
            "simulator": self.name,
            "model": self.model,
            "config": self.config.model_dump(mode="json", exclude=set(self.non_semantic)),
        }

    def cache_identity(self) -> dict[str, Any]:
        """What every cache key is made of: ``identity()`` and where the simulator's code came from (an installed
        plugin's distribution and version, a ``--plugins-dir`` file's hash; nothing for simrun's own)."""
        return {**self.identity(), **plugin_source(type(self))}

    def answer(self, prompts: list[Prompt]) -> list[ModelAnswer]:
        """Return one answer per prompt, in order, each a distribution over its labels."""
        raise NotImplementedError

    def generate(
        self,
        prompts: list[str],
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> list[str]:
        """Free text (or JSON matching ``json_schema``) for enrichers."""
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        """Counters worth keeping with the run: retries, faults by kind, tokens, ``COST_COUNTER`` ..."""
        return {}

    def estimate(self, prompts: list[Prompt]) -> Estimate:
        """What answering ``prompts`` would take, before anything is sent (``simrun run --estimate``). Default:
        one call each, 4 characters a token, one token out, no price; an API backend adds its prices."""
        characters = sum(len(p.system) + len(p.user) for p in prompts)
        return Estimate(calls=len(prompts), prompt_tokens=characters // 4, completion_tokens=len(prompts))

    def close(self) -> None:
        """Release the model; called once when the run ends."""


class SharesData(Protocol):
    """What a ``resamplable`` metric reads: the questions, and answer shares, invalid mass and sizes by stratum."""

    questions: dict[str, Question]

    def shares(self, question_id: str) -> dict[str, dict[str, float]]: ...

    def invalid(self, question_id: str) -> dict[str, float]: ...

    def sizes(self, question_id: str) -> dict[str, int]:
        """Personas who answered the question, per stratum (``ALL_STRATA`` too): the N behind each share."""
        ...


class RunData(SharesData, Protocol):
    """What any metric reads of a finished run (``simrun.views.RunView``): shares, and the personas and answers."""

    def personas(self) -> Iterator[Persona]: ...

    def answers(self) -> Iterator[Answer]: ...

    def population_cells(
        self, dimensions: tuple[str, ...], reference: dict[str, Any] | None = None
    ) -> dict[str, dict[tuple[str | None, ...], float]] | None: ...


class MetricValue(BaseModel):
    """One figure of a metric: ``MetricValue("share", 0.52)`` or ``MetricValue(name="share", value=0.52,
    stratum="CA", question="Q1")``; ``stratum`` "" is the whole population, ``question`` "" all questions.
    Displays write a per-question figure as ``NAME[QUESTION]``."""

    name: str
    value: float
    stratum: str = ""
    question: str = ""

    def __init__(self, *args: Any, **fields: Any):
        if len(args) > 4:
            raise TypeError(f"MetricValue takes name, value, stratum and question: {len(args)} values given")
        super().__init__(**dict(zip(("name", "value", "stratum", "question"), args)), **fields)

    @property
    def label(self) -> str:
        return figure_label(self.name, self.question)


def figure_label(name: str, question: str) -> str:
    """How displays name a metric's figure: ``tvd`` overall, ``tvd[Q1]`` for one question."""
    return f"{name}[{question}]" if question else name


class Metric(Component):
    """Scores a finished run by reading the store (never engine memory)."""

    kind = "metric"
    # True when compute() reads only run.questions, run.shares, run.invalid and run.sizes: compare recomputes it on
    # bootstrap resamples of the personas for intervals. A metric that reads personas or answers leaves it False.
    resamplable: ClassVar[bool] = False
    # True when a score needs baselines to be read (a distance, an error): the engine also scores the metric on
    # the scenario's baselines (uniform answers, the model with no persona) and stores them beside it.
    baselines: ClassVar[bool] = False

    def questions(self) -> list[Question]:
        """Questions this metric brings to the run (a benchmark's own), asked like the scenario's."""
        return []

    def plots(self, by_stratum: dict[str, dict[str, float]]) -> list[tuple[str, Any]]:
        """Figures for ``simrun report``: (alt text, matplotlib Figure) pairs drawn from this metric's values per
        stratum (names without the metric's prefix). Draw with ``simrun.pyplot()``; default: none."""
        return []

    def compute(self, run: RunData) -> list[MetricValue]:
        """The metric's figures for a run: ``run`` is ``RunData`` (a ``SharesData`` resample when ``resamplable``)."""
        raise NotImplementedError

    def own_baselines(self, run: RunData) -> dict[str, RunData]:
        """Baselines this metric brings beyond the scenario's (the election metric's earlier result, a naive
        forecast): name -> a view of the run with the baseline's answers (``simrun.FixedSharesView``), scored by
        ``compute`` and stored as ``NAME@BASELINE`` beside the personas' score. Default: none."""
        return {}


class Ablation(Component):
    """Turns one scenario into labelled variants that differ in one thing."""

    kind = "ablation"
    # True when a variant that runs exactly as the first (its values are the scenario's, written or by default) is
    # not worth a run: the sweep leaves it out with a note. grid's combinations are such; a swap option the user
    # names to equal the baseline is a deliberate control and runs.
    leave_out_twins: ClassVar[bool] = False

    def variants(self, scenario: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (label, changed scenario data); the first is the baseline."""
        raise NotImplementedError


class SimulatorSpec(BaseModel):
    """The scenario's simulator as a recipe: its registered name, its ``with:`` block and the plugins folder that
    holds it, so an executor can build the same simulator in another process or on another machine."""

    name: str
    config: dict[str, Any] = {}
    plugins_dir: str | None = None


class Executor(Component):
    """Where the simulator's calls run. The engine keeps sampling, the cache, writing and metrics; an executor
    only carries chunks of prompts to the simulator (or its replicas) and brings their replies back."""

    kind = "executor"
    # True when map takes its chunks as a lazy sequence for the whole run (streaming dispatch: the next batches'
    # chunks go out while earlier ones are answered) and understands its None: no chunk is ready until you have
    # yielded a reply. False: map gets one batch's chunks as a list, and the engine waits for all of them.
    streams: ClassVar[bool] = False

    def start(self, simulator: Simulator, spec: SimulatorSpec) -> None:
        """Prepare to run calls: ``simulator`` is the engine's own instance, ``spec`` builds more elsewhere."""
        self.simulator = simulator

    def map(
        self, method: Literal["answer", "generate"], chunks: Iterable[list[Any] | None], options: dict[str, Any]
    ) -> Iterator[tuple[int, list[Any]]]:
        """``simulator.method(chunk, **options)`` for every chunk, yielded as (chunk index, replies) in whatever
        order they finish; the engine caches each as it comes. Each chunk must be yielded exactly once; the index
        counts chunks in the order they were drawn. A list unless ``streams``: then a lazy iterator, drawn on this
        thread when a replica has room, whose ``None`` means no chunk is ready until a reply has been yielded."""
        raise NotImplementedError

    def replicas(self) -> tuple[int, int] | None:
        """(alive, started) simulator replicas, for the progress bar; None when the simulator runs in-process."""
        return None

    def stats(self) -> dict[str, int]:
        """The simulator's counters (summed over replicas) and the executor's own (replicas lost, ...)."""
        return self.simulator.stats()

    def close(self) -> None:
        """Release replicas and connections; called once when the run ends, before the simulator's close."""


KINDS: dict[str, type[Component]] = {
    cls.kind: cls for cls in (Sampler, Enricher, Simulator, Metric, Ablation, Executor)
}
