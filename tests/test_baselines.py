"""Baselines beside every score: uniform answers, and the model asked with no persona, scored by the same metric."""

from __future__ import annotations

import json

import pytest
from conftest import EXAMPLE, ROOT

from simrun import data
from simrun.engine import Engine
from simrun.models import Prompt
from simrun.plugins.metrics.election import read_truth
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import Store

ELECTION = ROOT / "scenarios" / "election.yaml"


def election_run(tmp_path, *overrides: str) -> tuple[Store, str, list[str]]:
    """The README's election scenario on the instant simulator, 2 personas per state; (store, run, calls asked)."""
    registry = load_registry(EXAMPLE)
    log = tmp_path / "calls.log"
    common = ["sampler.with.per_state=2", "simulator.use=instant", f"simulator.with.call_log={log}"]
    store = Store(tmp_path / "b.db")
    run_id = Engine(registry, store).run(load_scenario(ELECTION, registry, [*common, *overrides]))
    calls = log.read_text().split("\x1e")[:-1] if log.exists() else []
    return store, run_id, calls


def scores(store: Store, run_id: str) -> dict[str, dict[str, float]]:
    by_metric: dict[str, dict[str, float]] = {}
    for m in store.results.metrics(run_id):
        if not m["stratum"]:
            by_metric.setdefault(m["metric"], {})[m["name"]] = m["value"]
    return by_metric


def test_uniform_answers_score_what_a_coin_flip_forecast_would(tmp_path):
    store, run_id, _ = election_run(tmp_path)
    uniform = scores(store, run_id)["election@uniform"]
    truth = read_truth(data.path("president_2024.csv"))
    shares = [t["dem_votes"] / (t["dem_votes"] + t["rep_votes"]) for t in truth.values()]
    assert uniform["national_dem_share"] == pytest.approx(0.5)
    assert uniform["mae_points"] == pytest.approx(100 * sum(abs(0.5 - s) for s in shares) / len(shares))
    assert uniform["invalid_rate"] == 0.0
    # a coin flip calls no state: every one is tied, no electoral vote goes to either party
    assert uniform["states_called"] == 0 and uniform["states_tied"] == uniform["states"] == 51
    assert uniform["dem_electoral_votes"] == uniform["rep_electoral_votes"] == 0


def test_the_no_persona_baseline_asks_each_question_once_with_an_empty_persona_and_caches_it(tmp_path):
    store, run_id, calls = election_run(tmp_path, "prompt.option_order=both")
    loaded = load_scenario(ELECTION, load_registry(EXAMPLE), ["prompt.option_order=both"])
    spec, [question] = loaded.scenario.prompt, loaded.scenario.questions
    empty = spec.system.format(persona="")
    texts = json.loads(store.db.execute("select users from run_questions where run_id = ?", [run_id]).fetchone()[0])
    assert sorted(c for c in calls if c.removeprefix(empty) in texts["users"]) == sorted(
        empty + u for u in texts["users"]
    )
    assert len(calls) == 102 * 2 + 2  # every persona in both orders, then the empty persona in both

    # the baseline is the instant simulator's answer to the empty-persona prompts, both orders averaged
    registry = load_registry(EXAMPLE)
    instant = registry.get("simulator", "instant").cls()
    labels = texts["labels"]
    asked = [
        Prompt(persona_id=-1, question_id=question.id, system=empty, user=u, labels=labels) for u in texts["users"]
    ]
    [first, second] = instant.answer(asked)
    dem = (first.distribution["A"] + second.distribution["B"]) / 2
    rep = (first.distribution["B"] + second.distribution["A"]) / 2
    no_persona = scores(store, run_id)["election@no_persona"]
    assert no_persona["national_dem_share"] == pytest.approx(dem / (dem + rep))

    again = Engine(registry, store).run(
        load_scenario(
            ELECTION,
            registry,
            ["sampler.with.per_state=2", "simulator.use=instant", "prompt.option_order=both"],
        )
    )
    assert scores(store, again)["election@no_persona"] == no_persona  # from the cache, nothing asked


def test_no_baselines_when_the_scenario_says_none_or_no_metric_needs_them(tmp_path, invoke):
    store, run_id, calls = election_run(tmp_path, "baselines=[]")
    assert set(scores(store, run_id)) == {"election"} and len(calls) == 102
    towns = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=tmp_path / "t.db")
    shown = json.loads(invoke("show", towns.output.strip(), "--json", db=tmp_path / "t.db").output)
    assert shown["baselines"] == {}  # mean_share declares no baselines: nothing asked, nothing stored


def test_show_and_report_put_each_baseline_beside_the_personas_score(tmp_path, invoke):
    db = tmp_path / "s.db"
    run = invoke(
        "run", str(ELECTION), "--set", "sampler.with.per_state=1", "--set", "simulator.use=instant", "--quiet", db=db
    )
    run_id = run.output.strip()
    shown = json.loads(invoke("show", run_id, "--json", db=db).output)
    assert set(shown["baselines"]) == {"uniform", "no_persona"}
    assert set(shown["baselines"]["uniform"]) == set(shown["metrics"])
    text = invoke("show", run_id, db=db).output
    assert "personas" in text and "no persona" in text and "uniform" in text
    report = tmp_path / "r.html"
    assert invoke("report", run_id, "-o", str(report), db=db).exit_code == 0
    assert "<th>no_persona</th>" in report.read_text() and "<th>uniform</th>" in report.read_text()


def test_an_unknown_baseline_is_refused_at_its_line(invoke):
    result = invoke("validate", str(ELECTION), "--set", "baselines=[uniform, coin]")
    assert result.exit_code == 2 and "baselines.1" in result.output and "no_persona" in result.output


def test_a_baseline_the_model_cannot_answer_is_left_out_and_the_run_finishes(tmp_path):
    from simrun import failed_answer

    registry = load_registry(EXAMPLE)
    instant = registry.get("simulator", "instant").cls

    class NeedsAPersona(instant):
        name = "needs_persona"

        def answer(self, prompts):
            return [
                failed_answer(p.labels, "HTTP 400: empty persona") if p.persona_id < 0 else a
                for p, a in zip(prompts, super().answer(prompts))
            ]

    registry.add("simulator", "test", "test", "", NeedsAPersona)
    store = Store(tmp_path / "f.db")
    overrides = ["sampler.with.per_state=1", "simulator.use=needs_persona", "metrics.wasserstein={}"]
    overrides += ["questions.0.truth=[0.5, 0.5]"]
    run_id = Engine(registry, store).run(load_scenario(ELECTION, registry, overrides))
    assert store.runs.get(run_id)["status"] == "finished"
    assert {m for m in scores(store, run_id)} == {"election", "election@uniform", "wasserstein", "wasserstein@uniform"}
    stats = json.loads(store.runs.get(run_id)["simulator_stats"])
    assert stats == {"baseline_no_persona_failed:HTTP 400: empty persona": 1}


def test_an_earlier_election_scores_as_the_naive_forecast_beside_the_personas(tmp_path):
    truth = read_truth(data.path("president_2024.csv"))
    earlier = tmp_path / "earlier [swapped].csv"  # a made-up earlier election: every state's two parties swapped
    earlier.write_text(
        "state,dem_votes,rep_votes,electoral_votes\n"
        + "".join(f"{s},{t['rep_votes']},{t['dem_votes']},{t['electoral_votes']}\n" for s, t in truth.items())
    )
    store, run_id, _ = election_run(tmp_path, f"metrics.election.forecast={earlier}")
    forecast = scores(store, run_id)["election@forecast"]
    shares = [t["dem_votes"] / (t["dem_votes"] + t["rep_votes"]) for t in truth.values()]
    assert forecast["mae_points"] == pytest.approx(100 * sum(abs(1 - 2 * s) for s in shares) / len(shares))
    assert forecast["states_called"] == 0 and forecast["invalid_rate"] == 0.0
    same = tmp_path / "same.csv"
    same.write_text(data.path("president_2024.csv").read_text())
    (tmp_path / "again").mkdir()
    store, run_id, _ = election_run(tmp_path / "again", f"metrics.election.forecast={same}")
    assert scores(store, run_id)["election@forecast"]["mae_points"] == pytest.approx(0.0, abs=1e-9)
    assert "election@uniform" in scores(store, run_id)  # the scenario's baselines still come too


def test_a_baseline_a_metric_cannot_build_never_fails_the_run(tmp_path, monkeypatch):
    from simrun.plugins.metrics.election import ElectionMetric

    def unreadable(self, run):
        raise OSError("the forecast file went away")

    monkeypatch.setattr(ElectionMetric, "own_baselines", unreadable)
    store, run_id, _ = election_run(tmp_path)
    assert store.runs.get(run_id)["status"] == "finished" and "election@uniform" in scores(store, run_id)
    assert any(
        k.startswith("baseline_own_unbuilt:election") for k in json.loads(store.runs.get(run_id)["simulator_stats"])
    )


def test_compare_puts_each_variants_baselines_beside_its_score(invoke):
    swap = "ablation={use: swap, with: {field: prompt.style, options: {table: table, first_person: first_person}}}"
    common = ["--set", "sampler.with.per_state=1", "--set", "simulator.use=instant", "--set", swap]
    assert invoke("sweep", str(ELECTION), *common, "--quiet").exit_code == 0
    sweep_id = json.loads(invoke("runs", "--json").output)[0]["sweep_id"]
    compared = json.loads(invoke("compare", sweep_id, "--json").output)
    truth = read_truth(data.path("president_2024.csv"))
    shares = [t["dem_votes"] / (t["dem_votes"] + t["rep_votes"]) for t in truth.values()]
    for variant in compared["variants"]:
        uniform = variant["baselines"]["uniform"]["election.mae_points"]
        assert uniform == pytest.approx(100 * sum(abs(0.5 - s) for s in shares) / len(shares))
        assert "election.mae_points" in variant["baselines"]["no_persona"]
    table = " ".join(invoke("compare", sweep_id, "--metric", "election.mae_points").output.split())
    assert "uniform" in table and "no_person" in table  # column headers (a narrow terminal wraps them)
