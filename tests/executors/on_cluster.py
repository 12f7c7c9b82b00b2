"""Run a simrun command against a real two-node Ray cluster on this host, doing harm on cue.

Meant to run inside a network namespace that has only loopback (the tests start it with ``unshare -n``), so
Ray binds 127.0.0.1 and nothing leaves the machine. Starts a head node of one CPU and a worker node of
``--worker-cpus`` (``ray.cluster_utils.Cluster``, as Ray's own tests do; the worker alone has the custom
resource ``worker``, one per CPU), runs ``simrun ARGS --set executor.with.address=...`` and, once ``--after``
batches of the run are committed, kills the worker node as a machine dies (its raylet and every process it
started, at once, by SIGKILL, then ``remove_node``), adds a third node of one CPU, or SIGKILLs the driver.
Then it resumes the run (always after a SIGKILL; after a removal with ``--resume``, given ``--resume-set``
values). Prints one JSON line: each step's exit code and output, and the run's id.

    python on_cluster.py --db DB [--worker-cpus N] [--harm remove-node|add-node|kill-driver] [--after N] [--resume]
                         [--resume-set A=B] -- run SCENARIO --set ...
"""

from __future__ import annotations

import argparse
import json
import os
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


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid``, however deep (read from /proc: psutil is not a dependency)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found += (new := children.get(todo.pop(), []))
        todo += new
    return found


def kill_node(cluster: Cluster, node) -> None:
    """The node dies as a machine does: its raylet and all its workers at the same instant, nothing graceful."""
    [raylet] = node.all_processes["raylet"]
    for pid in [raylet.process.pid, *descendants(raylet.process.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    cluster.remove_node(node, allow_graceful=False)


def run_id(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute("select id from runs order by created_at desc").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--worker-cpus", type=int, default=1, help="the worker node's CPUs")
    parser.add_argument("--harm", choices=["remove-node", "add-node", "kill-driver"])
    parser.add_argument("--after", type=int, default=1, help="committed batches before the harm")
    parser.add_argument("--resume", action="store_true", help="resume the run after the harm")
    parser.add_argument("--resume-set", action="append", default=[], help="a --set for the resume")
    parser.add_argument("simrun", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [a for a in args.simrun if a != "--"]

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=args.worker_cpus, resources={"worker": args.worker_cpus})
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
                kill_node(cluster, worker)
            elif args.harm == "add-node":
                cluster.add_node(num_cpus=1)
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
