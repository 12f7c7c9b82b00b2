import json

import pytest
from conftest import PersonasView, in_process

from simrun.components import EnrichContext
from simrun.models import Persona
from simrun.plugins.enrichers.llm_tiers import Descriptive, ObjectiveTabular, SubjectiveTabular
from simrun.plugins.metrics.persona_text import PersonaTextMetric

GOOD = {
    "occupation": "nurse",
    "industry": "education and health care",
    "household_size": 3,
    "health_insurance": "employer",
    "urbanicity": "suburban",
    "housing": "owns",
}


class Script:
    """A generator that replies from a script, one reply per call per prompt, and records prompts."""

    model = "scripted"

    def __init__(self, *replies):
        self.replies, self.prompts = list(replies), []

    def __call__(self, prompts, max_tokens=256, temperature=0.0, json_schema=None):
        self.prompts.append(prompts)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return [reply for _ in prompts]


def personas(n=2):
    return [
        Persona(
            id=i,
            stratum="OH",
            weight=1.0,
            attributes={"age": 30 + i, "sex": "female"},
            provenance={"age": "census:x", "sex": "census:x"},
        )
        for i in range(n)
    ]


def context(script):
    return EnrichContext(seed=0, simulator=script, generate=script)


def test_valid_json_becomes_attributes_written_by_the_llm():
    batch = ObjectiveTabular().enrich(personas(), context(Script(json.dumps(GOOD))))
    assert batch[0].attributes["occupation"] == "nurse" and batch[1].attributes["household_size"] == 3
    assert batch[0].provenance["industry"] == "llm:scripted"


def test_a_malformed_reply_is_asked_again_with_the_reason():
    script = Script("Sure! Here is the JSON: {occupation: nurse", json.dumps(GOOD))
    batch = ObjectiveTabular().enrich(personas(1), context(script))
    assert batch[0].attributes["occupation"] == "nurse"
    assert len(script.prompts) == 2 and "not usable (not JSON" in script.prompts[1][0]


@pytest.mark.parametrize(
    "reply,reason,detail",
    [
        (
            json.dumps({**GOOD, "industry": "space piracy"}),
            "out of schema at industry: enum",
            "'space piracy' is not one of",
        ),
        (
            json.dumps({**GOOD, "household_size": 30}),
            "out of schema at household_size: maximum",
            "30 is greater than the maximum of 12",
        ),
        ("I'm sorry, I can't help with describing real people.", "not JSON", "Expecting value"),
        ("", "empty reply", ""),
    ],
)
def test_replies_that_never_fit_are_recorded_not_dropped(reply, reason, detail):
    batch = ObjectiveTabular(ObjectiveTabular.Config(attempts=2)).enrich(personas(2), context(Script(reply)))
    recorded = batch[0].attributes["_objective_invalid"]
    assert recorded["reason"] == reason and recorded["detail"].startswith(detail) and recorded["reply"] == reply
    assert "occupation" not in batch[0].attributes


def test_subjective_and_descriptive_tiers():
    subjective = {
        "openness": "high",
        "conscientiousness": "medium",
        "extraversion": "low",
        "agreeableness": "high",
        "neuroticism": "low",
        "core_values": ["family"],
        "hobbies": ["gardening", "chess"],
        "life_outlook": "optimistic",
        "defining_quirk": "hums",
    }
    [p] = SubjectiveTabular().enrich(personas(1), context(Script(json.dumps(subjective))))
    assert p.attributes["hobbies"] == ["gardening", "chess"]
    [p] = Descriptive().enrich([p], context(Script("I am a cheerful nurse from Ohio who loves my garden.")))
    assert p.attributes["description"].startswith("I am a cheerful") and p.provenance["description"] == "llm:scripted"
    [q] = Descriptive().enrich(personas(1), context(Script("  ")))
    assert "description" not in q.attributes and q.attributes["_descriptive_invalid"]["reason"] == "empty or too short"


def test_persona_text_metric_by_hand():
    from textblob import TextBlob

    census_only = personas(1)[0]
    written = Persona(
        id=1,
        stratum="OH",
        weight=1.0,
        attributes={"age": 40, "sex": "male", "description": "a wonderful happy life", "_objective_invalid": "x"},
        provenance={"age": "census:x", "sex": "census:x", "description": "llm:m", "_objective_invalid": "llm:m"},
    )
    values = {v.name: v.value for v in PersonaTextMetric().compute(PersonasView([census_only, written]))}
    assert values["llm_share_attributes"] == pytest.approx((0 + 1 / 3) / 2)
    chars = len("a wonderful happy life")
    assert values["llm_share_characters"] == pytest.approx((0 + chars / (chars + 2 + 4)) / 2)
    assert values["sentiment_polarity"] == pytest.approx(TextBlob("a wonderful happy life").sentiment.polarity)
    assert values["personas_with_llm_text"] == 1 and values["invalid[objective]"] == 1
    assert any(name.startswith("positive_term[") for name in values)


def test_engine_caches_generation_but_not_failures(registry, tmp_path):
    from simrun.engine.calls import ModelCalls
    from simrun.store import Store

    class Counting:
        model, name, chunk_size = "counting", "counting", 8

        def __init__(self):
            self.calls = 0

        def cache_identity(self):
            return {"model": self.model}

        def generate(self, prompts, max_tokens=256, temperature=0.0, json_schema=None):
            self.calls += len(prompts)
            return ["" if "fail" in p else p.upper() for p in prompts]

    calls, sim = ModelCalls(Store(tmp_path / "g.db")), Counting()
    assert calls.generate(in_process(sim), ["a", "b", "a", "fail"]) == ["A", "B", "A", ""]
    assert sim.calls == 3  # the repeated prompt is asked once
    assert calls.generate(in_process(sim), ["a", "b", "fail"]) == ["A", "B", ""]
    assert sim.calls == 4  # only the failure is asked again


def test_engine_never_caches_a_reply_that_breaks_its_schema(registry, tmp_path):
    from simrun.engine.calls import ModelCalls
    from simrun.store import Store

    class Sizes:
        model, name, chunk_size = "sizes", "sizes", 8

        def __init__(self, size):
            self.size, self.calls = size, 0

        def cache_identity(self):
            return {"model": self.model}

        def generate(self, prompts, max_tokens=256, temperature=0.0, json_schema=None):
            self.calls += len(prompts)
            return [json.dumps({"household_size": self.size}) for _ in prompts]

    schema = {"type": "object", "properties": {"household_size": {"type": "integer", "minimum": 1, "maximum": 12}}}
    store = Store(tmp_path / "g.db")
    calls = ModelCalls(store)
    unbounded = Sizes(30)  # a backend whose decoding ignored the bounds
    assert calls.generate(in_process(unbounded), ["p"], json_schema=schema) == ['{"household_size": 30}']
    assert (
        calls.generate(in_process(unbounded), ["p"], json_schema=schema) and unbounded.calls == 2
    )  # asked again, not served from the cache
    bounded = Sizes(4)
    assert calls.generate(in_process(bounded), ["p"], json_schema=schema) == ['{"household_size": 4}']
    assert calls.generate(in_process(bounded), ["p"], json_schema=schema) and bounded.calls == 1
    # a cache written before replies were checked: its out-of-schema entry is a miss, not an answer
    [key] = [row["key"] for row in store.db["llm_cache"].rows]
    store.db.execute(
        "update llm_cache set response = ? where key = ?", [json.dumps({"text": '{"household_size": 45}'}), key]
    )
    assert (
        ModelCalls(store).generate(in_process(bounded), ["p"], json_schema=schema) == ['{"household_size": 4}']
        and bounded.calls == 2
    )
    assert ModelCalls(store).generate(in_process(bounded), ["p"], json_schema=schema) and bounded.calls == 2


YOUNG_DROPOUT = {"age": 22, "sex": "male", "education": "less than high school"}


def young_dropout():
    return [
        Persona(
            id=0,
            stratum="OH",
            weight=1.0,
            attributes=dict(YOUNG_DROPOUT),
            provenance={k: "census:x" for k in YOUNG_DROPOUT},
        )
    ]


def test_a_reply_that_contradicts_the_census_is_regenerated_with_the_reason():
    script = Script(json.dumps({**GOOD, "occupation": "retired surgeon"}), json.dumps(GOOD))
    [p] = ObjectiveTabular().enrich(young_dropout(), context(script))
    assert p.attributes["occupation"] == "nurse" and "_objective_violations" not in p.attributes
    assert p.attributes["_objective_regenerated"] == ["degree_without_education", "retired_too_young"]
    assert "contradicts the person's facts" in script.prompts[1][0] and "under 35 and retired" in script.prompts[1][0]


def test_a_violation_that_persists_is_kept_and_flagged():
    script = Script(json.dumps({**GOOD, "occupation": "retired surgeon"}))
    [p] = ObjectiveTabular(ObjectiveTabular.Config(attempts=2)).enrich(young_dropout(), context(script))
    assert p.attributes["occupation"] == "retired surgeon" and len(script.prompts) == 2
    assert p.attributes["_objective_violations"] == ["retired_too_young", "degree_without_education"]


def test_flag_mode_and_scenario_rules():
    config = ObjectiveTabular.Config.model_validate(
        {
            "on_violation": "flag",
            "rules": [
                {"id": "no_rural_ohio", "when": {"age": {"lt": 30}}, "forbid": {"urbanicity": {"in": ["rural"]}}}
            ],
        }
    )
    script = Script(json.dumps({**GOOD, "urbanicity": "rural", "occupation": "retired surgeon"}))
    [p] = ObjectiveTabular(config).enrich(young_dropout(), context(script))
    assert len(script.prompts) == 1 and p.attributes["_objective_violations"] == [
        "no_rural_ohio"
    ]  # only the scenario's rules


def test_a_narrative_in_the_wrong_voice_is_regenerated():
    script = Script(
        "As a woman and a mother of three, I love my small town.", "As a young man, I work nights and love fishing."
    )
    [p] = Descriptive().enrich(young_dropout(), context(script))
    assert p.attributes["description"].startswith("As a young man") and p.attributes["_descriptive_regenerated"] == [
        "male_writes_as_woman"
    ]


def test_persona_text_counts_consistency_per_tier_and_rule():
    flagged = Persona(
        id=0,
        stratum="OH",
        weight=1.0,
        attributes={
            "age": 22,
            "_objective_violations": ["retired_too_young"],
            "_descriptive_regenerated": ["male_writes_as_woman"],
        },
        provenance={"age": "census:x"},
    )
    clean = Persona(id=1, stratum="OH", weight=1.0, attributes={"age": 50}, provenance={"age": "census:x"})
    values = {v.name: v.value for v in PersonaTextMetric().compute(PersonasView([flagged, clean]))}
    assert values["flagged[objective]"] == 1 and values["regenerated[descriptive]"] == 1
    assert values["violations[retired_too_young]"] == 1 and values["flagged_share"] == 0.5
