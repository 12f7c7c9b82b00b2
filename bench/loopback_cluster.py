"""What the Ray benchmarks share: a two-node Ray cluster on this host, in a network namespace with only loopback.

Run as root, a benchmark first re-executes itself under ``unshare -n`` with loopback up, so Ray binds 127.0.0.1
and nothing leaves the machine; then it starts a head and a worker node of one CPU each
(``ray.cluster_utils.Cluster``, as Ray's own tests do).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ray.cluster_utils import Cluster

ISOLATED = "SIMRUN_BENCH_LOOPBACK_ONLY"


def isolate(script: str) -> None:
    """As root, run ``script`` again with this process's arguments in a loopback-only namespace, and exit with it."""
    if os.geteuid() == 0 and not os.environ.get(ISOLATED) and shutil.which("unshare"):
        again = f'ip link set lo up && exec "{sys.executable}" "$0" "$@"'
        command = ["unshare", "-n", "bash", "-c", again, script, *sys.argv[1:]]
        sys.exit(subprocess.run(command, env={**os.environ, ISOLATED: "1"}).returncode)


def two_node_cluster() -> Cluster:
    """A head and a worker node of one CPU each, both up."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    return cluster
