"""The pipeline: sampler -> enrichers -> simulator -> aggregation -> metrics.

Personas stream through in batches, so memory stays flat as N grows. Each
batch commits to the store together with its progress marker, and every model
answer is cached the moment it arrives, so a killed run resumes where it
stopped without repeating a model call or duplicating a row.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import operator
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import networkx as nx
import numpy as np

from .baselines import SEPARATOR, BaselineView, uniform
from .components import EnrichContext, Enricher, Estimate, Executor, Metric, Sampler, Simulator, SimulatorSpec
from .models import Answered, Answers, ModelAnswer, Persona, Prompt, Question, RunInfo, failed_answer
from .redaction import redact
from .registry import Registry
from .scenario import LoadedScenario, ScenarioError, ScenarioIssue
from .schemas import schema_check
from .shares import ShareSums
from .store import PromptKeys, Store, StoreError, cache_key_of, dumps, now, pack_answer, unpack_answer
from .views import RunView

RECENT_REPLIES = 10_000  # cached replies a run keeps at hand (about 1.4 KB each: 14 MB at most)


class PlanError(ScenarioError):
    """The enrichers cannot be ordered: a cycle or an attribute nobody provides."""


@dataclass
class Pipeline:
    sampler: Sampler
    enrichers: list[Enricher]
    simulator: Simulator
    executor: Executor
    metrics: list[tuple[str, Metric]]
    components: list[dict] = field(default_factory=list)


def order_enrichers(provided: set[str], enrichers: list[Enricher], source: str) -> list[Enricher]:
    """Order enrichers so each runs after whatever provides what it needs."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(enrichers)))
    providers: dict[str, list[int]] = defaultdict(list)
    declared = [{what: enricher.declared(what) for what in ("provides", "needs", "uses")} for enricher in enrichers]
    for i, declaration in enumerate(declared):
        for attribute in declaration["provides"]:
            providers[attribute].append(i)
    issues = []
    for i, enricher in enumerate(enrichers):
        for attribute in sorted(declared[i]["needs"]):
            if attribute in provided:
                continue
            if not [
                j for j in providers[attribute] if j != i
            ]:  # an enricher that rewrites an attribute still needs it from another
                issues.append(
                    ScenarioIssue(
                        ("enrichers", i),
                        f"enricher '{enricher.name}' needs attribute '{attribute}', "
                        "which neither the sampler nor any enricher provides",
                    )
                )
            for j in providers[attribute]:
                if j != i:
                    graph.add_edge(j, i, attribute=attribute)
        for attribute in sorted(declared[i]["uses"] - declared[i]["needs"]):
            for j in providers[attribute]:
                if j != i:
                    graph.add_edge(j, i, attribute=attribute)
    if issues:
        raise PlanError(source, issues)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return [enrichers[i] for i in nx.lexicographical_topological_sort(graph)]
    names = " -> ".join(f"{enrichers[a].name} ({graph.edges[a, b]['attribute']})" for a, b in cycle)
    raise PlanError(source, [ScenarioIssue(("enrichers",), f"enrichers depend on each other in a cycle: {names}")])


def build_pipeline(loaded: LoadedScenario, registry: Registry) -> Pipeline:
    s = loaded.scenario
    components: list[dict] = []

    def make(kind: str, use: str, config: dict, label: str):
        info = registry.get(kind, use)
        components.append(
            {
                "kind": kind,
                "name": use,
                "as": label,
                "package": info.package,
                "version": info.version,
                "plugin": info.plugin,
            }
        )
        return info.build(config)

    sampler = make("sampler", s.sampler.use, s.sampler.with_, "sampler")
    enrichers = [make("enricher", e.use, e.with_, f"enrichers.{i}") for i, e in enumerate(s.enrichers)]
    simulator = make("simulator", s.simulator.use, s.simulator.with_, "simulator")
    executor = make("executor", s.executor.use, s.executor.with_, "executor")
    metrics = [(name, make("metric", spec.use, spec.with_, f"metrics.{name}")) for name, spec in s.metric_specs()]
    try:
        ordered = order_enrichers(sampler.declared("provides"), enrichers, loaded.source)
    except TypeError as exc:  # a plugin that declares what it provides or needs in a way simrun cannot read
        raise PlanError(loaded.source, [ScenarioIssue((), str(exc))]) from None
    return Pipeline(sampler, ordered, simulator, executor, metrics, components)


def combine_orders(question: Question, replies: list[tuple[list[int], ModelAnswer]]) -> ModelAnswer:
    """Map answers given under other option orders back to the original options and average them."""
    usable = [(order, r) for order, r in replies if r.error is None]
    if not usable:
        return replies[0][1]
    labels = question.labels
    distribution = dict.fromkeys(labels, 0.0)
    for order, reply in usable:
        for position, original in enumerate(order):
            distribution[labels[original]] += reply.distribution.get(labels[position], 0.0) / len(usable)
    errors = [r.error for _, r in replies if r.error]
    raw = " | ".join(r.raw for _, r in replies)
    return ModelAnswer(
        distribution=distribution,
        invalid=sum(r.invalid for _, r in usable) / len(usable),
        raw=raw + (f" | {len(errors)} order(s) failed: {errors[0]}" if errors else ""),
        tokens=sum(r.tokens for _, r in replies),
        latency_ms=sum(r.latency_ms for _, r in replies),
    )


PLAIN = (str, int, float, bool, type(None))


def as_stored(persona: Persona) -> Persona:
    """The persona as the run log will give it back: a tuple is a list, a dict key a string. Its prompt is
    rendered from this, so the prompt re-rendered from the log is the one asked."""
    if all(type(value) in PLAIN for value in persona.attributes.values()):
        return persona
    values = json.loads(json.dumps(list(persona.attributes.values()), default=str))
    return persona.model_copy(update={"attributes": dict(zip(persona.attributes, values))})


def share_rows(batch: list[Persona], answers: Answers) -> Iterator[tuple[str, str, float, float, dict[str, float]]]:
    """A batch's answers as ``ShareSums.add_batch`` sums them, in the order the run log keeps them."""
    personas = {p.id: p for p in batch}
    for a in sorted(answers.records, key=operator.itemgetter(0, 1, 2)):  # persona, question id, repeat
        persona = personas[a.persona_id]
        yield a.question_id, persona.stratum, persona.weight, a.reply.invalid, a.reply.distribution


def question_texts(loaded: LoadedScenario) -> list[tuple[Question, list[tuple[list[int], str]]]]:
    """Per question, each option order asked and the user text it gives: rendered once, whoever asks."""
    spec, nobody = loaded.scenario.prompt, Persona(id=0, stratum="", weight=1.0)
    return [
        (q, [(order, spec.render(nobody, q, "", order).user) for order in spec.orders(len(q.options))])
        for q in loaded.scenario.questions
    ]


def asked(loaded: LoadedScenario) -> dict[str, dict]:
    """Per question, its option labels and the user text of each option order: what re-renders a stored prompt."""
    return {q.id: {"labels": q.labels, "users": [user for _, user in orders]} for q, orders in question_texts(loaded)}


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Python's cycle collector, left as it is, rescans every object the process has loaded (modules, schemas,
    the pipeline) while a run allocates millions of short-lived ones: a tenth of the engine's time per answer.
    For the block those objects are frozen out of its scans and the youngest generation is collected less
    often; both are put back when it ends (a freeze the caller made itself is left alone)."""
    threshold = gc.get_threshold()
    ours = gc.get_freeze_count() == 0
    if ours:
        gc.freeze()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if ours:
            gc.unfreeze()


class Ask(NamedTuple):
    """One question asked of every persona in a batch, in one repeat: the user text of each option order."""

    question: Question
    labels: tuple[str, ...]
    repeat: int
    users: list[str]
    orders: list[tuple[list[int], str]]
    plain: bool  # asked once, in the question's own option order


class Tally(Executor):
    """``--estimate``'s executor: it sends nothing, notes every call the cache lacked, and answers each with a
    failure (an empty text for ``generate``), which the engine never caches.

    A real run caches each answer as it comes, so a prompt asked again in a later batch is not sent twice:
    with ``once``, the tally counts each prompt once too (its cache key is made of what it compares)."""

    name = "tally"

    def __init__(self, once: bool = True) -> None:
        super().__init__()
        self.once = once
        self.asked: list[Prompt] = []
        self.seen: set[tuple[str, str, tuple[str, ...], int]] = set()
        self.written: list[tuple[str, int]] = []  # generate calls: (prompt, max_tokens)

    def map(
        self, method: Literal["answer", "generate"], chunks: list[list[Any]], options: dict[str, Any]
    ) -> Iterator[tuple[int, list[Any]]]:
        for index, chunk in enumerate(chunks):
            if method == "answer":
                for p in chunk:
                    which = (p.system, p.user, tuple(p.labels), p.repeat)
                    if which not in self.seen:
                        self.asked.append(p)
                        if self.once:
                            self.seen.add(which)
                yield index, [failed_answer(p.labels, "not sent: --estimate") for p in chunk]
            else:
                self.written.extend((text, options["max_tokens"]) for text in chunk)
                yield index, [""] * len(chunk)


class RunEstimate(NamedTuple):
    """What ``Engine.estimate`` finds a run would take."""

    answers: int  # the personas' answers the run has
    cached: int  # of them, those the cache holds
    asked: Estimate  # every call the cache lacks, the no-persona baseline's included
    baseline_calls: int  # of asked.calls, the no-persona baseline's
    written: Estimate  # the enrichers' calls the cache lacks


class Engine:
    def __init__(self, registry: Registry, store: Store, *, use_cache: bool = True):
        self.registry = registry
        self.store = store
        self.use_cache = use_cache
        self.hook = registry.manager.hook
        self.run_id: str | None = None  # the run in progress, for an interrupted caller
        self.baseline_faults: dict[str, int] = {}  # baselines left out of a run, and why (kept with its stats)
        self.recent: dict[bytes, Any] = {}  # cache key -> a reply the cache holds, the latest (``remember``)

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
        s = loaded.scenario
        self.baseline_faults, self.recent = {}, {}
        if resume is None:
            sweep_id, variant = sweep or (None, None)
            run_id = self.store.runs.create(
                s.name, loaded.text, loaded.data, s.seed, pipeline.components, sweep_id, variant
            )
        else:
            run_id = resume
            self.store.runs.claim(run_id, take_over)
        self.run_id = run_id
        info = RunInfo(
            id=run_id,
            name=s.name,
            seed=s.seed,
            db_path=self.store.path,
            resumed=resume is not None,
            total=pipeline.sampler.total(),
        )
        timings: dict[str, float] = {}
        try:
            self.hook.run_started(run=info)
            simulator = pipeline.simulator
            self.store.runs.describe(run_id, simulator.model, simulator.identity(), asked(loaded))
            started = time.perf_counter()
            with self.started(loaded, pipeline):
                try:
                    with few_collections():
                        sums = self._simulate(loaded, pipeline, info, personas_from)
                    references = self.baseline_answers(loaded, pipeline)
                finally:  # replicas lost before a failure are worth keeping too
                    with contextlib.suppress(StoreError):
                        self.store.runs.add_stats(run_id, pipeline.executor.stats())
            timings["simulate_s"] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            self.aggregate(run_id, loaded.scenario.questions, sums)
            timings["aggregate_s"] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            values = self.score(run_id, loaded, pipeline.metrics, references)
            timings["metrics_s"] = round(time.perf_counter() - started, 3)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            try:
                self.store.runs.update(run_id, status=status, error=redact(f"{type(exc).__name__}: {exc}"), owner=None)
            except StoreError:  # e.g. the disk is full: the run stays "running", its owner gone, and resumes later
                pass
            raise
        self.store.runs.update(run_id, status="finished", finished_at=now(), timings=dumps(timings), owner=None)
        self.hook.run_finished(run=info, metrics=values)
        return run_id

    @contextlib.contextmanager
    def started(self, loaded: LoadedScenario, pipeline: Pipeline) -> Iterator[None]:
        """The executor started on the scenario's simulator for the block; both released when it ends."""
        s = loaded.scenario
        spec = SimulatorSpec(name=s.simulator.use, config=s.simulator.with_, plugins_dir=self.registry.plugins_dir)
        try:
            pipeline.executor.start(pipeline.simulator, spec)
            yield
        finally:
            pipeline.executor.close()
            pipeline.simulator.close()

    def batches(
        self, loaded: LoadedScenario, pipeline: Pipeline, personas_from: str | None
    ) -> Iterator[tuple[int, list[Persona], bool]]:
        """(batch index, personas, whether they still need enriching)."""
        if personas_from is not None:
            for index, batch in self.store.personas.batches(personas_from):
                yield index, batch, False
            return
        rng = np.random.default_rng(loaded.scenario.seed)
        for index, batch in enumerate(pipeline.sampler.sample(rng, loaded.scenario.batch_size)):
            yield index, batch, True

    def enrich(self, batch: list[Persona], index: int, loaded: LoadedScenario, pipeline: Pipeline) -> list[Persona]:
        """Run the ordered enrichers on a batch, with a seed of its own (so resumes agree)."""
        seed = int(np.random.SeedSequence([loaded.scenario.seed, index]).generate_state(1)[0])
        context = EnrichContext(
            seed=seed, simulator=pipeline.simulator, generate=functools.partial(self.generate, pipeline.executor)
        )
        for enricher in pipeline.enrichers:
            batch = enricher.enrich(batch, context)
        return batch

    def _simulate(
        self,
        loaded: LoadedScenario,
        pipeline: Pipeline,
        info: RunInfo,
        personas_from: str | None,
    ) -> ShareSums | None:
        """Ask every batch not done yet and log it. Returns the run's answer shares, summed as the batches were
        written, or None when an earlier process wrote some (``aggregate`` then reads them all from the log)."""
        done = self.store.answers.done_batches(info.id)
        labels = {q.id: q.labels for q in loaded.scenario.questions}
        sums = ShareSums() if not done else None
        replicas = None
        for index, batch, fresh in self.batches(loaded, pipeline, personas_from):
            if (now_replicas := pipeline.executor.replicas()) != replicas and now_replicas is not None:
                self.hook.replicas_changed(run=info, alive=now_replicas[0], started=now_replicas[1])
            replicas = now_replicas
            if index in done:
                self.hook.batch_resumed(run=info, personas=batch)
                continue
            if fresh:
                batch = self.enrich(batch, index, loaded, pipeline)
            answers = self.answer(batch, loaded, pipeline.executor)
            self.store.answers.write_batch(info.id, index, batch, answers)
            if sums is not None:
                sums.add_batch(share_rows(batch, answers), labels)
            self.hook.batch_done(run=info, personas=batch, answers=answers)
        return sums

    def estimate(self, loaded: LoadedScenario) -> RunEstimate:
        """What a run of ``loaded`` would ask that the cache lacks, going through the whole pipeline (the
        no-persona baseline included) but sending nothing.

        A call the cache lacks is answered with a failure that is never cached, so enrichers that call the model
        see no reply and personas come out without what they would have written: their prompts are a bit short.
        """
        pipeline = build_pipeline(loaded, self.registry)
        tally = Tally(once=self.use_cache)
        pipeline.executor = tally
        answers = cached = 0
        with self.started(loaded, pipeline):
            for index, batch, _ in self.batches(loaded, pipeline, None):
                for answer in self.answer(self.enrich(batch, index, loaded, pipeline), loaded, tally).records:
                    answers, cached = answers + 1, cached + answer.cached
            personas_asked = len(tally.asked)
            self.baseline_answers(loaded, pipeline)  # asked as a run asks them
            asked = pipeline.simulator.estimate(tally.asked)
            baseline = pipeline.simulator.estimate(tally.asked[personas_asked:]).calls
        written = Estimate(
            calls=len(tally.written),
            prompt_tokens=sum(len(text) for text, _ in tally.written) // 4,
            completion_tokens=sum(limit for _, limit in tally.written),
        )
        return RunEstimate(answers, cached, asked, baseline, written)

    def answer(self, batch: list[Persona], loaded: LoadedScenario, executor: Executor) -> Answers:
        """Answer every question for every persona, in every option order asked for.

        The hot path of a run: a persona's system text is rendered and hashed once for all its questions, a
        question's user texts once per batch, and a ``Prompt`` is made only for a call the cache lacks.
        """
        spec = loaded.scenario.prompt
        asks = [  # what each persona is asked, in order: one per question and repeat
            Ask(
                question,
                tuple(question.labels),
                repeat,
                [user for _, user in orders],
                orders,
                len(orders) == 1 and orders[0][0] == sorted(orders[0][0]),
            )
            for question, orders in question_texts(loaded)
            for repeat in range(loaded.scenario.repeats)
        ]
        prompt_keys = PromptKeys(executor.simulator.identity(), [(a.labels, a.repeat, a.users) for a in asks])
        systems = [spec.system.format(persona=spec.render_persona(as_stored(persona))) for persona in batch]
        keys = [key for system in systems for key in prompt_keys.persona(system)]
        prompts = [(a, user) for a in asks for user in a.users]  # a persona's prompts, in the order of its keys

        def prompt(i: int) -> Prompt:
            which, (a, user) = i // len(prompts), prompts[i % len(prompts)]
            return Prompt(
                persona_id=batch[which].id,
                question_id=a.question.id,
                system=systems[which],
                user=user,
                labels=a.labels,
                repeat=a.repeat,
            )

        replies, cached = self.ask(keys, prompt, executor, prompt_keys)
        records = []
        start = 0
        for persona, system in zip(batch, systems):
            for a in asks:
                if a.plain:
                    reply, key = replies[start], keys[start]
                    if tuple(reply.distribution) != a.labels:  # other labels or order: mapped back to the options
                        reply = combine_orders(a.question, [(a.orders[0][0], reply)])
                    records.append(
                        Answered(persona.id, a.question.id, a.repeat, reply, key, key in cached, system, a.users)
                    )
                    start += 1
                    continue
                end = start + len(a.orders)
                reply = combine_orders(
                    a.question, [(order, replies[i]) for (order, _), i in zip(a.orders, range(start, end))]
                )
                records.append(
                    Answered(
                        persona.id,
                        a.question.id,
                        a.repeat,
                        reply,
                        b"".join(keys[start:end]),
                        cached.issuperset(keys[start:end]),
                        system,
                        a.users,
                    )
                )
                start = end
        return Answers(executor.simulator.model, records)

    def through_cache(
        self,
        keys: list[bytes],
        request: Callable[[int], Any],
        executor: Executor,
        method: Literal["answer", "generate"],
        options: dict[str, Any],
        encode: Callable[[Any], str | bytes],
        decode: Callable[[str | bytes], Any],
        keep: Callable[[Any], bool],
        legacy: Callable[[int], bytes] | None = None,
    ) -> tuple[list, set[bytes]]:
        """Replies for the requests with these keys, from the cache where possible, each distinct key asked once
        (``request(i)`` makes the i-th request, only when the cache lacks it; ``legacy(i)`` gives its key as an
        older simrun wrote it, looked up for a miss in a log that holds such keys).

        Misses go to the executor in chunks of the simulator's ``chunk_size``, and
        each chunk's replies are cached as soon as it returns (in any order), so a
        crash never loses a finished call; replies ``keep`` rejects (failures) are never cached,
        and a cached one it rejects (kept by an older version) is asked again.
        Returns the replies in order and the keys that came from the cache.
        """
        replies: dict[bytes, Any] = {}
        if self.use_cache:
            recent, unknown = self.recent, {}
            for key in keys:
                if (reply := recent.get(key)) is None:
                    unknown[key] = None
                else:
                    replies[key] = reply
            read = {k: reply for k, v in self.store.cache.get(unknown).items() if keep(reply := decode(v))}
            self.remember(read)
            replies.update(read)
        first_seen: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in replies:
                first_seen.setdefault(key, i)
        if first_seen and legacy is not None and self.use_cache and self.store.cache.legacy_keys:
            older = {legacy(i): key for key, i in first_seen.items()}
            for old_key, value in self.store.cache.get(older).items():
                if keep(reply := decode(value)):
                    replies[older[old_key]] = reply
                    del first_seen[older[old_key]]
        cached = set(replies)
        misses = list(first_seen.values())
        size = max(1, executor.simulator.chunk_size)
        chunks = [misses[start : start + size] for start in range(0, len(misses), size)]
        for index, fresh in executor.map(method, [[request(i) for i in chunk] for chunk in chunks], options):
            wanted = chunks[index]
            if len(fresh) != len(wanted):
                raise RuntimeError(f"the simulator returned {len(fresh)} replies for {len(wanted)} requests")
            new = {keys[i]: reply for i, reply in zip(wanted, fresh)}
            if kept := {k: encode(r) for k, r in new.items() if keep(r)}:
                self.store.cache.put(executor.simulator.model, kept)
                self.remember({k: new[k] for k in kept})
            replies.update(new)
        return [replies[k] for k in keys], cached

    def remember(self, replies: dict[bytes, Any]) -> None:
        """Keep replies just read from or written to the cache for the prompts asked again (a population's
        personas repeat), up to ``RECENT_REPLIES``: they skip the look-up and the decoding."""
        if len(self.recent) + len(replies) > RECENT_REPLIES:
            self.recent.clear()
        self.recent.update(replies)

    def generate(
        self,
        executor: Executor,
        prompts: list[str],
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict | None = None,
    ) -> list[str]:
        """The simulator's text generation through the cache.

        A reply that is empty (the backend gave up) or breaks ``json_schema`` is
        returned for the enricher to judge but never cached: whatever a
        backend's constrained decoding cannot enforce is checked here.
        """
        request = {
            "model": executor.simulator.identity(),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "schema": json_schema,
        }
        keys = [cache_key_of(dumps({**request, "generate": p})) for p in prompts]
        texts, _ = self.through_cache(
            keys,
            prompts.__getitem__,
            executor,
            "generate",
            {"max_tokens": max_tokens, "temperature": temperature, "json_schema": json_schema},
            encode=lambda t: json.dumps({"text": t}),
            decode=lambda raw: json.loads(raw)["text"],
            keep=bool if json_schema is None else schema_check(json_schema),
        )
        return texts

    def ask(
        self, keys: list[bytes], prompt: Callable[[int], Prompt], executor: Executor, prompt_keys: PromptKeys
    ) -> tuple[list[ModelAnswer], set[bytes]]:
        """Model answers through the cache for the prompts with these keys (``prompt(i)`` makes the i-th); answers
        that failed are not cached. Returns them in order and the keys that came from the cache."""
        return self.through_cache(
            keys,
            prompt,
            executor,
            "answer",
            {},
            encode=pack_answer,
            decode=unpack_answer,
            keep=lambda a: a.error is None,
            legacy=lambda i: prompt_keys.of(prompt(i), legacy=True),
        )

    def aggregate(self, run_id: str, questions: list[Question], sums: ShareSums | None = None) -> None:
        """Weighted option shares per stratum and question, plus the whole population: from ``sums`` as the run
        summed them, or read back from the log batch by batch, to the same floats."""
        if sums is None:
            labels = {q.id: q.labels for q in questions}
            sums = ShareSums()
            for batch in self.store.answers.share_rows(run_id):
                sums.add_batch(batch, labels)
        invalid = sums.invalid()
        rows = [
            {
                "run_id": run_id,
                "question_id": q,
                "stratum": stratum,
                "option": label,
                "share": share,
                "weight": sums.weights[(q, stratum)],
                "invalid": invalid[q][stratum],
            }
            for q, by_stratum in sums.shares().items()
            for stratum, by_label in by_stratum.items()
            for label, share in by_label.items()
        ]
        self.store.results.write_aggregates(run_id, rows)

    def baseline_answers(self, loaded: LoadedScenario, pipeline: Pipeline) -> dict[str, dict[str, ModelAnswer]]:
        """Per baseline the scenario asks for, each question's answer. The model is asked without a persona even when
        no metric scores that baseline: ``simrun show`` compares the personas' answers with it (``persona_effect``)."""
        wanted = loaded.scenario.baselines
        scored = any(metric.baselines for _, metric in pipeline.metrics)
        answers = (
            {"uniform": uniform({q.id: q for q in loaded.scenario.questions})} if "uniform" in wanted and scored else {}
        )
        if "no_persona" in wanted:
            empty = self.ask_without_persona(loaded, pipeline.executor)
            failed = [a.error for a in empty.values() if a.error]
            if failed:  # a baseline the model could not answer is left out, never scored as if it had
                self.baseline_faults[f"baseline_no_persona_failed:{failed[0][:80]}"] = len(failed)
            else:
                answers["no_persona"] = empty
        return answers

    def ask_without_persona(self, loaded: LoadedScenario, executor: Executor) -> dict[str, ModelAnswer]:
        """Each question asked in the scenario's prompt with an empty persona, in every option order, cached."""
        system = loaded.scenario.prompt.system.format(persona="")
        calls: list[Prompt] = []
        groups = []
        for question, orders in question_texts(loaded):
            groups.append((question, orders, len(calls)))
            calls.extend(
                Prompt(persona_id=-1, question_id=question.id, system=system, user=user, labels=question.labels)
                for _, user in orders
            )
        prompt_keys = PromptKeys(executor.simulator.identity())
        replies, _ = self.ask([prompt_keys.of(p) for p in calls], calls.__getitem__, executor, prompt_keys)
        return {
            q.id: combine_orders(q, [(order, replies[start + i]) for i, (order, _) in enumerate(orders)])
            for q, orders, start in groups
        }

    def score(
        self,
        run_id: str,
        loaded: LoadedScenario,
        metrics: list[tuple[str, Metric]],
        baselines: dict[str, dict[str, ModelAnswer]] | None = None,
    ) -> dict[str, float]:
        """Every metric on the run, then each metric that declares ``baselines`` on each baseline's answers."""
        run_sampler = loaded.scenario.sampler

        def sampler(spec: dict[str, Any] | None) -> Sampler:
            use, config = (spec["use"], spec.get("with") or {}) if spec else (run_sampler.use, run_sampler.with_)
            return self.registry.get("sampler", use).build(config)

        view = RunView(self.store, run_id, loaded.scenario.questions, sampler)
        values: dict[str, float] = {}
        for name, metric in metrics:
            results = metric.compute(view)
            self.store.results.write_metrics(run_id, name, [r.model_dump() for r in results])
            values.update({f"{name}.{r.name}": r.value for r in results if not r.stratum})
        shared = {baseline: BaselineView(view, answers) for baseline, answers in (baselines or {}).items()}
        for name, metric in metrics:
            try:
                own = metric.own_baselines(view)
            except Exception as exc:  # noqa: BLE001 - a baseline the metric cannot build never fails the run
                self.baseline_faults[f"baseline_own_unbuilt:{name}: {type(exc).__name__}"] = 1
                own = {}
            views = {**(shared if metric.baselines else {}), **own}
            for baseline, reference in views.items():
                try:
                    results = metric.compute(reference)
                except Exception as exc:  # noqa: BLE001 - a baseline the metric cannot score never fails the run
                    self.baseline_faults[f"baseline_{baseline}_unscored:{name}: {type(exc).__name__}"] = 1
                    continue
                self.store.results.write_metrics(
                    run_id, f"{name}{SEPARATOR}{baseline}", [r.model_dump() for r in results]
                )
        if self.baseline_faults:
            self.store.runs.add_stats(run_id, self.baseline_faults)
        return values
