"""``--estimate``: what a run would ask that the cache lacks, found by going through the whole pipeline with an
executor that sends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

from ..components import Estimate, Executor
from ..models import Prompt, failed_answer
from ..registry import Registry
from ..scenario import LoadedScenario
from .asking import answer
from .baseline_answers import baseline_answers
from .calls import ModelCalls
from .enrichment import enrich
from .plan import build_pipeline, started
from .sampling import batches


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


def estimate(loaded: LoadedScenario, registry: Registry, calls: ModelCalls) -> RunEstimate:
    """What a run of ``loaded`` would ask that the cache lacks, going through the whole pipeline (the
    no-persona baseline included) but sending nothing.

    A call the cache lacks is answered with a failure that is never cached, so enrichers that call the model
    see no reply and personas come out without what they would have written: their prompts are a bit short.
    """
    pipeline = build_pipeline(loaded, registry)
    tally = Tally(once=calls.use_cache)
    pipeline.executor = tally
    answers = cached = 0
    with started(loaded, pipeline, registry):
        for index, batch, _ in batches(calls.store, loaded, pipeline, None):
            for answered in answer(enrich(batch, index, loaded, pipeline, calls), loaded, tally, calls).records:
                answers, cached = answers + 1, cached + answered.cached
        personas_asked = len(tally.asked)
        baseline_answers(loaded, pipeline, calls, {})  # asked as a run asks them
        asked = pipeline.simulator.estimate(tally.asked)
        baseline = pipeline.simulator.estimate(tally.asked[personas_asked:]).calls
    written = Estimate(
        calls=len(tally.written),
        prompt_tokens=sum(len(text) for text, _ in tally.written) // 4,
        completion_tokens=sum(limit for _, limit in tally.written),
    )
    return RunEstimate(answers, cached, asked, baseline, written)
