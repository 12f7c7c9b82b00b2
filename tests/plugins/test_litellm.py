"""litellm against a real OpenAI-compatible server on 127.0.0.1 (llama-cpp-python's, with
the embedded model), directly and through a proxy that injects 429s, 500s and garbage."""

import json
import os
import subprocess
import sys

import pytest
from bounded_schema import BOUNDED_SCHEMA, TEMPTING_PROMPTS
from conftest import EXAMPLE
from servers import FaultProxy, start_llama_server

from simrun import bundled_model
from simrun.engine import Engine
from simrun.models import Prompt
from simrun.plugins.simulators.embedded import EmbeddedSimulator
from simrun.plugins.simulators.litellm_api import LiteLLMSimulator, RateLimiter
from simrun.scenario import load_scenario
from simrun.store import Store

SECRET = "sk-test-never-stored-4242"


@pytest.fixture(scope="module")
def server():
    proc, base = start_llama_server(bundled_model())
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def prompt(question: str) -> Prompt:
    return Prompt(
        persona_id=0,
        question_id="q",
        system="You are a 40-year-old nurse from Ohio.",
        user=f"{question}\n\nA. Yes\nB. No\n\nAnswer with the letter of one option only.",
        labels=["A", "B"],
    )


def simulator(base: str, **config) -> LiteLLMSimulator:
    return LiteLLMSimulator(
        LiteLLMSimulator.Config(
            model="openai/smollm2", base_url=base, api_key_env="SIMRUN_TEST_KEY", backoff_s=0.01, **config
        )
    )


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("SIMRUN_TEST_KEY", SECRET)


def test_logprobs_agree_with_the_embedded_backend(server):
    question = prompt("Do you like your job?")
    [remote] = simulator(server).answer([question])
    local = EmbeddedSimulator()
    [direct] = local.answer([question])
    local.close()
    assert set(remote.distribution) == {"A", "B"} and remote.error is None
    # the same model and chat template: top-20 log-probabilities vs the full vocabulary
    assert remote.distribution["A"] == pytest.approx(direct.distribution["A"], abs=0.02)


def test_samples_mode_counts_k_answers(server):
    sim = simulator(server, mode="samples", samples=4, temperature=0.95)
    [answer] = sim.answer([prompt("Do you own a dog?")])
    assert answer.error is None
    counted = [round(p * 4 * (1 - answer.invalid)) for p in answer.distribution.values()]
    assert sum(counted) + round(answer.invalid * 4) == 4
    assert sim.stats()["requests"] == 4


def run_towns_on(base: str, db, **config):
    registry_overrides = [
        "simulator.use=litellm",
        "simulator.with.model=openai/smollm2",
        f"simulator.with.base_url={base}",
        "simulator.with.api_key_env=SIMRUN_TEST_KEY",
        "simulator.with.backoff_s=0.01",
        "sampler.with.per_town=4",
    ]
    registry_overrides += [f"simulator.with.{k}={v}" for k, v in config.items()]
    from simrun.registry import load_registry

    registry = load_registry(EXAMPLE)
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry, registry_overrides)
    store = Store(db)
    return store, Engine(registry, store).run(loaded)


def test_faults_are_retried_counted_and_the_run_completes(server, tmp_path):
    proxy = FaultProxy(server, ["ok", "429", "garbage", "ok", "500", "empty", "ok"])
    try:
        store, run_id = run_towns_on(proxy.url, tmp_path / "f.db", max_concurrency=3)
    finally:
        proxy.close()
    assert store.runs.get(run_id)["status"] == "finished"
    rows = list(store.answers.rows(run_id, prompts=True))
    assert len(rows) == 16 and all(r["invalid"] < 1 for r in rows)
    stats = json.loads(store.runs.get(run_id)["simulator_stats"])
    assert stats["retries"] == len(proxy.faults) > 0
    assert stats["fault:RateLimitError"] == proxy.faults.count("429")
    assert sum(v for k, v in stats.items() if k.startswith("fault:")) == len(proxy.faults)
    assert stats["fault:InternalServerError"] >= proxy.faults.count("500")  # litellm files a non-JSON 200 here too
    assert stats.get("failed", 0) == 0
    # the key was sent to the server, and is nowhere in the run log
    assert set(proxy.auth) == {f"Bearer {SECRET}"}
    for path in tmp_path.glob("f.db*"):
        assert SECRET.encode() not in path.read_bytes()


def test_a_server_that_always_fails_gives_invalid_answers_not_a_crash(server, tmp_path):
    proxy = FaultProxy(server, ["500"])
    try:
        store, run_id = run_towns_on(proxy.url, tmp_path / "d.db", max_retries=2)
    finally:
        proxy.close()
    rows = list(store.answers.rows(run_id, prompts=True))
    assert len(rows) == 16 and all(r["invalid"] == 1.0 for r in rows)
    assert all(
        r["error"].startswith("InternalServerError after 2 retries: ") and "injected 500" in r["error"] for r in rows
    )
    assert store.answers.errors(run_id)[0] == 16
    stats = json.loads(store.runs.get(run_id)["simulator_stats"])
    assert stats["failed"] == 18, "16 answers and the 2 questions asked with no persona (the no_persona baseline)"
    [(fault, count)] = [(k, v) for k, v in stats.items() if k.startswith("baseline_no_persona_failed:")]
    assert fault.startswith("baseline_no_persona_failed:InternalServerError after 2 retries") and count == 2
    assert store.db["llm_cache"].count == 0, "failures are not cached: a rerun asks again"


def test_a_key_echoed_by_the_server_is_masked_in_the_run_log_and_on_screen(server, tmp_path):
    proxy = FaultProxy(server, ["401echo"])
    db = tmp_path / "k.db"
    args = [
        "run",
        str(EXAMPLE / "towns.yaml"),
        "--db",
        str(db),
        "--plugins-dir",
        str(EXAMPLE),
        "--quiet",
        "--set",
        "simulator.use=litellm",
        "--set",
        "simulator.with.model=openai/smollm2",
        "--set",
        f"simulator.with.base_url={proxy.url}",
        "--set",
        "simulator.with.api_key_env=SIMRUN_TEST_KEY",
        "--set",
        "sampler.with.per_town=2",
    ]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "simrun", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "SIMRUN_TEST_KEY": SECRET},
        )
    finally:
        proxy.close()
    assert proxy.faults and result.returncode == 1
    assert "AuthenticationError" in result.stderr and "***" in result.stderr and "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr
    [run] = Store(db, read_only=True).runs.all()
    assert run["status"] == "failed" and "***" in run["error"] and SECRET not in run["error"]
    for path in tmp_path.glob("k.db*"):
        assert SECRET.encode() not in path.read_bytes()


def test_missing_api_key_is_a_clear_error(server, monkeypatch):
    monkeypatch.delenv("SIMRUN_TEST_KEY")
    with pytest.raises(RuntimeError, match="SIMRUN_TEST_KEY"):
        simulator(server).answer([prompt("Do you cook?")])


def test_generate_returns_schema_valid_json_after_a_garbage_reply(server):
    schema = {"type": "object", "properties": {"hobby": {"type": "string"}}, "required": ["hobby"]}
    proxy = FaultProxy(server, ["garbage", "ok"])
    try:
        sim = simulator(proxy.url, structured_output="json_object")
        [text] = sim.generate(["Name one hobby, as JSON."], max_tokens=60, json_schema=schema)
    finally:
        proxy.close()
    assert isinstance(json.loads(text)["hobby"], str)
    assert sim.stats()["retries"] == 1 and proxy.faults == ["garbage"]


def test_generate_keeps_every_bound_on_llama_cpp_server_first_time(server):
    """llama-cpp-python's server ignores integer bounds; sent as enums they hold without a single retry."""
    import jsonschema

    sim = simulator(server, structured_output="json_object", max_retries=0)
    replies = sim.generate(TEMPTING_PROMPTS, max_tokens=160, json_schema=BOUNDED_SCHEMA)
    for reply in replies:
        jsonschema.validate(json.loads(reply), BOUNDED_SCHEMA)
    counts = sim.stats()
    assert counts["requests"] == len(TEMPTING_PROMPTS) and not any(k.startswith(("fault:", "retries")) for k in counts)


def test_generate_gives_up_with_an_empty_text_when_replies_never_fit(server):
    schema = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 500}}, "required": ["age"]}
    sim = simulator(server, structured_output="none", max_retries=2)
    [text] = sim.generate(["Say hello."], max_tokens=5, json_schema=schema)
    assert text == ""
    assert sim.stats()["failed"] == 1 and sim.stats()["fault:MalformedReply"] == 3


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_rate_limiter_spaces_requests_and_tokens():
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=600, clock=clock)  # 1 request/s, 10 tokens/s, bursts up to a minute's worth
    assert all(limiter.delay(1) == 0 for _ in range(60))
    assert limiter.delay(1) == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.delay(1) == 0
    tokens = RateLimiter(rpm=None, tpm=600, clock=clock)
    assert tokens.delay(600) == 0
    assert tokens.delay(50) == pytest.approx(5.0)
    clock.now += 5.0
    assert tokens.delay(50) == 0


def test_the_cost_ledger_counts_tokens_and_prices_them(server, tmp_path, invoke):
    priced, price_id = run_towns_on(
        server, tmp_path / "c.db", input_cost_per_token="0.000001", output_cost_per_token="0.000002"
    )
    stats = json.loads(priced.runs.get(price_id)["simulator_stats"])
    assert stats["prompt_tokens"] > 16 * 20 and stats["completion_tokens"] >= 16  # 16 one-token answers
    assert stats["cost_microusd"] == stats["prompt_tokens"] + 2 * stats["completion_tokens"]
    shown = invoke("show", price_id, db=tmp_path / "c.db").output
    cost = (stats["prompt_tokens"] + 2 * stats["completion_tokens"]) / 1e6
    assert f"API cost: ${cost:,.4f} for {stats['prompt_tokens']:,} prompt" in shown
    unpriced, unpriced_id = run_towns_on(server, tmp_path / "u.db")  # a local model litellm has no price for
    stats = json.loads(unpriced.runs.get(unpriced_id)["simulator_stats"])
    # 16 answers, and each of the 2 questions asked once with no persona (the no_persona baseline)
    assert stats["calls_unpriced"] == stats["requests"] == 18 and "cost_microusd" not in stats
    shown = " ".join(invoke("show", unpriced_id, db=tmp_path / "u.db").output.split())  # as one line, unwrapped
    assert "18 call(s) of a model with no known price not counted" in shown
