"""Many processes on one simrun.db: readers beside a writer, runs started together, two resumes of one run."""

import json
import signal
import subprocess
import sys

import pytest
from conftest import EXAMPLE

from simrun.store import Store, StoreError

TOWNS = str(EXAMPLE / "towns.yaml")
SLOW = ["--set", "sampler.with.per_town=40", "--set", "simulator.with.delay_s=0.01"]  # 10 batches, a few seconds


def simrun(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "simrun", *args, "--plugins-dir", str(EXAMPLE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def answers(store: Store, run_id: str) -> list[tuple]:
    return [
        (r["persona_id"], r["question_id"], r["repeat"], r["distribution"], r["invalid"], r["prompt"])
        for r in store.answers.rows(run_id, prompts=True)
    ]


@pytest.fixture(scope="module")
def solo(tmp_path_factory) -> list[tuple]:
    """The answers of the slow towns run, alone on its own database."""
    db = tmp_path_factory.mktemp("solo") / "solo.db"
    code, out, err = finish(simrun("run", TOWNS, "--db", str(db), "--quiet", *SLOW))
    assert code == 0, err
    return answers(Store(db, read_only=True), out.strip())


def test_readers_in_a_loop_never_disturb_a_writer(tmp_path, solo):
    db = tmp_path / "shared.db"
    writer = simrun("run", TOWNS, "--db", str(db), "--quiet", *SLOW)
    reads, cli_reads = 0, []
    while writer.poll() is None:
        if not db.exists():
            continue
        try:
            store = Store(db, read_only=True)
        except StoreError:  # the file exists but its schema is not written yet
            continue
        for run in store.runs.all():
            store.runs.counts(run["id"])
            reads += 1
        if reads and len(cli_reads) < 3:  # a CLI read takes a second: only once the run is there to read
            cli_reads.append(
                subprocess.run(
                    [sys.executable, "-m", "simrun", "runs", "--db", str(db), "--json"], capture_output=True, text=True
                )
            )
    code, out, err = finish(writer)
    assert code == 0, err
    assert reads > 0 and cli_reads and all(r.returncode == 0 for r in cli_reads), [r.stderr for r in cli_reads]
    store = Store(db, read_only=True)
    assert store.runs.get(out.strip())["status"] == "finished" and answers(store, out.strip()) == solo


@pytest.mark.parametrize("runs", [2, 4])
def test_runs_started_together_on_a_new_database_all_finish_complete(tmp_path, solo, runs):
    db = tmp_path / "new.db"
    procs = [simrun("run", TOWNS, "--db", str(db), "--quiet", *SLOW) for _ in range(runs)]
    results = [finish(p) for p in procs]
    assert [code for code, _, _ in results] == [0] * runs, [err[-500:] for _, _, err in results]
    store = Store(db, read_only=True)
    run_ids = [out.strip() for _, out, _ in results]
    assert len(set(run_ids)) == runs
    for run_id in run_ids:
        assert store.runs.get(run_id)["status"] == "finished" and store.runs.get(run_id)["owner"] is None
        assert answers(store, run_id) == solo


def test_a_live_run_is_resumed_once_and_a_dead_owners_run_is_taken_over(tmp_path, solo):
    db, flag = tmp_path / "resume.db", tmp_path / "armed"
    flag.touch()
    code, _, _ = finish(
        simrun(
            "run",
            TOWNS,
            "--db",
            str(db),
            "--quiet",
            *SLOW,
            "--set",
            "simulator.with.kill_at_call=3",
            "--set",
            f"simulator.with.kill_flag={flag}",
        )
    )
    assert code == -signal.SIGKILL
    [run] = Store(db, read_only=True).runs.all()
    assert run["status"] == "running" and json.loads(run["owner"])["pid"]  # owned by a process that is gone
    first, second = simrun("run", "--resume", run["id"], "--db", str(db), "--quiet"), None
    second = simrun("run", "--resume", run["id"], "--db", str(db), "--quiet")
    results = sorted([finish(first), finish(second)], key=lambda r: r[0])
    assert [code for code, _, _ in results] == [0, 2], results
    refusal = " ".join(results[1][2].split())
    assert f"run {run['id']} is being executed by process" in refusal or "has already finished" in refusal
    assert "Traceback" not in results[1][2]
    store = Store(db, read_only=True)
    assert store.runs.get(run["id"])["status"] == "finished" and answers(store, run["id"]) == solo
