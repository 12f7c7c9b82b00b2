"""The answers a run's metrics are compared with: the model asked with no persona, and uniform answers."""

from __future__ import annotations

from ..baselines import uniform
from ..components import Executor
from ..models import ModelAnswer, Prompt
from ..scenario import LoadedScenario
from ..store import PromptKeys
from .asking import combine_orders, question_texts
from .calls import ModelCalls
from .plan import Pipeline


def baseline_answers(
    loaded: LoadedScenario, pipeline: Pipeline, calls: ModelCalls, faults: dict[str, int]
) -> dict[str, dict[str, ModelAnswer]]:
    """Per baseline the scenario asks for, each question's answer. The model is asked without a persona even when
    no metric scores that baseline: ``simrun show`` compares the personas' answers with it (``persona_effect``).
    A baseline the model could not answer is left out, its failure noted in ``faults``."""
    wanted = loaded.scenario.baselines
    scored = any(metric.baselines for _, metric in pipeline.metrics)
    answers = (
        {"uniform": uniform({q.id: q for q in loaded.scenario.questions})} if "uniform" in wanted and scored else {}
    )
    if "no_persona" in wanted:
        empty = ask_without_persona(loaded, pipeline.executor, calls)
        failed = [a.error for a in empty.values() if a.error]
        if failed:  # a baseline the model could not answer is left out, never scored as if it had
            faults[f"baseline_no_persona_failed:{failed[0][:80]}"] = len(failed)
        else:
            answers["no_persona"] = empty
    return answers


def ask_without_persona(loaded: LoadedScenario, executor: Executor, calls: ModelCalls) -> dict[str, ModelAnswer]:
    """Each question asked in the scenario's prompt with an empty persona, in every option order, cached."""
    system = loaded.scenario.prompt.system.format(persona="")
    prompts: list[Prompt] = []
    groups = []
    for question, orders in question_texts(loaded):
        groups.append((question, orders, len(prompts)))
        prompts.extend(
            Prompt(persona_id=-1, question_id=question.id, system=system, user=user, labels=question.labels)
            for _, user in orders
        )
    prompt_keys = PromptKeys(executor.simulator.cache_identity())
    replies, _ = calls.answers([prompt_keys.of(p) for p in prompts], prompts.__getitem__, executor, prompt_keys)
    return {
        q.id: combine_orders(q, [(order, replies[start + i]) for i, (order, _) in enumerate(orders)])
        for q, orders, start in groups
    }
