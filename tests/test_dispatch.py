"""Streaming dispatch: the next batches' chunks go out while earlier ones are answered, batches still commit whole
and in order, the window of batches in memory stays bounded, and the answers are the local executor's."""

import pytest
from conftest import EXAMPLE

import simrun.engine.dispatch
from simrun import Executor, StrictConfig, hookimpl
from simrun.engine import Engine
from simrun.engine.dispatch import Window
from simrun.registry import load_registry
from simrun.scenario import load_scenario
from simrun.store import Store

STOP = object()


class Shuffled(Executor):
    """A streaming executor that holds up to ``in_flight`` chunks and answers the newest first: out of order, as
    replicas finishing at different speeds do."""

    name = "shuffled"
    streams = True

    class Config(StrictConfig):
        in_flight: int = 5

    most_held = 0  # the most chunks it ever held at once

    def map(self, method, chunks, options):
        call = getattr(self.simulator, method)
        source, held, drawn, exhausted = iter(chunks), [], 0, False
        while True:
            while len(held) < self.config.in_flight and not exhausted:
                chunk = next(source, STOP)
                exhausted = chunk is STOP
                if chunk is None or exhausted:  # None: nothing more until a reply is yielded
                    break
                held.append((drawn, chunk))
                drawn += 1
            Shuffled.most_held = max(Shuffled.most_held, len(held))
            if not held:
                assert exhausted, "the engine sent None with nothing in flight"
                return
            index, chunk = held.pop()
            yield index, call(chunk, **options)


class Order:
    """The batches as observers see them committed."""

    def __init__(self):
        self.batches: list[list[int]] = []

    @hookimpl
    def batch_done(self, run, personas, answers):
        self.batches.append([p.id for p in personas])


@pytest.fixture
def registry():
    registry = load_registry(EXAMPLE)
    registry.add("executor", "test", "test", "", Shuffled)
    return registry


def answers_of(store, run_id):
    return [(r["persona_id"], r["question_id"], r["distribution"]) for r in store.answers.rows(run_id)]


@pytest.mark.parametrize("window_personas,held", [(4096, 5), (4, 2)])
def test_out_of_order_replies_commit_whole_batches_in_order_with_the_local_answers(
    registry, tmp_path, monkeypatch, window_personas, held
):
    monkeypatch.setattr(simrun.engine.dispatch, "WINDOW_PERSONAS", window_personas)
    Shuffled.most_held = 0
    order = Order()
    registry.manager.register(order)
    try:
        towns = ["batch_size=2", "sampler.with.per_town=20"]
        shuffled_store, local_store = Store(tmp_path / "s.db"), Store(tmp_path / "l.db")
        loaded = load_scenario(EXAMPLE / "towns.yaml", registry, [*towns, "executor={use: shuffled}"])
        shuffled = Engine(registry, shuffled_store).run(loaded)
    finally:
        registry.manager.unregister(order)
    local = Engine(registry, local_store).run(load_scenario(EXAMPLE / "towns.yaml", registry, towns))
    assert answers_of(shuffled_store, shuffled) == answers_of(local_store, local)
    assert order.batches == [[i, i + 1] for i in range(0, 40, 2)]  # every batch whole, in order
    # chunks of 5 batches out at once, the executor never waiting on a batch; or as many as the window holds
    assert Shuffled.most_held == held


def test_the_window_holds_a_bounded_number_of_batches_and_commits_a_cached_one_at_once():
    committed = []

    class Ready:  # a batch whose answers all came from the cache
        waiting, complete, batch = 0, True, []

        def answers(self):
            return []

    class Pending(Ready):
        waiting, complete = 1, False

        def requests(self, chunk):
            return ["prompt"]

        def take(self, chunk, replies):
            self.complete = True

    window = Window(batch_size=2048, commit=lambda index, batch, answers: committed.append(index))
    assert window.limit == 2  # 4096 personas: two batches of 2048
    assert list(window.add(0, Ready())) == [] and committed == [0] and not window.full
    assert list(window.add(1, Pending())) == [["prompt"]] and committed == [0]
    assert list(window.add(2, Ready())) == [] and window.full and committed == [0]  # waits behind batch 1
    window.take(0, ["reply"])
    assert committed == [0, 1, 2] and not window.full
    assert Window(batch_size=64, commit=print).limit == 64


def test_a_prompt_two_batches_in_flight_share_is_sent_once(registry, tmp_path):
    """Towns' ages repeat: later batches ask what earlier ones have sent and not had answered yet."""
    sent = {}
    for executor in ("shuffled", "local"):
        log = tmp_path / f"{executor}.log"
        towns = ["batch_size=4", "sampler.with.per_town=150", f"executor={{use: {executor}}}"]
        loaded = load_scenario(EXAMPLE / "towns.yaml", registry, [*towns, f"simulator.with.call_log={log}"])
        store = Store(tmp_path / f"{executor}.db")
        run_id = Engine(registry, store).run(loaded)
        prompts = log.read_text().split("\x1e")[:-1]
        sent[executor] = (len(prompts), answers_of(store, run_id))
        assert len(prompts) == len(set(prompts)) < 600  # each distinct prompt once, fewer than the 600 answers
    assert sent["shuffled"] == sent["local"]
