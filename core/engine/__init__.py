"""The pipeline: sampler -> enrichers -> simulator -> aggregation -> metrics, one module per stage.

- ``plan``: the scenario's components built, the enrichers ordered, the executor started;
- ``sampling``: personas batch by batch; ``enrichment``: the enrichers run on a batch;
- ``asking``: every question put to a batch's personas, through ``calls``: the cache, then the executor;
- ``aggregation``: weighted option shares; ``baseline_answers`` and ``scoring``: the metrics;
- ``estimate``: what a run would ask, sending nothing; ``memory``: the garbage collector held back.

Personas stream through in batches, so memory stays flat as N grows. Each batch commits to the run log together
with its progress marker, and every model answer is cached the moment it arrives, so a killed run resumes where
it stopped without repeating a model call or duplicating a row.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from ..models import Answers, Persona, Prompt, RunInfo
from ..redaction import redact
from ..registry import Registry
from ..scenario import LoadedScenario
from ..shares import ShareSums
from ..store import Store, StoreError, dumps, now
from .aggregation import aggregate, share_rows
from .asking import Asking, answer, asked
from .baseline_answers import baseline_answers
from .calls import ModelCalls
from .dispatch import Window
from .enrichment import enrich
from .estimate import RunEstimate, estimate
from .memory import few_collections
from .plan import Pipeline, PlanError, build_pipeline, order_enrichers, planned_total, started
from .sampling import batches
from .scoring import score

__all__ = [
    "Engine",
    "PlanError",
    "Pipeline",
    "RunEstimate",
    "build_pipeline",
    "order_enrichers",
    "planned_total",
    "started",
]


class Engine:
    """Runs scenarios into one run log; ``use_cache=False`` sends every model call again."""

    def __init__(self, registry: Registry, store: Store, *, use_cache: bool = True):
        self.registry = registry
        self.store = store
        self.use_cache = use_cache
        self.hook = registry.manager.hook
        self.run_id: str | None = None  # the run in progress, for an interrupted caller
        self.calls = ModelCalls(store, use_cache)

    def run(
        self,
        loaded: LoadedScenario,
        resume: str | None = None,
        *,
        personas_from: str | None = None,
        sweep: tuple[str, str] | None = None,
        take_over: bool = False,
    ) -> str:
        """Run (or resume) a scenario; return the run id.

        ``personas_from`` reuses a finished run's personas, batch by batch,
        instead of sampling and enriching again (a sweep's variants that change
        neither). ``sweep`` is (sweep id, variant label); ``take_over`` resumes a
        run whose owner on another host looks alive. Observers (the progress
        bar among them) follow it through the lifecycle hooks.
        """
        pipeline = build_pipeline(loaded, self.registry)
        total = planned_total(pipeline, loaded)  # before the run is created: a bad plan leaves no run behind
        s, runs = loaded.scenario, self.store.runs
        self.calls = ModelCalls(self.store, self.use_cache)
        faults: dict[str, int] = {}  # baselines left out of the run, and why (kept with its stats)
        if resume is None:
            sweep_id, variant = sweep or (None, None)
            run_id = runs.create(s.name, loaded.text, loaded.data, s.seed, pipeline.components, sweep_id, variant)
        else:
            run_id = resume
            runs.claim(run_id, take_over)
        self.run_id = run_id
        info = RunInfo(
            id=run_id,
            name=s.name,
            seed=s.seed,
            db_path=self.store.path,
            resumed=resume is not None,
            total=total,
        )
        timings: dict[str, float] = {}
        try:
            self.hook.run_started(run=info)
            runs.describe(run_id, pipeline.simulator.model, pipeline.simulator.cache_identity(), asked(loaded))
            started_at = time.perf_counter()
            with started(loaded, pipeline, self.registry) as start_s:
                timings["executor_start_s"] = round(start_s, 3)
                try:
                    with few_collections():
                        sums = self.simulate(loaded, pipeline, info, personas_from)
                    references = baseline_answers(loaded, pipeline, self.calls, faults)
                finally:  # replicas lost before a failure are worth keeping too
                    with contextlib.suppress(StoreError):
                        runs.add_stats(run_id, pipeline.executor.stats())
            timings["simulate_s"] = round(time.perf_counter() - started_at, 3)
            started_at = time.perf_counter()
            aggregate(self.store, run_id, s.questions, sums)
            timings["aggregate_s"] = round(time.perf_counter() - started_at, 3)
            started_at = time.perf_counter()
            values = score(self.store, self.registry, run_id, loaded, pipeline.metrics, references, faults)
            timings["metrics_s"] = round(time.perf_counter() - started_at, 3)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            try:
                runs.update(run_id, status=status, error=redact(f"{type(exc).__name__}: {exc}"), owner=None)
            except StoreError:  # e.g. the disk is full: the run stays "running", its owner gone, and resumes later
                pass
            raise
        runs.update(run_id, status="finished", finished_at=now(), timings=dumps(timings), owner=None)
        self.hook.run_finished(run=info, metrics=values)
        return run_id

    def simulate(
        self, loaded: LoadedScenario, pipeline: Pipeline, info: RunInfo, personas_from: str | None
    ) -> ShareSums | None:
        """Ask every batch not done yet and log it. Returns the run's answer shares, summed as the batches were
        written, or None when an earlier process wrote some (``aggregate`` then reads them all from the log)."""
        done = self.store.answers.done_batches(info.id)
        labels = {q.id: q.labels for q in loaded.scenario.questions}
        sums = ShareSums() if not done else None
        executor = pipeline.executor

        def commit(index: int, batch: list[Persona], answers: Answers) -> None:
            self.store.answers.write_batch(info.id, index, batch, answers)
            if sums is not None:
                sums.add_batch(share_rows(batch, answers), labels)
            self.hook.batch_done(run=info, personas=batch, answers=answers)

        window = Window(loaded.scenario.batch_size, commit) if executor.streams else None

        def chunks() -> Iterator[list[Prompt] | None]:
            """Every batch not done yet, prepared and sent as the executor asks for work."""
            replicas = None
            for index, batch, fresh in batches(self.store, loaded, pipeline, personas_from):
                if (now_replicas := executor.replicas()) != replicas and now_replicas is not None:
                    self.hook.replicas_changed(run=info, alive=now_replicas[0], started=now_replicas[1])
                replicas = now_replicas
                if index in done:
                    self.hook.batch_resumed(run=info, personas=batch)
                    continue
                while window is not None and window.full:
                    yield None
                if fresh:
                    batch = enrich(batch, index, loaded, pipeline, self.calls)
                if window is not None:
                    yield from window.add(index, Asking(batch, loaded, executor, self.calls))
                else:  # an executor that takes a list of chunks: one batch at a time
                    commit(index, batch, answer(batch, loaded, executor, self.calls))

        if window is None:
            for _ in chunks():
                pass
            return sums
        for chunk, replies in executor.map("answer", chunks(), {}):
            window.take(chunk, replies)
        if window.batches:
            raise RuntimeError(f"the {executor.name} executor stopped with {len(window.sent)} chunk(s) unanswered")
        return sums

    def estimate(self, loaded: LoadedScenario) -> RunEstimate:
        """What a run of ``loaded`` would ask that the cache lacks (``estimate.estimate``)."""
        return estimate(loaded, self.registry, ModelCalls(self.store, self.use_cache))
