"""Bytes the run log spends per persona and per answer (cache included), measured with SQLite's dbstat.

A census run of 20,000 personas (392 per state and DC) x 5 questions on the example plugin's instant
simulator (a hash, no model), in a fresh run log. Persona bytes are the personas table and its indexes
plus the shared text table; answer bytes are the answers and model-call cache tables and their indexes.
Prints one JSON line (targets: <= 400 bytes per persona, <= 250 per answer).

    python bench/runlog.py [--per-state 392] [--questions 5]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from pathlib import Path

from simrun.engine import Engine
from simrun.registry import load_registry
from simrun.scenario import parse_scenario
from simrun.store import Store

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "example_plugin"
PERSONA_TABLES = {"personas", "texts"}
ANSWER_TABLES = {"answers", "llm_cache"}


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes on disk per table, its indexes counted with it."""
    with sqlite3.connect(db) as connection:
        owners = dict(connection.execute("select name, tbl_name from sqlite_master where type in ('table', 'index')"))
        sizes: dict[str, int] = {}
        for name, size in connection.execute("select name, sum(pgsize) from dbstat group by name"):
            table = owners.get(name, name)
            sizes[table] = sizes.get(table, 0) + size
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-state", type=int, default=392)
    parser.add_argument("--questions", type=int, default=5)
    args = parser.parse_args()
    questions = [
        {"id": f"q{i}", "text": f"How much do you agree with statement number {i}?", "options": ["Agree", "Disagree"]}
        for i in range(args.questions)
    ]
    scenario = {
        "name": "runlog",
        "batch_size": 256,
        "sampler": {"use": "census", "with": {"states": "all", "per_state": args.per_state}},
        "enrichers": [{"use": "region"}],
        "simulator": {"use": "instant"},
        "questions": questions,
    }
    registry = load_registry(EXAMPLE)
    loaded = parse_scenario(json.dumps(scenario), "bench/runlog.py", registry)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runlog.db"
        store = Store(db)
        run_id = Engine(registry, store).run(loaded)
        counts = store.runs.counts(run_id)
        store.db.conn.close()
        sizes = table_bytes(db)
        file_bytes = db.stat().st_size
    persona_bytes = sum(size for table, size in sizes.items() if table in PERSONA_TABLES)
    answer_bytes = sum(size for table, size in sizes.items() if table in ANSWER_TABLES)
    print(
        json.dumps(
            {
                "bytes_per_persona": round(persona_bytes / counts["personas"], 1),
                "bytes_per_answer": round(answer_bytes / counts["answers"], 1),
                "personas": counts["personas"],
                "answers": counts["answers"],
                "file_bytes": file_bytes,
                "tables": sizes,
            }
        )
    )


if __name__ == "__main__":
    main()
