"""The ``runs`` and ``sweeps`` tables: what was run, with what, by which process, and how it ended.

A run being executed is owned by its process (``owner``), so a second ``--resume`` of a live run is refused and
a dead owner's run taken over.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..concurrency import StoreError, alive, this_process, writes
from .encoding import dumps, new_id, now, sha256
from .table import Table

if TYPE_CHECKING:
    from . import Store


def sweep_hash(scenario: dict) -> str:
    """A sweep's identity: its scenario but the executor, so a sweep resumed on another cluster is the same one."""
    return sha256(dumps({key: value for key, value in scenario.items() if key != "executor"}))


class Runs(Table):
    def __init__(self, store: Store):
        super().__init__(store)
        self.numbers: dict[str, int] = {}  # run id -> number, which never changes

    @writes
    def create(
        self,
        name: str,
        scenario_yaml: str,
        scenario: dict,
        seed: int,
        components: list[dict],
        sweep_id: str | None = None,
        variant: str | None = None,
    ) -> str:
        run_id = new_id()
        (number,) = self.db.execute("select coalesce(max(number), 0) + 1 from runs").fetchone()
        self.db["runs"].insert(
            {
                "id": run_id,
                "number": number,
                "name": name,
                "scenario_yaml": scenario_yaml,
                "scenario_hash": sha256(dumps(scenario)),
                "scenario_json": dumps(scenario),
                "seed": seed,
                "components": dumps(components),
                "status": "running",
                "error": None,
                "created_at": now(),
                "finished_at": None,
                "timings": "{}",
                "sweep_id": sweep_id,
                "variant": variant,
                "owner": dumps(this_process()),
            }
        )
        return run_id

    def get(self, run_id: str) -> dict:
        rows = list(self.db["runs"].rows_where("id = ?", [run_id]))
        if not rows:
            raise KeyError(run_id)
        return rows[0]

    def number(self, run_id: str) -> int:
        """The run's number: what its personas and answers carry instead of its id (a byte or two, not 22)."""
        if (number := self.numbers.get(run_id)) is None:
            row = self.db.execute("select number from runs where id = ?", [run_id]).fetchone()
            if row is None:
                raise KeyError(run_id)
            number = self.numbers[run_id] = row[0]
        return number

    def all(self) -> list[dict]:
        return list(self.db["runs"].rows_where(order_by="created_at desc, id desc"))

    @writes
    def update(self, run_id: str, **fields: Any) -> None:
        self.db["runs"].update(run_id, fields)

    @writes
    def claim(self, run_id: str, take_over: bool = False) -> None:
        """Own a run for this process, to resume it: refused while it is finished or a live process owns it
        (``take_over``: even then, for an owner on another host that is gone)."""
        record = self.get(run_id)
        if record["status"] == "finished":
            raise StoreError(f"run {run_id} has already finished")
        owner = json.loads(record.get("owner") or "null")
        if owner and owner != this_process() and alive(owner) and not take_over:
            raise StoreError(
                f"run {run_id} is being executed by process {owner['pid']} on {owner['host']}: "
                f"wait for it to end (simrun show {run_id}), or stop that process and resume"
                + (
                    "; if that host is gone, resume with --take-over"
                    if owner.get("host") != this_process()["host"]
                    else ""
                )
            )
        self.db["runs"].update(run_id, {"owner": dumps(this_process()), "status": "running", "error": None})

    @writes
    def add_stats(self, run_id: str, stats: dict[str, int]) -> None:
        """Add a (resumed) session's simulator counters to the run's totals."""
        total = json.loads(self.get(run_id).get("simulator_stats") or "{}")
        for name, value in stats.items():
            total[name] = total.get(name, 0) + value
        self.update(run_id, simulator_stats=dumps(total))

    @writes
    def describe(self, run_id: str, model: str, identity: dict, questions: dict[str, dict]) -> None:
        """What re-renders and checks the run's prompts: the simulator's model and identity, and per question its
        option labels and the user text of each option order asked (``{"labels": [...], "users": [...]}``)."""
        self.db.execute(
            "update runs set model = ?, simulator_identity = ? where id = ?", [model, dumps(identity), run_id]
        )
        self.db.conn.executemany(
            "insert or replace into run_questions values (?, ?, ?)",
            [(run_id, question_id, dumps(asked)) for question_id, asked in questions.items()],
        )

    def counts(self, run_id: str) -> dict[str, int]:
        """How many personas, answers and metric values the run has logged."""
        number = self.number(run_id)
        return {
            "personas": self.db["personas"].count_where("run = ?", [number]),
            "answers": self.db["answers"].count_where("run = ?", [number]),
            "metrics": self.db["metrics"].count_where("run_id = ?", [run_id]),
        }


class Sweeps(Table):
    @writes
    def create(self, name: str, scenario_yaml: str, scenario: dict, ablation: dict, variants: list[str]) -> str:
        sweep_id = new_id()
        self.db["sweeps"].insert(
            {
                "id": sweep_id,
                "name": name,
                "scenario_yaml": scenario_yaml,
                "scenario_hash": sweep_hash(scenario),
                "ablation": dumps(ablation),
                "variants": dumps(variants),
                "status": "running",
                "created_at": now(),
                "finished_at": None,
            }
        )
        return sweep_id

    def unfinished(self, scenario: dict) -> str | None:
        """The newest unfinished sweep of exactly this scenario: running it again resumes it."""
        rows = list(
            self.db["sweeps"].rows_where(
                "scenario_hash = ? and status != 'finished'",
                [sweep_hash(scenario)],
                order_by="created_at desc, id desc",
                limit=1,
            )
        )
        return rows[0]["id"] if rows else None

    def get(self, sweep_id: str) -> dict:
        rows = list(self.db["sweeps"].rows_where("id = ?", [sweep_id]))
        if not rows:
            raise KeyError(sweep_id)
        return rows[0]

    def runs(self, sweep_id: str) -> dict[str, list[dict]]:
        """Variant label -> its run records, one per replicate (seed), by seed."""
        runs: dict[str, list[dict]] = {}
        for r in self.db["runs"].rows_where("sweep_id = ?", [sweep_id], order_by="seed, created_at"):
            runs.setdefault(r["variant"], []).append(r)
        return runs

    @writes
    def finish(self, sweep_id: str) -> None:
        self.db["sweeps"].update(sweep_id, {"status": "finished", "finished_at": now()})
