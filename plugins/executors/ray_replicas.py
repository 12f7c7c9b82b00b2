"""The ``ray`` executor's replicas: which are alive and on which node, which died with their node, and new ones
for nodes that join the cluster mid-run (``replicas: auto``)."""

from __future__ import annotations

import contextlib
import json
import math
import time
from typing import Any

from simrun import SimulatorSpec, build_simulator

ACTOR_OPTIONS = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}  # the rest are custom resources
POISON = 2  # replicas on live nodes that may die holding one chunk before it is judged to be what kills them
LOOK_FOR_NODES_EVERY_S = 2.0


class ExecutorError(RuntimeError):
    """The cluster cannot (or can no longer) run the simulator."""


class Replica:
    """One copy of the scenario's simulator, on whichever node Ray placed it."""

    def __init__(self, spec: SimulatorSpec):
        self.simulator = build_simulator(spec)

    def identity(self) -> tuple[str, dict[str, Any]]:
        import ray

        return ray.get_runtime_context().get_node_id(), self.simulator.cache_identity()

    def call(self, method: str, chunk: list[Any], options: dict[str, Any]) -> list[Any]:
        return getattr(self.simulator, method)(chunk, **options)

    def stats(self) -> dict[str, int]:
        return self.simulator.stats()

    def close(self) -> None:
        self.simulator.close()


def fitting(node: dict[str, Any], resources: dict[str, float]) -> int:
    """How many replicas asking ``resources`` each a node holds, by what it has in all (``ray.nodes()``)."""
    has = node["Resources"]
    asked = {ACTOR_OPTIONS.get(name, name): amount for name, amount in resources.items() if amount > 0}
    return min(math.floor(has.get(name, 0.0) / amount + 1e-9) for name, amount in asked.items())


class Fleet:
    """The replicas of one run. A replica is alive from when it has built the simulator (and built the same one as
    this machine) until a call to it fails; with ``grow``, every node that joins gets the replicas it holds."""

    def __init__(self, spec: SimulatorSpec, resources: dict[str, float], expected: dict[str, Any], grow: bool):
        import ray

        custom = dict(resources)
        options = {name: custom.pop(name) for name in ACTOR_OPTIONS if name in custom}
        self.actor = ray.remote(Replica)
        self.options = {**options, "resources": custom, "max_restarts": 0, "max_task_retries": 0}
        self.spec, self.resources, self.grow = spec, resources, grow
        self.expected = json.dumps(expected, sort_keys=True)
        self.actors: list[Any] = []
        self.alive: list[Any] = []
        self.starting: dict[Any, Any] = {}  # identity call -> replica not yet admitted
        self.launched_at: dict[Any, float] = {}  # identity call -> when its replica was asked for
        self.joined: set[Any] = set()  # replicas for nodes that joined mid-run
        self.node_of: dict[Any, str] = {}
        self.nodes_seen: set[str] = set()
        self.dead_nodes: set[str] = set()
        self.lost = self.failed_to_start = 0
        self.looked_at = time.monotonic()

    def on_cluster(self) -> int:
        """Replicas for the cluster as it is (``replicas: auto``): one per unit of what each asks, node by node."""
        import ray

        nodes = [node for node in ray.nodes() if node["Alive"]]
        self.nodes_seen = {node["NodeID"] for node in nodes}
        return sum(fitting(node, self.resources) for node in nodes)

    def launch(self, count: int, node: str | None = None) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options = dict(self.options)
        if node is not None:  # soft: a replica still goes elsewhere if the new node dies (or cannot hold it)
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
        actor = self.actor.options(**options)
        for _ in range(count):
            replica = actor.remote(self.spec)
            self.actors.append(replica)
            if node is not None:
                self.joined.add(replica)
            started = replica.identity.remote()
            self.starting[started] = replica
            self.launched_at[started] = time.monotonic()

    def expire(self, timeout_s: float) -> None:
        """Replicas asked for more than ``timeout_s`` ago and still not up (never placed: the cluster is busy) are
        given up, so a run never waits on them alone."""
        import ray

        now = time.monotonic()
        for started in [s for s, at in self.launched_at.items() if now - at > timeout_s]:
            replica = self.starting.pop(started)
            del self.launched_at[started]
            self.failed_to_start += 1
            with contextlib.suppress(Exception):  # gone already: nothing to release
                ray.kill(replica)

    def admit(self, started: Any, mid_run: bool = False) -> None:
        """A replica whose identity call returned: alive, if it built the simulator this machine built. Mid-run
        (a node that joined, a replica placed late) one that failed or differs is only counted, and let go."""
        import ray

        replica = self.starting.pop(started)
        del self.launched_at[started]
        try:
            node, identity = ray.get(started)
        except ray.exceptions.RayActorError as exc:
            if mid_run:
                self.failed_to_start += 1
                return
            raise ExecutorError(f"a replica could not build the simulator: {cause(exc)}") from None
        if json.dumps(identity, sort_keys=True) != self.expected:
            if not mid_run:
                raise ExecutorError(
                    f"the replica on node {node} builds a different simulator from this machine's "
                    f"({identity} here {json.loads(self.expected)}): its answers would not match the cache"
                )
            self.failed_to_start += 1
            with contextlib.suppress(Exception):
                ray.kill(replica)
            return
        self.node_of[replica] = node
        self.alive.append(replica)

    def look_for_nodes(self) -> None:
        """With ``grow``, now and then: replicas for the nodes that joined since the last look."""
        import ray

        if not self.grow or time.monotonic() - self.looked_at < LOOK_FOR_NODES_EVERY_S:
            return
        self.looked_at = time.monotonic()
        for node in ray.nodes():
            if node["Alive"] and node["NodeID"] not in self.nodes_seen:
                self.nodes_seen.add(node["NodeID"])
                self.launch(fitting(node, self.resources), node["NodeID"])

    def lose(self, replica: Any) -> None:
        if replica in self.alive:
            self.alive.remove(replica)
            self.lost += 1

    def killed_on_live_nodes(self, died_on: list[str], node_timeout_s: float) -> int:
        """How many of the replicas that died holding a chunk were on nodes still up: only those count against
        it. Ray tells a dead node from missed heartbeats, seconds after its replicas' calls fail, so before a
        chunk is judged, its nodes get ``node_timeout_s`` to be declared down."""
        import ray

        deadline = time.monotonic() + node_timeout_s
        while True:
            up = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
            self.dead_nodes |= {node for node in self.node_of.values() if node not in up}
            for replica in [r for r in self.alive if self.node_of[r] in self.dead_nodes]:
                self.lose(replica)  # lost with its node, before its calls fail: nothing more goes to it
            killed = sum(node in up for node in died_on)
            if killed < POISON or time.monotonic() >= deadline:
                return killed
            time.sleep(0.5)


def cause(exc: Exception) -> Exception:
    """The exception a remote call raised, not Ray's wrapper with the remote traceback."""
    original = getattr(exc, "cause", None)
    return original if isinstance(original, Exception) else exc
