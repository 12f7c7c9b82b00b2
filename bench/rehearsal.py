"""A rehearsal of the paper's run at 1/50 of its scale: census personas x many questions on 4 Ray replicas.

20,000 census personas x 500 three-option questions (10^7 answers) by default, answered by the example plugin's
``instant`` simulator sleeping ``--sleep-ms`` a prompt, on 4 replicas of a two-node Ray cluster on this host (run as
root it first moves itself into a network namespace with only loopback, as bench/executor.py does). The run goes
twice, each in a run log of its own: once whole, and once SIGKILLed when half its batches are committed, then
resumed with ``simrun run --resume``. Prints one JSON line:

- ``wall_s``, ``answers``; ``driver_ms_per_answer``: the whole run's wall time, less the model's (prompts x sleep /
  4 replicas) and the replicas' start-up, per answer: what the driver adds;
- ``replica_utilization``: model time / 4 over the wall time after the replicas are up;
- ``driver_peak_rss_mb``: the driver process's peak resident memory (flat in the run's size: batches stream);
- ``log_bytes``, ``log_bytes_per_answer``: the run log's file size after ``PRAGMA wal_checkpoint(TRUNCATE)``;
- ``killed_after_batches``, ``resumed_identical``: the killed-and-resumed run's answers against the whole run's.

It takes long at full scale (about 40 minutes here: 20 a run); ``--personas 2000`` is 1/500 of the paper, 4 minutes.

    python bench/rehearsal.py [--personas 20000] [--questions 500] [--sleep-ms 0.1]
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from loopback_cluster import isolate, two_node_cluster

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "example_plugin"
REPLICAS = 4


def scenario(personas: int, questions: int, sleep_s: float) -> dict:
    return {
        "name": "rehearsal",
        "seed": 1,
        "sampler": {"use": "census", "with": {"total": personas}},
        "simulator": {"use": "instant", "with": {"delay_s": sleep_s}},
        "executor": {
            "use": "ray",
            "with": {"replicas": REPLICAS, "resources": {"num_cpus": 2 / REPLICAS}},
        },
        "questions": [
            {"id": f"q{i:03d}", "text": f"Rehearsal question {i}: which do you choose?", "options": ["A", "B", "C"]}
            for i in range(questions)
        ],
    }


def simrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "simrun", *args, "--plugins-dir", str(EXAMPLE), "--quiet"]


def committed(db: Path) -> int:
    """Batches of the run in ``db`` committed so far."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as connection:
            return connection.execute("select count(*) from progress").fetchone()[0]
    except sqlite3.OperationalError:  # not created (or not migrated) yet
        return 0


def log_bytes(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        connection.execute("pragma wal_checkpoint(TRUNCATE)")
    return db.stat().st_size


def answers_match(a: Path, b: Path) -> bool:
    """The same answers, row for row (run ids aside), in two run logs."""

    def replies(log: str) -> str:  # each answer with its reply, its own or the cache's it refers to
        return (
            'select a.persona_id, a.question_id, a."repeat", a.cache_key, coalesce(a.reply, c.response)'
            f" from {log}.answers a left join {log}.llm_cache c on a.reply is null and c.key = a.cache_key"
        )

    with sqlite3.connect(a) as connection:
        connection.execute("attach ? as other", [str(b)])
        ours = connection.execute("select count(*) from answers").fetchone()[0]
        theirs = connection.execute("select count(*) from other.answers").fetchone()[0]
        differing = connection.execute(
            f"select count(*) from ({replies('main')} except {replies('other')})"
        ).fetchone()[0]
    return ours == theirs and differing == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=20_000)
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--sleep-ms", type=float, default=0.1)
    args = parser.parse_args()
    isolate(__file__)
    cluster = two_node_cluster()
    address = ["--set", f"executor.with.address={cluster.address}"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            path = folder / "rehearsal.yaml"
            path.write_text(yaml.safe_dump(scenario(args.personas, args.questions, args.sleep_ms / 1000)))
            whole, killed = folder / "whole.db", folder / "killed.db"
            started = time.perf_counter()
            subprocess.run(simrun("run", str(path), "--db", str(whole), *address), check=True)
            wall_s = time.perf_counter() - started
            peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the driver: done, waited
            with sqlite3.connect(whole) as connection:
                timings = json.loads(connection.execute("select timings from runs").fetchone()[0])
                answers = connection.execute("select count(*) from answers").fetchone()[0]
            size = log_bytes(whole)

            driver = subprocess.Popen(simrun("run", str(path), "--db", str(killed), *address))
            batches = (args.personas + 63) // 64  # the default batch_size
            while committed(killed) < batches // 2 and driver.poll() is None:
                time.sleep(0.2)
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            killed_after = committed(killed)
            with sqlite3.connect(killed) as connection:
                run_id = connection.execute("select id from runs").fetchone()[0]
            subprocess.run(simrun("run", "--resume", run_id, "--db", str(killed), *address), check=True)
            identical = answers_match(whole, killed)
    finally:
        cluster.shutdown()
    model_s = answers * args.sleep_ms / 1000 / REPLICAS
    after_start_s = timings["simulate_s"] - timings["executor_start_s"]
    print(
        json.dumps(
            {
                "personas": args.personas,
                "questions": args.questions,
                "answers": answers,
                "sleep_ms_per_prompt": args.sleep_ms,
                "wall_s": round(wall_s, 1),
                "driver_ms_per_answer": round((wall_s - model_s - timings["executor_start_s"]) / answers * 1000, 4),
                "replica_utilization": round(model_s / after_start_s, 3),
                "driver_peak_rss_mb": round(peak_rss_mb, 1),
                "log_bytes": size,
                "log_bytes_per_answer": round(size / answers, 1),
                "killed_after_batches": killed_after,
                "batches": batches,
                "resumed_identical": identical,
            }
        )
    )


if __name__ == "__main__":
    main()
