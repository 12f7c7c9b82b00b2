"""``ray``: the simulator's calls spread over replicas on a Ray cluster.

Each replica is a Ray actor holding the scenario's own simulator, built on its
node from the same name and config (embedded on CPU nodes, vllm on GPU nodes).
The engine stays the only writer of the run log: it sends chunks of cache
misses here, at most ``max_in_flight`` per replica, and caches each chunk's
replies as they come back, in any order. A replica or a node that dies loses
only the chunks it held, which go to the survivors (on other nodes first); when
none is left the run stops, and ``simrun run --resume`` continues it on
whatever cluster is there. A chunk is judged to be what kills the simulator
only when replicas died holding it on nodes that are still up: a machine lost
is not a poison prompt.
Ray places and starts the actors; nothing here schedules beyond picking the
least-busy live replica for the next chunk.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import Field, field_validator

from simrun import (
    CheckContext,
    Executor,
    Problem,
    Simulator,
    SimulatorSpec,
    StrictConfig,
    build_simulator,
    hookimpl,
)

ACTOR_OPTIONS = ("num_cpus", "num_gpus", "memory")  # the rest of ``resources`` are the cluster's custom resources
STOP = object()  # the end of the chunks
POISON = 2  # replicas on live nodes that may die holding one chunk before it is judged to be what kills them


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


class RayExecutor(Executor):
    """Replicas of the simulator on a Ray cluster (pip install 'simrun[ray]'), fed chunks as they free up."""

    name = "ray"
    streams = True

    class Config(StrictConfig):
        address: str | None = Field(
            None,
            description="The cluster: 'auto' (a `ray start` on this machine), 'ray://HOST:10001' (Ray Client), "
            "HOST:6379; default: RAY_ADDRESS, else a running local cluster, else a new one on this machine.",
        )
        replicas: int = Field(1, ge=1, description="Copies of the simulator, each a Ray actor.")
        resources: dict[str, float] = Field(
            default_factory=lambda: {"num_cpus": 1},
            description="What each replica reserves: num_cpus, num_gpus, memory (bytes), or any custom resource.",
        )
        max_in_flight: int = Field(2, ge=1, description="Chunks sent to one replica before it answers one.")
        startup_timeout_s: float = Field(
            600, gt=0, description="How long replicas may take to be placed and load their model."
        )
        node_timeout_s: float = Field(
            30,
            ge=0,
            description="How long to wait for Ray to say whether the nodes of replicas that died holding one "
            "chunk are down, before the chunk is judged to kill the simulator (Ray tells a dead node from "
            "missed heartbeats: about 15 s by default).",
        )

        @field_validator("resources")
        @classmethod
        def _non_negative(cls, resources: dict[str, float]) -> dict[str, float]:
            negative = sorted(name for name, amount in resources.items() if amount < 0)
            if negative:
                raise ValueError(f"a resource amount must be 0 or more: {', '.join(negative)}")
            return resources

    @classmethod
    def check(cls, config: StrictConfig, context: CheckContext) -> list[Problem]:
        if importlib.util.find_spec("ray") is None:
            return [Problem("", "the ray executor needs Ray, which is not installed: pip install 'simrun[ray]'")]
        return []

    def __init__(self, config: StrictConfig | None = None):
        super().__init__(config)
        self.actors: list[Any] = []
        self.alive: list[Any] = []
        self.node_of: dict[Any, str] = {}  # each replica's node
        self.dead_nodes: set[str] = set()
        self.lost = self.resubmitted = 0
        self.connected_here = False

    def start(self, simulator: Simulator, spec: SimulatorSpec) -> None:
        import ray

        super().start(simulator, spec)
        if not ray.is_initialized():
            ray.init(address=self.config.address, logging_level=logging.WARNING, log_to_driver=False)
            self.connected_here = True
        resources = dict(self.config.resources)
        options = {name: resources.pop(name) for name in ACTOR_OPTIONS if name in resources}
        actor = ray.remote(Replica).options(**options, resources=resources, max_restarts=0, max_task_retries=0)
        self.actors = [actor.remote(spec) for _ in range(self.config.replicas)]
        self.alive = list(self.actors)
        try:
            placed = ray.get([a.identity.remote() for a in self.actors], timeout=self.config.startup_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise ExecutorError(
                f"{self.config.replicas} replica(s) asking {self.config.resources} each did not start within "
                f"{self.config.startup_timeout_s:g} s; the cluster has {ray.cluster_resources()}"
            ) from None
        except ray.exceptions.RayActorError as exc:
            raise ExecutorError(f"a replica could not build the simulator: {cause(exc)}") from None
        expected = json.dumps(simulator.cache_identity(), sort_keys=True)
        self.node_of = {actor: node for actor, (node, _) in zip(self.actors, placed)}
        for node, identity in placed:
            if json.dumps(identity, sort_keys=True) != expected:
                raise ExecutorError(
                    f"the replica on node {node} builds a different simulator from this machine's "
                    f"({identity} here {simulator.cache_identity()}): its answers would not match the cache"
                )

    def map(
        self, method: Literal["answer", "generate"], chunks: Iterable[list[Any] | None], options: dict[str, Any]
    ) -> Iterator[tuple[int, list[Any]]]:
        """Chunks are drawn from ``chunks`` only as replicas have room for them, so the engine can stream a whole
        run's chunks through one call (a ``None``: nothing is ready until a reply has been yielded)."""
        import ray

        source = iter(chunks)
        pulled: dict[int, list[Any]] = {}  # chunks drawn and not yet answered, by index
        waiting: deque[int] = deque()  # drawn, not on a replica: resubmitted after a loss
        running: dict[Any, tuple[int, Any]] = {}
        died_on: dict[int, list[str]] = {}  # the nodes of the replicas lost while holding each chunk
        alone: set[Any] = set()  # replicas holding a chunk a replica died with, and nothing else
        load = {actor: 0 for actor in self.alive}
        drawn = 0
        exhausted = held = False  # no chunk left; no chunk ready until a reply is yielded
        while True:
            while any(load[a] < self.config.max_in_flight for a in self.alive):
                if not waiting:
                    if exhausted or held:
                        break
                    chunk = next(source, STOP)  # may run a nested map (an enricher's generate): replicas may be lost
                    exhausted, held = chunk is STOP, chunk is None
                    if exhausted or held:
                        break
                    pulled[drawn] = chunk
                    waiting.append(drawn)
                    drawn += 1
                tainted = set(died_on.get(waiting[0], ()))  # a suspect goes alone to an idle replica, on another
                free = [a for a in self.alive if load[a] < self.config.max_in_flight and a not in alone]
                if not (free := [a for a in free if load[a] == 0] if tainted else free):
                    break
                actor = min(free, key=lambda a: (self.node_of[a] in tainted, load[a]))  # node if one is idle
                index = waiting.popleft()
                running[actor.call.remote(method, pulled[index], options)] = (index, actor)
                load[actor] += 1
                if tainted:
                    alone.add(actor)
            if not running:
                if exhausted and not waiting:
                    return
                if self.alive:  # a replica had room, so nothing was in flight when the engine had nothing ready
                    raise RuntimeError("the engine has no chunk ready and none is in flight")
                raise ExecutorError(
                    f"every Ray replica is gone ({self.lost} of {len(self.actors)} lost with their workers); "
                    "the answers so far are saved"
                )
            [done], _ = ray.wait(list(running), num_returns=1)
            index, actor = running.pop(done)
            load[actor] -= 1
            alone.discard(actor)
            try:
                replies = ray.get(done)
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
                self.lose(actor)
                died_on.setdefault(index, []).append(self.node_of[actor])
                if self.killed_on_live_nodes(died_on[index]) >= POISON:
                    first = pulled[index][0]
                    raise ExecutorError(
                        f"{POISON} replicas on nodes that are still up died holding the same chunk of "
                        f"{len(pulled[index])} prompt(s) (the first {getattr(first, 'persona_id', '?')} / "
                        f"{getattr(first, 'question_id', '?')}): something in it kills the simulator, so it is "
                        "not sent again"
                    ) from None
                waiting.appendleft(index)
                self.resubmitted += 1
                continue
            except ray.exceptions.RayTaskError as exc:  # the simulator itself failed: as it would locally
                raise cause(exc) from None
            del pulled[index]
            died_on.pop(index, None)
            held = False
            yield index, replies

    def lose(self, actor: Any) -> None:
        if actor in self.alive:
            self.alive.remove(actor)
            self.lost += 1

    def killed_on_live_nodes(self, died_on: list[str]) -> int:
        """How many of the replicas that died holding a chunk were on nodes still up: only those count against
        it. Ray tells a dead node from missed heartbeats, seconds after its replicas' calls fail, so before a
        chunk is judged, its nodes get ``node_timeout_s`` to be declared down."""
        import ray

        deadline = time.monotonic() + self.config.node_timeout_s
        while True:
            up = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
            self.note_dead_nodes(up)
            killed = sum(node in up for node in died_on)
            if killed < POISON or time.monotonic() >= deadline:
                return killed
            time.sleep(0.5)

    def note_dead_nodes(self, up: set[str]) -> None:
        """Replicas on a node that is down are lost with it, before their calls fail: nothing more goes to them."""
        self.dead_nodes |= {node for node in self.node_of.values() if node not in up}
        for actor in [a for a in self.alive if self.node_of[a] in self.dead_nodes]:
            self.lose(actor)

    def replicas(self) -> tuple[int, int]:
        return len(self.alive), len(self.actors)

    def stats(self) -> dict[str, int]:
        """The live replicas' counters summed (a lost replica's die with it), and the losses."""
        import ray

        total = {
            "replicas_started": len(self.actors),
            "replicas_lost": self.lost,
            "chunks_resubmitted": self.resubmitted,
        }
        try:
            asked = [a.stats.remote() for a in self.alive]
            answered, _ = ray.wait(asked, num_returns=len(asked), timeout=60)
        except (ray.exceptions.RayError, ConnectionError):
            return total  # the cluster went away: the losses above are still worth keeping
        for reply in answered:
            try:
                counters = ray.get(reply)
            except ray.exceptions.RayError:  # a replica lost after the last chunk
                continue
            for name, value in counters.items():
                total[name] = total.get(name, 0) + value
        return total

    def close(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        try:
            ray.get([a.close.remote() for a in self.alive], timeout=60)
        except (ray.exceptions.RayError, ConnectionError):
            pass
        for actor in self.actors:
            with contextlib.suppress(Exception):  # already gone, or the cluster with it: nothing left to release
                ray.kill(actor)
        if self.connected_here:
            ray.shutdown()


def cause(exc: Exception) -> Exception:
    """The exception a remote call raised, not Ray's wrapper with the remote traceback."""
    original = getattr(exc, "cause", None)
    return original if isinstance(original, Exception) else exc


@hookimpl
def register_executors(register):
    register(RayExecutor)
