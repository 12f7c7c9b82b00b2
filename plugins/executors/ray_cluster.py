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
With ``replicas: auto`` there is a replica per unit of the ``resources`` each
asks for on every node at the start, and a node that joins mid-run (Ray's
autoscaler, a ``ray start``) gets its own as soon as it is seen. Ray places and
starts the actors; nothing here schedules beyond picking the least-busy live
replica for the next chunk.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from simrun import (
    CheckContext,
    Executor,
    Problem,
    Simulator,
    SimulatorSpec,
    StrictConfig,
    hookimpl,
)

from .ray_replicas import LOOK_FOR_NODES_EVERY_S, POISON, ExecutorError, Fleet, cause, fitting

STOP = object()  # the end of the chunks


class Connection:
    """This process's one connection to Ray, shared by the executors of a sweep's variants running side by side:
    made by the first that needs it, closed when the last is done, if simrun made it."""

    lock = threading.Lock()
    users = 0
    made_here = False

    @classmethod
    def open(cls, address: str | None) -> None:
        import ray

        with cls.lock:
            if not ray.is_initialized():
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
                cls.made_here = True
            cls.users += 1

    @classmethod
    def close(cls) -> None:
        import ray

        with cls.lock:
            cls.users -= 1
            if cls.users == 0 and cls.made_here:
                ray.shutdown()
                cls.made_here = False


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
        replicas: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
            1,
            description="Copies of the simulator, each a Ray actor; 'auto': one per unit of `resources` on every "
            "node, and more for nodes that join mid-run.",
        )
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
        problems = []
        if importlib.util.find_spec("ray") is None:
            problems.append(
                Problem("", "the ray executor needs Ray, which is not installed: pip install 'simrun[ray]'")
            )
        if config.replicas == "auto" and not any(amount > 0 for amount in config.resources.values()):
            problems.append(
                Problem("replicas", "replicas: auto counts replicas by their resources: give one an amount above 0")
            )
        return problems

    def __init__(self, config: StrictConfig | None = None):
        super().__init__(config)
        self.fleet: Fleet | None = None
        self.resubmitted = self.answered_by_joined = 0
        self.connected = False

    def start(self, simulator: Simulator, spec: SimulatorSpec) -> None:
        import ray

        super().start(simulator, spec)
        Connection.open(self.config.address)
        self.connected = True
        auto = self.config.replicas == "auto"
        self.fleet = fleet = Fleet(spec, self.config.resources, simulator.cache_identity(), grow=auto)
        count = fleet.on_cluster() if auto else self.config.replicas
        if count == 0:
            raise ExecutorError(
                f"no node has room for a replica asking {self.config.resources}; the cluster has "
                f"{ray.cluster_resources()}"
            )
        fleet.launch(count)
        # auto starts with the first replica up (another run may hold part of the cluster), the rest join as placed
        needed = 1 if auto else count
        ready, _ = ray.wait(list(fleet.starting), num_returns=needed, timeout=self.config.startup_timeout_s)
        if len(ready) < needed:
            room = ""
            if any(amount > 0 for amount in self.config.resources.values()):
                holds = fleet.on_cluster()
                free = fitting({"Resources": ray.available_resources()}, self.config.resources)
                advice = (
                    f"ask for at most {holds} (executor.with.replicas), or replicas: auto"
                    if holds
                    else "ask for resources its nodes have (executor.with.resources)"
                )
                room = (
                    f": the cluster's nodes hold {holds} such replica(s) in all, {free} in what is free now (other"
                    f" runs, or the other variants of sweep --parallel, hold the rest); {advice}"
                )
            raise ExecutorError(
                f"{needed} replica(s) asking {self.config.resources} each did not start within "
                f"{self.config.startup_timeout_s:g} s{room}; the cluster has {ray.cluster_resources()}"
            )
        ready, _ = ray.wait(list(fleet.starting), num_returns=len(fleet.starting), timeout=0)
        for started in ready:
            fleet.admit(started)

    def map(
        self, method: Literal["answer", "generate"], chunks: Iterable[list[Any] | None], options: dict[str, Any]
    ) -> Iterator[tuple[int, list[Any]]]:
        """Chunks are drawn from ``chunks`` only as replicas have room for them, so the engine can stream a whole
        run's chunks through one call (a ``None``: nothing is ready until a reply has been yielded)."""
        import ray

        fleet = self.fleet
        assert fleet is not None, "start() first"
        source = iter(chunks)
        pulled: dict[int, list[Any]] = {}  # chunks drawn and not yet answered, by index
        waiting: deque[int] = deque()  # drawn, not on a replica: resubmitted after a loss
        running: dict[Any, tuple[int, Any]] = {}
        died_on: dict[int, list[str]] = {}  # the nodes of the replicas lost while holding each chunk
        alone: set[Any] = set()  # replicas holding a chunk a replica died with, and nothing else
        load: defaultdict[Any, int] = defaultdict(int)  # chunks on each replica (a nested map may admit one)
        drawn = 0
        exhausted = held = False  # no chunk left; no chunk ready until a reply is yielded
        while True:
            while any(load[a] < self.config.max_in_flight for a in fleet.alive):
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
                free = [a for a in fleet.alive if load[a] < self.config.max_in_flight and a not in alone]
                if not (free := [a for a in free if load[a] == 0] if tainted else free):
                    break
                actor = min(free, key=lambda a: (fleet.node_of[a] in tainted, load[a]))  # node if one is idle
                index = waiting.popleft()
                running[actor.call.remote(method, pulled[index], options)] = (index, actor)
                load[actor] += 1
                if tainted:
                    alone.add(actor)
            if not running:
                if exhausted and not waiting:
                    return
                if fleet.alive:  # a replica had room, so nothing was in flight when the engine had nothing ready
                    raise RuntimeError("the engine has no chunk ready and none is in flight")
            if not running and not fleet.starting:
                raise ExecutorError(
                    f"every Ray replica is gone ({fleet.lost} of {len(fleet.actors)} lost with their workers); "
                    "the answers so far are saved"
                )
            fleet.look_for_nodes()
            fleet.expire(self.config.startup_timeout_s)
            timeout = LOOK_FOR_NODES_EVERY_S if fleet.grow or fleet.starting else None
            done_now, _ = ray.wait([*running, *fleet.starting], num_returns=1, timeout=timeout)
            if not done_now:
                continue
            [done] = done_now
            if done in fleet.starting:  # a replica for a node that joined is up: it takes chunks from now on
                fleet.admit(done, mid_run=True)
                continue
            index, actor = running.pop(done)
            load[actor] -= 1
            alone.discard(actor)
            try:
                replies = ray.get(done)
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
                fleet.lose(actor)
                died_on.setdefault(index, []).append(fleet.node_of[actor])
                if fleet.killed_on_live_nodes(died_on[index], self.config.node_timeout_s) >= POISON:
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
            self.answered_by_joined += actor in fleet.joined
            held = False
            yield index, replies

    def replicas(self) -> tuple[int, int]:
        return (len(self.fleet.alive), len(self.fleet.alive) + self.fleet.lost) if self.fleet else (0, 0)

    def stats(self) -> dict[str, int]:
        """The live replicas' counters summed (a lost replica's die with it), and the losses."""
        import ray

        fleet = self.fleet
        if fleet is None:
            return {}
        total = {
            "replicas_started": len(fleet.alive) + fleet.lost,
            "replicas_lost": fleet.lost,
            "chunks_resubmitted": self.resubmitted,
        }
        if fleet.joined:  # for nodes that joined mid-run
            total["replicas_added"] = len(fleet.joined)
            total["chunks_answered_by_added"] = self.answered_by_joined
        if fleet.failed_to_start:
            total["replicas_failed_to_start"] = fleet.failed_to_start
        try:
            asked = [a.stats.remote() for a in fleet.alive]
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

        if not self.connected:
            return
        if self.fleet is not None and ray.is_initialized():
            try:
                ray.get([a.close.remote() for a in self.fleet.alive], timeout=60)
            except (ray.exceptions.RayError, ConnectionError):
                pass
            for actor in self.fleet.actors:
                with contextlib.suppress(Exception):  # already gone, or the cluster with it: nothing to release
                    ray.kill(actor)
        self.connected = False
        Connection.close()


@hookimpl
def register_executors(register):
    register(RayExecutor)
