"""The embedded backend with the real SmolLM2-135M model on the CPU (small N)."""

import json

import pytest

from simrun.models import Prompt
from simrun.plugins.simulators.embedded import EmbeddedSimulator, bundled_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def simulator():
    sim = EmbeddedSimulator()
    yield sim
    sim.close()


def prompt(persona: str, question: str, pid: int = 0) -> Prompt:
    return Prompt(persona_id=pid, question_id="q", system=f"You are this person:\n{persona}",
                  user=f"{question}\n\nA. Yes\nB. No\nC. Not sure\n\nAnswer with the letter of one option only.", labels=["A", "B", "C"])


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


def test_missing_model_file_is_a_clear_error(tmp_path):
    sim = EmbeddedSimulator(EmbeddedSimulator.Config(model_path=str(tmp_path / "none.gguf")))
    with pytest.raises(FileNotFoundError, match="model file not found"):
        sim.identity()


def test_election_scenario_runs_for_real(tmp_path):
    from click.testing import CliRunner

    from simrun.cli import cli
    from conftest import ROOT

    db = tmp_path / "e.db"
    result = CliRunner().invoke(cli, [str(ROOT / "scenarios/election.yaml"), "--db", str(db), "--set", "sampler.with.states=[VT, WY]", "--set", "sampler.with.per_state=2"], catch_exceptions=False)
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
