"""Sweeps: variants as child runs, shared personas, cached calls, resume after a crash, comparison."""

import functools
import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import EXAMPLE, TOWNS_SWEEP, sweep_towns

from simrun.compare import compare
from simrun.plugins.ablations.grid import GridAblation
from simrun.plugins.ablations.swap import SwapAblation
from simrun.scenario import ScenarioError, load_scenario
from simrun.store import Store
from simrun.sweep import plan_sweep

SWEEP = TOWNS_SWEEP


def one_each(runs):
    """A sweep without replicates: each variant's one run."""
    assert all(len(records) == 1 for records in runs.values())
    return {label: records[0] for label, records in runs.items()}


def personas_of(store, run_id):
    return [(p.id, p.stratum, p.weight, p.attributes) for p in store.personas.rows(run_id)]


def test_variants_are_child_runs_sharing_the_baseline_personas(registry, tmp_path):
    log = tmp_path / "calls.log"
    store, sweep_id = sweep_towns(registry, tmp_path / "s.db", f"simulator.with.call_log={log}")
    runs = one_each(store.sweeps.runs(sweep_id))
    assert set(runs) == {"baseline", "without age", "without generation"}
    assert all(r["status"] == "finished" for r in runs.values())
    assert store.sweeps.get(sweep_id)["status"] == "finished"
    base = personas_of(store, runs["baseline"]["id"])
    assert len(base) == 24
    assert personas_of(store, runs["without age"]["id"]) == base
    prompts = {r["prompt"] for r in store.answers.rows(runs["without age"]["id"], prompts=True)}
    assert not any("age: " in p for p in prompts) and all("generation: " in p for p in prompts)
    calls = log.read_text().split("\x1e")[:-1]
    assert len(calls) == len(set(calls)), "no prompt is asked twice across variants"


def test_a_variant_with_unchanged_prompts_makes_no_model_calls(registry, tmp_path):
    log = tmp_path / "calls.log"
    store, sweep_id = sweep_towns(
        registry,
        tmp_path / "s.db",
        f"simulator.with.call_log={log}",
        "ablation.use=grid",
        "ablation.with={fields: {metrics.mean_share.option: [B]}}",
    )
    calls = log.read_text().count("\x1e")
    runs = one_each(store.sweeps.runs(sweep_id))
    asked = len({r["prompt"] for r in store.answers.rows(runs["baseline"]["id"], prompts=True)})
    assert calls == asked + 1, "the personas' prompts, and the question once with no persona (then cached)"
    assert all(r["cached"] for r in store.answers.rows(runs["metrics.mean_share.option=B"]["id"], prompts=True))


def test_killed_sweep_finishes_on_rerun_without_redoing_work(tmp_path):
    db, log, flag = tmp_path / "k.db", tmp_path / "calls.log", tmp_path / "armed"
    flag.touch()
    args = [
        sys.executable,
        "-m",
        "simrun",
        "sweep",
        str(SWEEP),
        "--db",
        str(db),
        "--quiet",
        "--plugins-dir",
        str(EXAMPLE),
        "--set",
        f"simulator.with.call_log={log}",
        "--set",
        "simulator.with.kill_at_call=5",
        "--set",
        f"simulator.with.kill_flag={flag}",
    ]
    first = subprocess.run(args, capture_output=True, text=True)
    assert first.returncode == -signal.SIGKILL
    store = Store(db)
    [sweep_row] = list(store.db["sweeps"].rows)
    before = one_each(store.sweeps.runs(sweep_row["id"]))
    assert before["baseline"]["status"] == "finished" and before["without age"]["status"] == "running"

    second = subprocess.run(args, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == sweep_row["id"], "the same sweep is resumed, not a new one started"
    after = one_each(store.sweeps.runs(sweep_row["id"]))
    assert (
        after["baseline"]["id"] == before["baseline"]["id"]
        and after["without age"]["id"] == before["without age"]["id"]
    )
    assert all(r["status"] == "finished" for r in after.values())
    calls = log.read_text().split("\x1e")[:-1]
    assert len(calls) == len(set(calls)), "no completed model call is repeated"
    for run in after.values():
        assert store.runs.counts(run["id"])["answers"] == 24


def test_compare_gives_paired_intervals(registry, tmp_path):
    store, sweep_id = sweep_towns(registry, tmp_path / "c.db")
    result = compare(store, registry, sweep_id, reps=100)
    by_label = {v["label"]: v for v in result["variants"]}
    base = by_label["baseline"]["metrics"]["mean_share.share"]
    assert base["diff"] == 0 and base["diff_ci"] == [0.0, 0.0]
    assert base["ci"][0] <= base["value"] <= base["ci"][1]
    for label in ("without age", "without generation"):
        m = by_label[label]["metrics"]["mean_share.share"]
        assert by_label[label]["paired"]
        assert m["diff"] == pytest.approx(m["value"] - base["value"])
        assert m["diff_ci"][0] <= m["diff"] <= m["diff_ci"][1]


def test_compare_cli_json(invoke, tmp_path):
    db = tmp_path / "cli.db"
    result = invoke("sweep", str(SWEEP), "--quiet", db=db)
    assert result.exit_code == 0, result.output
    sweep_id = result.output.strip()
    out = json.loads(invoke("compare", sweep_id, "--json", "--reps", "50", db=db).output)
    assert [v["label"] for v in out["variants"]] == ["baseline", "without age", "without generation"]
    assert out["reps"] == 50
    text = invoke("compare", sweep_id, "--reps", "50", db=db).output
    assert "without age" in text and "95% interval" in text and "50 bootstrap resamples" in text


def test_a_sweep_without_ablation_is_a_clear_error(registry):
    loaded = load_scenario(EXAMPLE / "towns.yaml", registry)
    with pytest.raises(ScenarioError, match="a sweep needs an ablation"):
        plan_sweep(loaded, registry)


def test_a_variant_that_does_not_validate_names_the_variant(registry):
    loaded = load_scenario(SWEEP, registry, ["ablation.use=grid", "ablation.with={fields: {batch_size: [0]}}"])
    with pytest.raises(ScenarioError) as info:
        plan_sweep(loaded, registry)
    assert "[variant 'batch_size=0']" in info.value.render() and "batch_size" in info.value.render()


def test_swap_puts_each_option_in_place_with_the_chosen_baseline():
    swap = SwapAblation(
        SwapAblation.Config(
            field="simulator", options={"small": {"use": "embedded"}, "api": {"use": "litellm"}}, baseline="api"
        )
    )
    variants = list(swap.variants({"name": "s", "simulator": {"use": "x"}}))
    assert [label for label, _ in variants] == ["api", "small"]
    assert variants[1][1]["simulator"] == {"use": "embedded"}
    with pytest.raises(ValueError, match="not one of the options"):
        SwapAblation.Config(field="simulator", options={"a": 1}, baseline="b")


def test_grid_is_the_cartesian_product():
    grid = GridAblation(GridAblation.Config(fields={"seed": [1, 2], "prompt.style": ["table", "first_person"]}))
    variants = dict(grid.variants({"name": "s", "seed": 0}))
    assert len(variants) == 5 and variants["baseline"] == {"name": "s", "seed": 0}
    assert variants["seed=2, prompt.style=first_person"] == {
        "name": "s",
        "seed": 2,
        "prompt": {"style": "first_person"},
    }


def test_compare_survives_metrics_without_data(registry, tmp_path):
    """persona_text has no sentiment when no text is LLM-written: NaN, stored as NULL."""
    store, sweep_id = sweep_towns(registry, tmp_path / "n.db", "metrics={mean_share: {question: q1}, persona_text: {}}")
    result = compare(store, registry, sweep_id, reps=20)
    polarity = result["variants"][1]["metrics"]["persona_text.sentiment_polarity"]
    assert polarity == {"value": None, "ci": None, "diff": None, "diff_ci": None}
    assert result["no_interval"] == ["persona_text"] and result["smallest_stratum"] == 12


def test_a_tier_that_wrote_nothing_is_marked_in_show_compare_and_report(invoke, tmp_path):
    """The instant simulator's text is not JSON: the objective tier fails for every persona, and every view says so."""
    db = tmp_path / "t.db"
    tiers = (
        "ablation={use: swap, with: {field: enrichers, baseline: meta, options: "
        "{meta: [{use: generation}], objective: [{use: generation}, {use: objective_tabular, with: {attempts: 1}}]}}}"
    )
    result = invoke("sweep", str(SWEEP), "--quiet", "--set", tiers, db=db)
    assert result.exit_code == 0, result.output
    sweep_id = result.output.strip()
    compared = json.loads(invoke("compare", sweep_id, "--json", "--reps", "20", db=db).output)
    by_label = {v["label"]: v for v in compared["variants"]}
    assert by_label["meta"]["invalid_outputs"] == [] and by_label["meta"]["mostly_failed"] == []
    [failed] = by_label["objective"]["invalid_outputs"]
    assert failed == {
        "step": "objective",
        "invalid": 24,
        "personas": 24,
        "reason": "not JSON",
        "reason_count": 24,
        "threshold": 0.1,
        "share": 1.0,
        "mostly_failed": True,
    }
    text = " ".join(invoke("compare", sweep_id, "--reps", "20", db=db).output.split())
    assert text.count("(!") == 2 and "100%" in text  # its rows in the shift and metric tables are marked
    assert "objective: objective wrote nothing usable for 24 of 24 personas (100%), most often not JSON (24)" in text
    lenient = " ".join(invoke("compare", sweep_id, "--reps", "20", "--invalid-threshold", "1", db=db).output.split())
    assert "(! objective" not in lenient

    shown = " ".join(invoke("show", by_label["objective"]["run_id"], db=db).output.split())
    assert "objective wrote nothing usable for 24 of 24 personas (100%), most often not JSON (24) (over 10%" in shown
    assert "wrote nothing usable" not in invoke("show", by_label["meta"]["run_id"], db=db).output

    out = tmp_path / "sweep.html"
    assert invoke("report", sweep_id, "-o", str(out), "--reps", "20", db=db).exit_code == 0
    page = out.read_text()
    assert "<p class='warn'>objective: objective wrote nothing usable for 24 of 24 personas (100%)" in page
    assert "objective (! objective 100% invalid)" in page


def test_a_sweep_moved_to_another_executor_is_the_same_sweep(tmp_path):
    from simrun.store import Store

    store = Store(tmp_path / "s.db")
    scenario = {"name": "s", "ablation": {"use": "seeds"}}
    sweep_id = store.sweeps.create("s", "", scenario, scenario["ablation"], ["a", "b"])
    moved = {**scenario, "executor": {"use": "ray", "with": {"address": "10.0.0.5:6379"}}}
    assert store.sweeps.unfinished(moved) == sweep_id
    assert store.sweeps.unfinished({**scenario, "seed": 3}) is None  # anything else is another sweep


@pytest.mark.parametrize(
    "fields,left_out,variants",
    [
        ("{sampler.with.per_town: [6, 12, 24], seed: [7]}", "sampler.with.per_town=12, seed=7", 3),  # as written
        ("{prompt.style: [table, first_person]}", "prompt.style=table", 2),  # the default the file leaves unsaid
        ("{simulator.with.vary_by_repeat: [false, true]}", "simulator.with.vary_by_repeat=False", 2),  # a config's
    ],
)
def test_grid_runs_the_values_the_scenario_already_has_once_as_its_baseline(
    registry, invoke, fields, left_out, variants
):
    loaded = load_scenario(SWEEP, registry, ["ablation.use=grid", f"ablation.with={{fields: {fields}}}"])
    labels = [label for label, _ in plan_sweep(loaded, registry)]
    assert len(labels) == variants and labels[0] == "baseline" and left_out not in labels
    assert f"variant '{left_out}' runs exactly as 'baseline'" in loaded.notices[-1]
    said = invoke("validate", str(SWEEP), "--set", "ablation.use=grid", "--set", f"ablation.with={{fields: {fields}}}")
    assert said.exit_code == 0 and f"sweep: {variants} variants" in said.output and "not run twice" in said.output


def test_a_swap_option_equal_to_the_baseline_is_a_control_and_runs(registry):
    swap = "ablation={use: swap, with: {field: simulator.with, options: {same: {}, biased: {first_option_bias: 0.9}}}}"
    labels = [label for label, _ in plan_sweep(load_scenario(SWEEP, registry, [swap]), registry)]
    assert labels == ["baseline", "same", "biased"]


def answers_by_variant(store, sweep_id):
    keep = ("persona_id", "question_id", "distribution", "invalid", "prompt")
    return {
        label: [tuple(row[k] for k in keep) for row in store.answers.rows(record["id"], prompts=True)]
        for label, record in one_each(store.sweeps.runs(sweep_id)).items()
    }


def test_variants_run_side_by_side_give_the_answers_they_give_one_by_one(invoke, tmp_path):
    grid = ["--set", "ablation={use: grid, with: {fields: {seed: [8, 9, 10, 11]}}}"]
    grid += ["--set", "sampler.with.per_town=30"]
    one_by_one = invoke("sweep", str(SWEEP), "--quiet", *grid, db=tmp_path / "one.db")
    side_by_side = invoke("sweep", str(SWEEP), "--quiet", "--parallel", "3", *grid, db=tmp_path / "three.db")
    assert one_by_one.exit_code == 0 and side_by_side.exit_code == 0, side_by_side.output
    alone, together = Store(tmp_path / "one.db"), Store(tmp_path / "three.db")
    expected = answers_by_variant(alone, one_by_one.output.strip())
    assert len(expected) == 5 and all(len(rows) == 60 for rows in expected.values())  # baseline and 4 seeds
    assert answers_by_variant(together, side_by_side.output.strip()) == expected
    assert together.sweeps.get(side_by_side.output.strip())["status"] == "finished"


def test_a_variant_that_fails_side_by_side_is_named_with_its_resume_command(invoke, tmp_path):
    swap = "ablation={use: swap, with: {field: simulator, options: {broken: {use: instant, with: {fail_with: down}}}}}"
    result = invoke("sweep", str(SWEEP), "--parallel", "2", "--no-cache", "--set", swap, db=tmp_path / "s.db")
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "RuntimeError: down" in text and "simrun run --resume" in text
    [failed] = [r for r in Store(tmp_path / "s.db").runs.all() if r["status"] == "failed"]
    assert failed["id"] in text and failed["variant"] == "broken"


def test_ctrl_c_ends_the_variants_running_side_by_side_at_their_next_batch_and_a_rerun_finishes(tmp_path):
    db = tmp_path / "c.db"
    args = [sys.executable, "-m", "simrun", "sweep", str(SWEEP), "--db", str(db), "--quiet", "--parallel", "2"]
    args += ["--plugins-dir", str(EXAMPLE), "--set", "simulator.with.delay_s=0.05", "--set", "sampler.with.per_town=60"]
    # Ctrl-C as a terminal sends it, even where the suite runs as a background job (which ignores SIGINT)
    default_sigint = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    sweep = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    store = Store(db)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both variants under way side by side, or one about to be past its middle
        if db.exists() and "variant" in store.db["runs"].columns_dict:
            running = [
                r["id"] for r in store.db["runs"].rows if r["variant"] != "baseline" and r["status"] == "running"
            ]
            done = [store.db["progress"].count_where("run_id = ?", [run_id]) for run_id in running]
            if running and max(done) <= 10 and (len(running) == 2 or max(done) >= 6):  # of each one's 15 batches
                break
        time.sleep(0.05)
    assert sweep.poll() is None, f"the sweep ended before a variant was seen under way: {sweep.communicate()}"
    sweep.send_signal(signal.SIGINT)
    _, err = sweep.communicate(timeout=60)  # the next batch of 8 personas, not the rest of the variant
    assert sweep.returncode == 130, err
    assert "interrupted; run the same command again to finish the sweep" in err
    statuses = {r["variant"]: r["status"] for r in store.db["runs"].rows}
    variants = {label: status for label, status in statuses.items() if label != "baseline"}
    assert statuses["baseline"] == "finished" and variants and set(variants.values()) == {"interrupted"}
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in store.db["runs"].rows} == {"finished"}


def test_compare_metric_picks_a_per_question_figure_across_questions_or_for_one(invoke, tmp_path):
    db = tmp_path / "s.db"
    two = ["--set", "metrics={wasserstein: {}}", "--set"]
    two += [
        "questions=[{id: q1, text: Do you like the park, options: [Yes, No, Not sure], truth: [0.5, 0.3, 0.2]},"
        " {id: q2, text: Is the bus on time, options: [Yes, No], truth: [0.4, 0.6]}]"
    ]
    sweep_id = invoke("sweep", str(SWEEP), "--quiet", *two, db=db).output.strip().splitlines()[-1]
    across = " ".join(invoke("compare", sweep_id, "--reps", "20", "--metric", "wasserstein.tvd", db=db).output.split())
    assert "wasserstein.tvd[q1]" in across and "wasserstein.tvd[q2]" in across
    one = " ".join(invoke("compare", sweep_id, "--reps", "20", "--metric", "wasserstein.tvd[q2]", db=db).output.split())
    assert "wasserstein.tvd[q2]" in one and "wasserstein.tvd[q1]" not in one
    typo = invoke("compare", sweep_id, "--metric", "wasserstein.tvdd", db=db)
    assert typo.exit_code != 0 and "did you mean wasserstein.tvd" in typo.output
