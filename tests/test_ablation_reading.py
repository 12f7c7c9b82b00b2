"""Reading an ablation study: the shift needs no truth, replicates widen intervals, diagnostics say what to distrust."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, ROOT, TOWNS_SWEEP, sweep_towns

from simrun.cli import cli
from simrun.compare import compare, overall
from simrun.diagnostics import diagnose, position_disagreement
from simrun.resample import Answers, draws
from simrun.scenario import ScenarioError, load_scenario
from simrun.store import Store

SWEEP = TOWNS_SWEEP


def by_label(result):
    return {v["label"]: v for v in result["variants"]}


def shares(store, run_id, question="q1"):
    return store.results.aggregates(run_id, question)["ALL"]


def test_the_shift_is_the_tvd_of_answer_shares_with_an_interval_and_a_noise_floor(registry, tmp_path):
    store, sweep_id = sweep_towns(
        registry,
        tmp_path / "s.db",
        "ablation={use: swap, with: {field: simulator.with, options: {biased: {first_option_bias: 0.9}, same: {}}}}",
        "sampler.with.per_town=40",
    )
    result = by_label(compare(store, registry, sweep_id, reps=100))
    base = shares(store, result["baseline"]["run_id"])
    biased = result["biased"]["shift"]["figures"]
    expected = 0.5 * sum(abs(shares(store, result["biased"]["run_id"])[k] - base[k]) for k in base)
    assert biased["tvd.q1"]["value"] == pytest.approx(expected) and biased["tvd"]["value"] == pytest.approx(expected)
    assert biased["tvd"]["ci"][0] <= expected <= biased["tvd"]["ci"][1]
    assert expected > biased["tvd"]["noise"], "a simulator that always says A moves answers beyond chance"
    option, change, interval = result["biased"]["shift"]["moved"]["q1"][0]
    assert option == "Yes" and change == pytest.approx(shares(store, result["biased"]["run_id"])["A"] - base["A"])
    assert interval[0] <= change <= interval[1]
    same = result["same"]["shift"]["figures"]["tvd"]
    assert same["value"] == 0 and same["ci"] == [0, 0] and same["noise"] == 0, "unchanged prompts, unchanged answers"
    assert set(result["biased"]["shift"]["strata"]["tvd.q1"]) == {"Ashford", "Brook"}
    assert result["biased"]["metrics"]["shift.tvd"]["value"] == pytest.approx(expected)


def test_the_shift_of_answers_that_move_at_random_is_within_the_noise(registry, tmp_path):
    # another system text gives the hash simulator fresh answers for every persona, drawn alike: no real effect
    reworded = (
        "ablation={use: swap, with: {field: prompt.system, options: {reworded: 'You are this person. {persona}'}}}"
    )
    store, sweep_id = sweep_towns(registry, tmp_path / "s.db", "sampler.with.per_town=40", reworded)
    figure = by_label(compare(store, registry, sweep_id, reps=200))["reworded"]["shift"]["figures"]["tvd"]
    assert 0 < figure["value"] < figure["noise"]


def test_compare_ranks_variants_by_shift_with_option_text(invoke, tmp_path):
    db = tmp_path / "s.db"
    swap = "ablation={use: swap, with: {field: simulator.with, options: {biased: {first_option_bias: 0.9}}}}"
    assert invoke("sweep", str(SWEEP), "--quiet", "--set", swap, db=db).exit_code == 0
    sweep_id = json.loads(invoke("runs", "--json", db=db).output)[0]["sweep_id"]
    text = " ".join(invoke("compare", sweep_id, "--reps", "50", db=db).output.split())
    assert "shift: how far each variant moved answers from 'baseline'" in text
    assert "q1: Yes +" in text and "noise floor" in text


def test_replicates_run_each_variant_under_k_seeds_and_widen_intervals(invoke, registry, tmp_path):
    db = tmp_path / "r.db"
    result = invoke("sweep", str(SWEEP), "--quiet", "--seeds", "3", db=db)
    assert result.exit_code == 0, result.output
    sweep_id = result.output.strip()
    store = Store(db, read_only=True)
    runs = store.sweeps.runs(sweep_id)
    assert {label: [r["seed"] for r in records] for label, records in runs.items()} == {
        "baseline": [7, 8, 9],
        "without age": [7, 8, 9],
        "without generation": [7, 8, 9],
    }
    compared = compare(store, registry, sweep_id, reps=200)
    assert compared["replicates"] == 3 and all(v["paired"] for v in compared["variants"])
    single = [overall(store, r["id"])["mean_share.share"] for r in runs["baseline"]]
    pooled = by_label(compared)["baseline"]["metrics"]["mean_share.share"]
    assert min(single) <= pooled["value"] <= max(single)
    assert pooled["ci"][0] <= min(single) and max(single) <= pooled["ci"][1], "every seed's value is inside"
    text = " ".join(invoke("compare", sweep_id, "--reps", "50", db=db).output.split())
    assert "x 3 seed(s); seeds resampled too" in text


def test_two_stage_resampling_draws_seeds_too(registry, tmp_path):
    store, sweep_id = sweep_towns(registry, tmp_path / "s.db", "ablation.replicates=3")
    seeds = [Answers(store, r["id"]) for r in store.sweeps.runs(sweep_id)["baseline"]]
    drawn = draws(np.random.default_rng(0), seeds, 100)
    picked = [sorted(k for k, _ in copies) for copies in drawn]
    assert all(len(p) == 3 for p in picked) and any(len(set(p)) < 3 for p in picked), "seeds drawn with replacement"
    twice = next(copies for copies in drawn if len({k for k, _ in copies}) < 3)
    counts = [c for k, c in twice if [j for j, _ in twice].count(k) > 1]
    assert not np.array_equal(counts[0], counts[1]), "a seed drawn twice gets two draws of its personas"
    assert all(c.sum() == 24 for copies in drawn for _, c in copies), "each copy has as many personas as its seed"


def test_variants_of_other_people_are_compared_unpaired(registry, tmp_path):
    store, sweep_id = sweep_towns(
        registry, tmp_path / "u.db", "ablation={use: grid, with: {fields: {sampler.with.per_town: [16]}}}"
    )
    other = by_label(compare(store, registry, sweep_id, reps=50))["sampler.with.per_town=16"]
    assert not other["paired"] and other["personas"] == 32
    figure = other["shift"]["figures"]["tvd"]
    assert figure["value"] > 0 and figure["ci"] is not None and "noise" not in figure
    assert other["metrics"]["mean_share.share"]["diff_ci"] is None, "no paired interval for other people"


def test_failed_answers_are_warned_of_and_not_counted_as_a_shift(registry, tmp_path):
    # a variant whose prompts did not change answers as the baseline did; then 4 of its calls are marked failed
    same = "ablation={use: grid, with: {fields: {metrics.mean_share.option: [B]}}}"
    store, sweep_id = sweep_towns(registry, tmp_path / "f.db", same)
    run_id = store.sweeps.runs(sweep_id)["metrics.mean_share.option=B"][0]["id"]
    store.db.execute(
        "update answers set error = 'boom', reply = ? where run = ? and question_id = 'q1' and persona_id < 4",
        [json.dumps({"distribution": {}, "invalid": 1.0, "error": "boom"}), store.runs.number(run_id)],
    )
    store.db.conn.commit()
    compared = by_label(compare(store, registry, sweep_id, reps=20))
    broken = compared["metrics.mean_share.option=B"]
    kept = [r for r in store.answers.rows(run_id) if r["question_id"] == "q1" and r["error"] is None]
    total = sum(r["weight"] for r in kept)
    mean = {k: sum(r["weight"] * r["distribution"][k] for r in kept) / total for k in "ABC"}
    base = shares(store, compared["baseline"]["run_id"])
    assert broken["failed_answers"] == 4
    assert broken["shift"]["figures"]["tvd.q1"]["value"] == pytest.approx(
        0.5 * sum(abs(mean[k] - base[k]) for k in base)
    )
    assert any(w.startswith("failed answers: 4 of 24 calls failed") for w in broken["diagnostics"]["warnings"])


def test_an_old_log_is_not_told_it_asked_one_option_order(tmp_path, invoke):
    path = tmp_path / "m007.db"
    shutil.copy(ROOT / "tests" / "data" / "runlog-m007.db", path)  # towns in both option orders, before m008
    [run] = Store(path, read_only=True).runs.all()
    checks = diagnose(Store(path, read_only=True), run["id"])
    assert checks.orders == 2 and not any(w.startswith("position bias not measured") for w in checks.warnings)


def test_a_bad_replicates_value_is_a_scenario_error(registry):
    with pytest.raises(ScenarioError, match="replicates"):
        load_scenario(SWEEP, registry, ["ablation.replicates=0"])


@pytest.mark.parametrize(
    ("orders", "replies", "expected"),
    [
        ([[0, 1, 2], [2, 1, 0]], [{"A": 1.0, "B": 0, "C": 0}, {"A": 1.0, "B": 0, "C": 0}], (1.0, 0.0)),  # place
        ([[0, 1, 2], [2, 1, 0]], [{"A": 1.0, "B": 0, "C": 0}, {"A": 0, "B": 0, "C": 1.0}], (0.0, 1.0)),  # content
        ([[0, 1], [1, 0]], [{"A": 0.5, "B": 0.5}, {"A": 0.5, "B": 0.5}], (0.0, 0.0)),  # indifferent
    ],
)
def test_position_disagreement_reads_replies_by_content_and_by_place(orders, replies, expected):
    labels = ["A", "B", "C"][: len(orders[0])]
    assert position_disagreement(labels, orders, replies) == pytest.approx(expected)


def run_towns(invoke, db, *overrides):
    result = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", *(a for o in overrides for a in ("--set", o)), db=db)
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_position_bias_and_persona_effect_are_measured_and_warned_of(invoke, tmp_path):
    db = tmp_path / "d.db"
    first = run_towns(invoke, db, "prompt.option_order=both", "simulator.with.first_option_bias=0.8")
    content = run_towns(invoke, db, "prompt.option_order=both", "simulator={use: by_content}")
    store = Store(db, read_only=True)
    biased, read = diagnose(store, first), diagnose(store, content)
    assert biased.position_bias == pytest.approx(1.0) and biased.position_answers == 48
    assert read.position_bias == pytest.approx(0.0)
    assert biased.persona_effect == pytest.approx(0.0) and read.persona_effect > 0.05
    shown = " ".join(invoke("show", first, db=db).output.split())
    assert "! position bias: answers follow where an option is listed" in shown
    assert "! personas ≈ no persona" in shown and "! few personas: 2 of 2 strata have fewer than 30" in shown
    clean = " ".join(invoke("show", content, db=db).output.split())
    assert "position bias 0.00" in clean and "! position bias" not in clean and "personas ≈" not in clean


def test_enough_personas_and_one_order_say_so(invoke, tmp_path):
    db = tmp_path / "n.db"
    run_id = run_towns(invoke, db, "sampler.with.per_town=30")
    result = json.loads(invoke("show", run_id, "--json", db=db).output)["diagnostics"]
    assert result["personas_per_stratum"] == {"Ashford": 30, "Brook": 30} and result["position_bias"] is None
    assert [w.split(":")[0] for w in result["warnings"]] == ["position bias not measured"]


def test_show_names_options_personas_and_what_all_means(invoke, tmp_path):
    db = tmp_path / "o.db"
    run_id = run_towns(invoke, db, "metrics={}")
    text = " ".join(invoke("show", run_id, db=db).output.split())
    assert "A. Yes" in text and "C. Not sure" in text and "personas" in text
    assert "ALL: the population, personas weighted by the people they stand for" in text


def test_a_typo_in_metric_is_an_error_with_the_nearest_names(invoke, tmp_path):
    db = tmp_path / "t.db"
    sweep_id = invoke("sweep", str(SWEEP), "--quiet", db=db).output.strip()
    result = invoke("compare", sweep_id, "--metric", "mean_shar", db=db)
    assert (
        result.exit_code == 2 and "did you mean mean_share" in result.output and "It has: mean_share" in result.output
    )


def test_show_and_compare_tell_a_run_from_a_sweep(invoke, tmp_path):
    db = tmp_path / "i.db"
    sweep_id = invoke("sweep", str(SWEEP), "--quiet", db=db).output.strip()
    run_id = json.loads(invoke("runs", "--json", db=db).output)[0]["id"]
    shown = invoke("show", sweep_id, db=db)
    assert shown.exit_code == 2 and f"'{sweep_id}' is a sweep, not a run: `simrun compare {sweep_id}`" in shown.output
    compared = invoke("compare", run_id, db=db)
    assert compared.exit_code == 2 and f"'{run_id}' is a run, not a sweep" in compared.output


@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_sweep_whose_plugins_are_not_loaded_is_one_line(invoke, tmp_path, command):
    db = tmp_path / "p.db"
    sweep_id = invoke("sweep", str(SWEEP), "--quiet", db=db).output.strip()
    args = [command, sweep_id, "--db", str(db)] + (["-o", str(tmp_path / "r.html")] if command == "report" else [])
    result = CliRunner().invoke(cli, args)  # no --plugins-dir: the example plugin is not loaded
    assert result.exit_code == 2
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "no sampler named 'towns'" in result.output and "--plugins-dir" in result.output


def test_the_persona_shift_sees_moves_that_cancel_in_the_population(registry, tmp_path):
    # another system text gives each persona a fresh answer, each its own way: every persona's answer moves while
    # the population's shares hardly do
    reworded = (
        "ablation={use: swap, with: {field: prompt.system, options: {reworded: 'You are this person. {persona}'}}}"
    )
    store, sweep_id = sweep_towns(registry, tmp_path / "p.db", reworded, "sampler.with.per_town=40")
    figures = by_label(compare(store, registry, sweep_id, reps=50))["reworded"]["shift"]["figures"]
    assert figures["persona"]["value"] > 3 * figures["tvd"]["value"]
    assert figures["persona"]["ci"][0] <= figures["persona"]["value"] <= figures["persona"]["ci"][1]


@pytest.mark.parametrize(
    ("attributes", "said"),
    [
        ("[agee]", "no persona has an attribute 'agee'; did you mean 'age'?"),
        ("[town]", "'town' is never shown in the prompt"),
    ],
)
def test_an_attribute_that_cannot_change_the_prompt_is_refused(invoke, attributes, said):
    result = invoke(
        "validate",
        str(TOWNS_SWEEP),
        "--set",
        f"ablation.with.attributes={attributes}",
        "--set",
        "prompt.exclude=[town]",
    )
    assert result.exit_code == 2 and said in " ".join(result.output.split())


def test_a_csv_cell_with_unquoted_commas_is_named(tmp_path):
    bank = tmp_path / "bank.csv"
    bank.write_text("id,text,options\nq1,Like it?,Yes, No, Maybe\n")
    result = CliRunner().invoke(cli, ["questions", str(bank)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "bank.csv:2: 2 more cell(s) than the header has columns" in said
    assert "needs the cell in double quotes" in said


def test_seeds_show_each_seeds_shift_and_run_warns_of_an_ablation(invoke, tmp_path):
    db = tmp_path / "k.db"
    sweep_id = invoke("sweep", str(TOWNS_SWEEP), "--quiet", "--seeds", "2", db=db).output.strip()
    text = " ".join(invoke("compare", sweep_id, "--reps", "20", db=db).output.split())
    assert "by seed (pts)" in text and "24 personas per seed" in text
    compared = json.loads(invoke("compare", sweep_id, "--json", "--reps", "20", db=db).output)
    tvd = by_label(compared)["without age"]["shift"]["figures"]["tvd"]
    assert len(tvd["per_seed"]) == 2 and tvd["value"] == pytest.approx(sum(tvd["per_seed"]) / 2)
    ran = invoke("run", str(TOWNS_SWEEP), "--quiet", db=db)
    assert ran.exit_code == 0 and "has an ablation block" in ran.output and "simrun sweep" in ran.output
