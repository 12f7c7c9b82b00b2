"""The simrun command as a user meets it."""

import csv
import json
import re
import signal
import sqlite3
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from conftest import EXAMPLE


def test_plugins_json_lists_every_kind_with_its_source(invoke):
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    kinds = {r["kind"] for r in rows}
    assert kinds == {"sampler", "enricher", "simulator", "metric", "ablation", "executor"}
    builtins = {(r["kind"], r["name"]) for r in rows if r["package"] == "simrun"}
    assert {
        ("sampler", "census"),
        ("enricher", "region"),
        ("simulator", "embedded"),
        ("metric", "election"),
        ("ablation", "attributes"),
    } <= builtins
    local = {(r["kind"], r["name"]) for r in rows if r["package"] == "local"}
    assert local == {
        ("sampler", "towns"),
        ("enricher", "generation"),
        ("simulator", "instant"),
        ("simulator", "by_content"),
        ("metric", "mean_share"),
        ("ablation", "seeds"),
    }
    assert all(r["plugin"].endswith("simrun_example.py") for r in rows if r["package"] == "local")


def test_run_by_file_name_then_runs_show_export(invoke, tmp_path):
    result = invoke(str(EXAMPLE / "towns.yaml"))
    assert result.exit_code == 0, result.output
    assert "mean_share.share" in result.output
    runs = json.loads(invoke("runs", "--json").output)
    assert len(runs) == 1 and runs[0]["status"] == "finished"
    run_id = runs[0]["id"]

    shown = json.loads(invoke("show", run_id, "--json").output)
    assert shown["counts"] == {"personas": 24, "answers": 48, "metrics": 3}
    assert set(shown["shares"]["q1"]) == {"Ashford", "Brook", "ALL"}
    assert "mean_share.share" in shown["metrics"]
    assert (
        shown["cache"] == {"from_cache": 0, "from_model": 48}
        and shown["simulator"]["identity"]["simulator"] == "instant"
    )
    again = invoke(str(EXAMPLE / "towns.yaml"))  # the same scenario again: every answer from the cache, and it says so
    assert "48 answers (48 from the cache, 0 from the model)" in again.output

    out = tmp_path / "answers.csv"
    assert invoke("export", run_id, "--format", "csv", "-o", str(out)).exit_code == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 48 and {"attr_town", "attr_age", "p_A", "p_B", "invalid", "prompt"} <= set(rows[0])

    jsonl = invoke("export", run_id, "--format", "jsonl").output
    assert len(jsonl.strip().splitlines()) == 48

    parquet = tmp_path / "answers.parquet"
    assert invoke("export", run_id, "--format", "parquet", "-o", str(parquet)).exit_code == 0
    assert pq.read_table(parquet).num_rows == 48


def test_unknown_run_id_is_a_clear_error(invoke, tmp_path):
    invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet")
    result = invoke("show", "nope")
    assert result.exit_code == 2 and "no run 'nope'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "command", [["runs"], ["show", "x"], ["export", "x"], ["compare", "x"], ["report", "x", "-o", "r.html"]]
)
def test_reading_commands_never_create_a_database(invoke, tmp_path, command):
    typo = tmp_path / "typo.db"
    result = invoke(*command, db=typo)
    assert (
        result.exit_code == 2
        and f"no run log at {typo}" in " ".join(result.output.split())
        and "Traceback" not in result.output
    )
    assert not typo.exists()


def test_resume_of_finished_run_is_refused(invoke):
    invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet")
    run_id = json.loads(invoke("runs", "--json").output)[0]["id"]
    result = invoke("run", "--resume", run_id)
    assert result.exit_code == 2 and "already finished" in result.output


def test_broken_plugin_file_is_a_clear_error(tmp_path):
    from click.testing import CliRunner

    from simrun.cli import cli

    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    result = CliRunner().invoke(cli, ["plugins", "--plugins-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "broken.py" in result.output and "not_a_module_anywhere" in result.output


def test_help_teaches(invoke):
    from click.testing import CliRunner

    from simrun.cli import cli

    text = CliRunner().invoke(cli, ["--help"]).output
    assert "simrun scenarios/election.yaml" in text
    run_help = CliRunner().invoke(cli, ["run", "--help"]).output
    assert "--resume" in run_help and "--set" in run_help


def test_sample_writes_personas_in_each_format(invoke, tmp_path):
    import pyarrow.parquet as pq
    from conftest import ROOT

    scenario = str(ROOT / "scenarios" / "election.yaml")
    small = ["--set", "sampler.with.states=[DC, VT]", "--set", "sampler.with.per_state=7"]
    for name in ("p.csv", "p.jsonl", "p.parquet"):
        result = invoke("sample", scenario, "-o", str(tmp_path / name), *small)
        assert result.exit_code == 0, result.output
        assert "wrote 14 personas" in result.output
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 14 and {"id", "stratum", "weight", "age", "education", "census_region", "provenance"} <= set(
        rows[0]
    )
    assert json.loads(rows[0]["provenance"])["census_region"].startswith("census:")
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert [json.loads(line)["stratum"] for line in lines].count("VT") == 7
    assert pq.read_table(tmp_path / "p.parquet").num_rows == 14


def test_sample_caches_generated_text_for_later_runs(invoke, tmp_path):
    log, db = tmp_path / "calls.log", tmp_path / "g.db"
    args = [
        "sample",
        str(EXAMPLE / "towns.yaml"),
        "--set",
        "enrichers=[{use: generation}, {use: descriptive}]",
        "--set",
        f"simulator.with.call_log={log}",
    ]
    assert invoke(*args, "-o", str(tmp_path / "a.jsonl"), db=db).exit_code == 0
    asked = log.read_text().count("\x1e")
    assert asked > 0
    assert invoke(*args, "-o", str(tmp_path / "b.jsonl"), db=db).exit_code == 0
    assert log.read_text().count("\x1e") == asked, "the second sample generated nothing anew"
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_show_keeps_bracketed_metric_names(invoke, tmp_path):
    from simrun.store import Store

    db = tmp_path / "simrun.db"
    invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db)
    store = Store(db)
    run_id = store.runs.all()[0]["id"]
    store.results.write_metrics(run_id, "persona_text", [{"name": "flagged[descriptive]", "value": 3.0, "stratum": ""}])
    result = invoke("show", run_id, db=db)
    assert "persona_text.flagged[descriptive]" in result.output  # rich markup would eat "[descriptive]"


@pytest.mark.parametrize("command", [["validate", str(EXAMPLE / "towns.yaml")], ["plugins"], ["schema"]])
def test_commands_that_never_touch_a_run_log_take_no_db(command, tmp_path):
    from click.testing import CliRunner

    from simrun.cli import cli

    result = CliRunner().invoke(cli, [*command, "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "No such option '--db'" in result.output and not (tmp_path / "x.db").exists()


def test_estimate_counts_what_the_cache_lacks_and_sends_nothing(invoke, tmp_path):
    db = tmp_path / "e.db"
    before = invoke("run", str(EXAMPLE / "towns.yaml"), "--estimate", db=db)
    assert before.exit_code == 0, before.output
    # the personas' 48 and the no-persona baseline's 2 (one per question), which show compares answers with
    assert "48 answer(s), 0 in the cache; to send: 50 call(s) (2 of them for the no-persona baseline), ~" in (
        before.output
    )
    assert "no price known for this model" in before.output and not db.exists()  # nothing created
    invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db)
    after = invoke("run", str(EXAMPLE / "towns.yaml"), "--estimate", db=db)
    assert "48 answer(s), 48 in the cache; nothing to send" in after.output
    api = invoke(
        "run",
        str(EXAMPLE / "towns.yaml"),
        "--estimate",
        "--set",
        "simulator={use: litellm, with: {model: openai/gpt-4o-mini}}",
        db=db,
    )
    assert api.exit_code == 0 and re.search(r"to send: 50 call\(s\) .* completion tokens, \$0\.\d{4}", api.output)


def test_show_names_every_executor_counter_and_a_count_is_a_whole_number(invoke, tmp_path):
    from simrun.display import figure

    db = tmp_path / "r.db"
    run_id = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db).output.strip()
    counters = {"replicas_started": 3, "replicas_lost": 1, "chunks_resubmitted": 2, "replicas_added": 1}
    counters |= {"chunks_answered_by_added": 5, "retries": 1200}
    with sqlite3.connect(db) as connection:
        connection.execute("update runs set simulator_stats = ? where id = ?", [json.dumps(counters), run_id])
    shown = " ".join(invoke("show", run_id, db=db).output.split())
    assert "3 started, 1 added as nodes joined (5 chunk(s) answered by them), 1 of 3 replicas lost" in shown
    assert "simulator: retries 1,200" in shown
    assert (figure(51.0), figure(0.123456), figure(None)) == ("51", "0.1235", "n/a")


def test_export_into_a_reader_that_stops_early_ends_quietly_as_shell_tools_do(invoke, tmp_path):
    db = tmp_path / "r.db"
    run_id = invoke("run", str(EXAMPLE / "towns.yaml"), "--set", "sampler.with.per_town=200", "--quiet", db=db)
    command = [sys.executable, "-m", "simrun", "export", run_id.output.strip(), "--db", str(db), "--format", "jsonl"]
    export = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = export.stdout.readline()  # as `| head -1` reads, then goes away
    export.stdout.close()
    _, stderr = export.communicate(timeout=60)
    assert json.loads(first)["persona_id"] == 0
    assert export.returncode == 128 + signal.SIGPIPE and stderr == b""
