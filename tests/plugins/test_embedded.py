"""The embedded backend with the real SmolLM2-135M model on the CPU (small N)."""

import json
import re

import jsonschema
import pytest
from bounded_schema import BOUNDED_SCHEMA, TEMPTING_PROMPTS

from simrun import bundled_model
from simrun.models import Prompt
from simrun.plugins.simulators.embedded import EmbeddedSimulator, integer_spellings, json_grammar

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def simulator():
    sim = EmbeddedSimulator()
    yield sim
    sim.close()


def prompt(persona: str, question: str, pid: int = 0) -> Prompt:
    return Prompt(
        persona_id=pid,
        question_id="q",
        system=f"You are this person:\n{persona}",
        user=f"{question}\n\nA. Yes\nB. No\nC. Not sure\n\nAnswer with the letter of one option only.",
        labels=["A", "B", "C"],
    )


def test_bundled_model_is_found_without_importing_llm():
    import sys

    path = bundled_model()
    assert path.is_file() and path.stat().st_size > 50_000_000
    assert "llm" not in sys.modules


def test_answers_are_distributions_over_the_labels(simulator):
    [answer] = simulator.answer([prompt("age: 40\nsex: female", "Do you own a car?")])
    assert set(answer.distribution) == {"A", "B", "C"}
    assert sum(answer.distribution.values()) == pytest.approx(1.0)
    assert 0 <= answer.invalid < 1 and answer.tokens > 20 and answer.raw


def test_prefix_reuse_gives_the_same_answer_as_a_cold_evaluation(simulator):
    persona = "\n".join(f"attribute {i}: value {i}" for i in range(30))
    first, second = prompt(persona, "Do you like cats?"), prompt(persona, "Do you like dogs?")
    warm = simulator.answer([first, second])[1]
    fresh = EmbeddedSimulator()
    cold = fresh.answer([second])[0]
    fresh.close()
    assert warm.distribution == pytest.approx(cold.distribution, abs=1e-4)
    assert warm.invalid == pytest.approx(cold.invalid, abs=1e-4)


def test_identity_names_the_model_file(simulator):
    identity = simulator.identity()
    assert identity["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and ":" in identity["file"]


def test_generate_follows_a_json_schema(simulator):
    schema = {"type": "object", "properties": {"hobby": {"type": "string"}}, "required": ["hobby"]}
    [text] = simulator.generate(["Name one hobby."], max_tokens=40, json_schema=schema)
    assert isinstance(json.loads(text)["hobby"], str)


def as_regex(spellings):
    return re.compile("|".join("".join(re.escape(a) if a == b else f"[{a}-{b}]" for a, b in s) for s in spellings))


@pytest.mark.parametrize(
    "low,high",
    [
        (1, 12),
        (0, 0),
        (10, 99),
        (-5, 5),
        (-120, -7),
        (3, 1000),
        (99, 101),
        (123, 4567),
        (-1, 0),
        (None, 3),
        (-3, None),
        (1, None),
        (1950, 2024),
    ],
)
def test_integer_spellings_are_exactly_the_range(low, high):
    pattern = as_regex(integer_spellings(low, high))
    for n in range(-1500, 5000):
        assert bool(pattern.fullmatch(str(n))) == ((low is None or n >= low) and (high is None or n <= high)), n
    assert not any(pattern.fullmatch(s) for s in ["01", "-0", "007", "+1", "1.0", "", "-"])


def test_the_grammar_of_a_bounded_schema_compiles_with_every_bound_as_a_rule():
    from llama_cpp import LlamaGrammar

    nested = {
        "type": "object",
        "properties": {
            "rows": {"type": "array", "items": {"$ref": "#/$defs/row"}, "maxItems": 2},
            "integer": {"type": "integer", "minimum": 0},
        },
        "$defs": {
            "row": {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 2, "maximum": 4}}}
        },
    }
    for schema in (BOUNDED_SCHEMA, nested):
        LlamaGrammar.from_string(json_grammar(schema), verbose=False)
    grammar = json_grammar(BOUNDED_SCHEMA)
    assert '([1-9] | "1" [0-2]) space' in grammar  # household_size 1..12
    assert '"-" [1-4] [0-9] | "-" "5" "0"' in grammar  # balance_change -50..-10
    assert '"2" "0" "2" [0-4]' in grammar  # year_moved_in below 2025
    assert "integer- ::= ([0-9] | [1-9] [0-9] |" in json_grammar(nested) and "row-n ::= ([3-4]) space" in json_grammar(
        nested
    )


def test_generate_keeps_every_bound_whatever_the_prompt_asks(simulator):
    replies = simulator.generate(TEMPTING_PROMPTS, max_tokens=160, json_schema=BOUNDED_SCHEMA)
    for reply in replies:
        jsonschema.validate(json.loads(reply), BOUNDED_SCHEMA)
    one_sided = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 18}}, "required": ["age"]}
    [reply] = simulator.generate(["Tom is 7 years old. Give his age as JSON."], max_tokens=20, json_schema=one_sided)
    assert json.loads(reply)["age"] >= 18


def test_missing_model_file_is_a_clear_error(tmp_path):
    sim = EmbeddedSimulator(EmbeddedSimulator.Config(model_path=str(tmp_path / "none.gguf")))
    with pytest.raises(FileNotFoundError, match="model file not found"):
        sim.identity()


def test_election_scenario_runs_for_real(tmp_path):
    from click.testing import CliRunner
    from conftest import ROOT

    from simrun.cli import cli

    db = tmp_path / "e.db"
    result = CliRunner().invoke(
        cli,
        [
            str(ROOT / "scenarios/election.yaml"),
            "--db",
            str(db),
            "--set",
            "sampler.with.states=[VT, WY]",
            "--set",
            "sampler.with.per_state=2",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "election.mae_points" in result.output and "VT" in result.output


def test_samples_mode_counts_answers_and_changes_the_cache_identity():
    sim = EmbeddedSimulator(EmbeddedSimulator.Config(mode="samples", samples=3, temperature=0.95))
    [answer] = sim.answer([prompt("age: 70", "Do you garden?")])
    sim.close()
    counted = [round(p * 3 * (1 - answer.invalid)) for p in answer.distribution.values()]
    assert sum(counted) + round(answer.invalid * 3) == 3
    assert len(answer.raw.split("\n---\n")) == 3
    assert sim.identity() != EmbeddedSimulator().identity()
