"""The ray executor on a real two-node Ray cluster on this host, in a network namespace with only loopback.

Each test starts the cluster afresh (``on_cluster.py``, under ``unshare -n``, as root) and compares the run
log with a run of the same scenario on the local executor: the answers must be identical, whatever node or
replica answered and whatever was lost on the way.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE

from simrun.store import Store

HERE = Path(__file__).resolve().parent
EMBEDDED = [  # 80 personas x 2 questions in batches of 16: 5 batches, 2 chunks each, on one-thread replicas
    "run",
    str(EXAMPLE / "towns.yaml"),
    "--plugins-dir",
    str(EXAMPLE),
    "--set",
    "sampler.with.per_town=40",
    "--set",
    "batch_size=16",
    "--set",
    "simulator.use=embedded",
    "--set",
    "simulator.with.n_threads=1",
]
ON_RAY = ["--set", "executor.use=ray", "--set", "executor.with.replicas=2"]
INSTANT = ["run", str(EXAMPLE / "towns.yaml"), "--plugins-dir", str(EXAMPLE), "--set", "sampler.with.per_town=200"]
SLOW_INSTANT = INSTANT + ["--set", "simulator.with.delay_s=0.03"]  # ~1 s a chunk of 32: harm lands mid-run


def on_cluster(db: Path, *options: str, simrun: list[str]) -> dict:
    """on_cluster.py in a fresh network namespace with loopback up; its JSON report."""
    script = f'ip link set lo up && exec {sys.executable} {HERE / "on_cluster.py"} "$@"'
    command = ["unshare", "-n", "bash", "-c", script, "on_cluster", "--db", str(db), *options, "--", *simrun]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def local_run(db: Path, simrun: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "simrun", *simrun, "--db", str(db), "--quiet"], check=True, timeout=900)


def answers(db: Path) -> list[tuple]:
    rows = Store(db, read_only=True).answers.rows(run_id(db), prompts=True)
    keep = ("persona_id", "question_id", "distribution", "invalid", "prompt", "cache_key")
    return [tuple(r[k] for k in keep) for r in rows]


def run_id(db: Path) -> str:
    [run] = Store(db, read_only=True).runs.all()
    return run["id"]


def run_record(db: Path, run_id: str) -> dict:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return dict(connection.execute("select * from runs where id = ?", [run_id]).fetchone())


@pytest.fixture(scope="module")
def local_answers(tmp_path_factory) -> list[tuple]:
    db = tmp_path_factory.mktemp("local") / "local.db"
    local_run(db, EMBEDDED)
    rows = answers(db)
    assert len(rows) == 160
    return rows


@pytest.fixture(scope="module")
def instant_answers(tmp_path_factory) -> list[tuple]:
    db = tmp_path_factory.mktemp("instant") / "local.db"
    local_run(db, INSTANT)
    return answers(db)


def test_two_replicas_answer_exactly_as_the_local_executor(tmp_path, local_answers):
    report = on_cluster(tmp_path / "ray.db", simrun=EMBEDDED + ON_RAY)
    [step] = report["steps"]
    assert step["exit"] == 0, step["stderr"]
    assert answers(tmp_path / "ray.db") == local_answers
    stats = json.loads(run_record(tmp_path / "ray.db", report["run_id"])["simulator_stats"])
    assert stats == {"replicas_started": 2, "replicas_lost": 0, "chunks_resubmitted": 0}


def test_a_worker_node_lost_mid_run_with_two_replicas_loses_nothing_and_is_not_poison(tmp_path, instant_answers):
    # the worker has 2 CPUs, the head 1: two of the three replicas die with the worker, each holding chunks
    db = tmp_path / "ray.db"
    three = ["--set", "executor.with.replicas=3"]
    report = on_cluster(db, "--worker-cpus", "2", "--harm", "remove-node", simrun=SLOW_INSTANT + ON_RAY + three)
    harm, step = report["steps"]
    assert harm["midway"] and harm["batches"] < 40, harm  # of 50
    assert step["exit"] == 0, step["stderr"]
    assert answers(db) == instant_answers  # nothing lost, nothing written twice
    record = run_record(db, report["run_id"])
    assert record["status"] == "finished"
    stats = json.loads(record["simulator_stats"])
    assert stats["replicas_lost"] == 2 and stats["replicas_started"] == 3
    assert stats["chunks_resubmitted"] >= 2
    shown = subprocess.run(
        [sys.executable, "-m", "simrun", "show", report["run_id"], "--db", str(db)], capture_output=True, text=True
    )
    assert "2 of 3 replicas lost" in shown.stdout, shown.stdout


def test_every_replica_gone_stops_the_run_and_resume_moves_it(tmp_path, instant_answers):
    db = tmp_path / "ray.db"
    only_on_worker = ON_RAY + ["--set", "executor.with.resources.worker=1"]  # both replicas die with the worker
    report = on_cluster(
        db,
        "--worker-cpus",
        "2",
        "--harm",
        "remove-node",
        "--resume",
        "--resume-set",
        "executor.with.resources={num_cpus: 1}",
        "--resume-set",
        "executor.with.replicas=1",  # the head's one CPU
        simrun=SLOW_INSTANT + only_on_worker,
    )
    harm, stopped, resumed = report["steps"]
    assert harm["midway"], harm
    assert stopped["exit"] == 1
    assert "every Ray replica is gone (2 of 2 lost with their workers)" in stopped["stderr"]
    assert f"simrun run --resume {report['run_id']}" in stopped["stderr"] and "Traceback" not in stopped["stderr"]
    assert resumed["exit"] == 0, resumed["stderr"]
    assert answers(db) == instant_answers


def test_a_driver_killed_mid_run_resumes_to_the_same_answers(tmp_path, local_answers):
    db = tmp_path / "ray.db"
    report = on_cluster(db, "--harm", "kill-driver", simrun=EMBEDDED + ON_RAY)
    harm, killed, resumed = report["steps"]
    assert harm["midway"], harm
    assert killed["exit"] == -9
    assert resumed["exit"] == 0, resumed["stderr"]
    assert answers(db) == local_answers
    assert run_record(db, report["run_id"])["status"] == "finished"


def test_ten_thousand_instant_answers_through_ray(tmp_path):
    instant = ["run", str(EXAMPLE / "towns.yaml"), "--plugins-dir", str(EXAMPLE), "--set", "sampler.with.per_town=2500"]
    local_run(tmp_path / "local.db", instant)
    report = on_cluster(tmp_path / "ray.db", simrun=instant + ON_RAY)
    assert report["steps"][0]["exit"] == 0, report["steps"][0]["stderr"]
    rows = answers(tmp_path / "ray.db")
    assert len(rows) == 10_000 and rows == answers(tmp_path / "local.db")


def test_a_replica_process_that_dies_has_its_chunks_resubmitted(tmp_path):
    local_run(tmp_path / "local.db", INSTANT)
    flag = tmp_path / "die-once"
    flag.touch()
    dying = ["--set", "simulator.with.kill_at_call=2", "--set", f"simulator.with.kill_flag={flag}"]
    report = on_cluster(tmp_path / "ray.db", simrun=INSTANT + ON_RAY + dying)
    [step] = report["steps"]
    assert step["exit"] == 0, step["stderr"]
    assert not flag.exists()  # one replica did die
    assert answers(tmp_path / "ray.db") == answers(tmp_path / "local.db")
    stats = json.loads(run_record(tmp_path / "ray.db", report["run_id"])["simulator_stats"])
    assert stats["replicas_lost"] == 1 and stats["chunks_resubmitted"] >= 1


def test_replicas_that_cannot_be_placed_are_named_with_what_the_cluster_has(tmp_path):
    wanting = ["--set", "executor.with.resources={num_gpus: 1}", "--set", "executor.with.startup_timeout_s=3"]
    report = on_cluster(tmp_path / "ray.db", simrun=INSTANT + ON_RAY + wanting)
    [step] = report["steps"]
    assert step["exit"] == 1
    assert (
        "2 replica(s) asking {'num_gpus': 1.0} each did not start within 3 s: the cluster's nodes hold 0"
        in (step["stderr"])
    )
    assert "ask for resources its nodes have (executor.with.resources)" in step["stderr"]
    assert "'CPU': 2.0" in step["stderr"] and "Traceback" not in step["stderr"]


def test_a_simulator_that_fails_on_a_replica_fails_the_run_with_its_own_message(tmp_path):
    broken = ["--set", "simulator.with.fail_with=the backend is down"]
    report = on_cluster(tmp_path / "ray.db", simrun=INSTANT + ON_RAY + broken)
    [step] = report["steps"]
    assert step["exit"] == 1
    assert "RuntimeError: the backend is down" in step["stderr"] and "Traceback" not in step["stderr"]
    assert f"simrun run --resume {report['run_id']}" in step["stderr"]


def test_a_chunk_that_kills_every_replica_it_reaches_stops_the_run_after_two(tmp_path):
    # one persona's prompts (house 250 of 400) kill the simulator; streaming has other chunks on the replicas too
    poison = ["--set", "sampler.with.numbered=true", "--set", "simulator.with.kill_on='house: 250'"]
    poison += ["--set", "executor.with.replicas=2", "--set", "executor.with.node_timeout_s=5"]
    report = on_cluster(tmp_path / "ray.db", simrun=INSTANT + ON_RAY + poison)
    [step] = report["steps"]
    assert step["exit"] == 1
    assert "2 replicas on nodes that are still up died holding the same chunk" in step["stderr"]
    assert "Traceback" not in step["stderr"]
    assert "(the first 248 / q1)" in step["stderr"]  # house 250's chunk: batch 31 of 8 personas, not another


def test_replicas_auto_fill_the_cluster_and_a_node_that_joins_mid_run_takes_work(tmp_path):
    local_run(tmp_path / "local.db", INSTANT)
    auto = ["--set", "executor.use=ray", "--set", "executor.with.replicas=auto"]
    auto += ["--set", "simulator.with.delay_s=0.1"]  # 3.2 s a chunk of 32: the run outlasts the new node's start
    report = on_cluster(tmp_path / "ray.db", "--harm", "add-node", simrun=INSTANT + auto)
    harm, step = report["steps"]
    assert harm["midway"], harm
    assert step["exit"] == 0, step["stderr"]
    assert answers(tmp_path / "ray.db") == answers(tmp_path / "local.db")
    stats = json.loads(run_record(tmp_path / "ray.db", report["run_id"])["simulator_stats"])
    # one replica per CPU of the head and the worker, then one for the node that joined, which answered chunks
    assert stats["replicas_started"] == 3 and stats["replicas_added"] == 1 and stats["replicas_lost"] == 0
    assert stats["chunks_answered_by_added"] >= 1, stats
