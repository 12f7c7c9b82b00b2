"""Run a simrun command against a real two-node Ray cluster on this host, doing harm on cue.

Meant to run inside a network namespace that has only loopback (the tests start it with ``unshare -n``), so
Ray binds 127.0.0.1 and nothing leaves the machine. Starts a head and one worker node of one CPU each
(``ray.cluster_utils.Cluster``, as Ray's own tests do; the worker alone has the custom resource ``worker``),
runs ``simrun ARGS --set executor.with.address=...`` and, once ``--after`` batches of the run are committed,
removes the worker node or SIGKILLs the driver. Then it resumes the run (always after a SIGKILL; after a
removal with ``--resume``, given ``--resume-set`` values). Prints one JSON line: each step's exit code and
output, and the run's id.

    python on_cluster.py --db DB [--harm remove-node|kill-driver] [--after N] [--resume] [--resume-set A=B]
                         -- run SCENARIO --set ...
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ray.cluster_utils import Cluster


def committed_batches(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as connection:
            return connection.execute("select count(*) from progress").fetchone()[0]
    except sqlite3.OperationalError:  # not created (or not migrated) yet
        return 0


def run_id(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute("select id from runs order by created_at desc").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--harm", choices=["remove-node", "kill-driver"])
    parser.add_argument("--after", type=int, default=1, help="committed batches before the harm")
    parser.add_argument("--resume", action="store_true", help="resume the run after the harm")
    parser.add_argument("--resume-set", action="append", default=[], help="a --set for the resume")
    parser.add_argument("simrun", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [a for a in args.simrun if a != "--"]

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1, resources={"worker": 1})
    cluster.wait_for_nodes()
    simrun = [sys.executable, "-m", "simrun", *command, "--db", str(args.db), "--quiet"]
    simrun += ["--set", f"executor.with.address={cluster.address}"]
    steps = []
    try:
        driver = subprocess.Popen(simrun, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if args.harm:
            while committed_batches(args.db) < args.after and driver.poll() is None:
                time.sleep(0.05)
            harmed_midway = driver.poll() is None
            if args.harm == "remove-node":
                cluster.remove_node(worker)
            else:
                driver.send_signal(signal.SIGKILL)
            steps.append({"harm": args.harm, "midway": harmed_midway, "batches": committed_batches(args.db)})
        out, err = driver.communicate(timeout=900)
        steps.append({"exit": driver.returncode, "stdout": out, "stderr": err})
        if args.harm == "kill-driver" or args.resume:
            resume = [sys.executable, "-m", "simrun", "run", "--resume", run_id(args.db), "--db", str(args.db)]
            resume += [a for value in args.resume_set for a in ("--set", value)]
            if "--plugins-dir" in command:
                resume += command[command.index("--plugins-dir") : command.index("--plugins-dir") + 2]
            done = subprocess.run([*resume, "--quiet"], capture_output=True, text=True, timeout=900)
            steps.append({"exit": done.returncode, "stdout": done.stdout, "stderr": done.stderr})
    finally:
        cluster.shutdown()
    print(json.dumps({"steps": steps, "run_id": run_id(args.db) if args.db.exists() else None}))


if __name__ == "__main__":
    main()
