"""Bytes the run log file takes per persona and per answer, model-call cache included: what a user pays for.

A census run (40 personas per state and DC: 2,040) x 25 three-option questions on the example plugin's instant
simulator (a hash, no model: every answer distinct, tokens and latency zero), in a fresh run log. The file is
measured after ``PRAGMA wal_checkpoint(TRUNCATE)``, so the write-ahead log is in it. Persona bytes are the pages
of the personas table and the shared texts (dbstat, free space in them included); answer bytes are the rest of
the file (answers, the cache, every other table, free pages and the file's own pages) over the answers.
Prints one JSON line (targets: <= 250 bytes per persona, <= 120 per answer).

    python bench/runlog.py [--per-state 40] [--questions 25]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from simrun.engine import Engine
from simrun.registry import load_registry
from simrun.scenario import parse_scenario
from simrun.store import Store

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "example_plugin"
PERSONA_TABLES = {"personas", "texts"}
PAPER_ANSWERS = 3 * 10**9  # the seed paper's simulated answers


def table_bytes(connection: sqlite3.Connection) -> dict[str, int]:
    """Bytes on disk per table (pages, free space in them included), its indexes counted with it."""
    owners = dict(connection.execute("select name, tbl_name from sqlite_master where type in ('table', 'index')"))
    sizes: dict[str, int] = {}
    for name, size in connection.execute("select name, sum(pgsize) from dbstat group by name"):
        table = owners.get(name, name)
        sizes[table] = sizes.get(table, 0) + size
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-state", type=int, default=40)
    parser.add_argument("--questions", type=int, default=25)
    args = parser.parse_args()
    questions = [
        {
            "id": f"q{i}",
            "text": f"How much do you agree with statement number {i}?",
            "options": ["Agree", "Disagree", "Not sure"],
        }
        for i in range(args.questions)
    ]
    scenario = {
        "name": "runlog",
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
        with closing(sqlite3.connect(db)) as connection:
            connection.execute("pragma wal_checkpoint(truncate)")
            replies = connection.execute("select count(*) from llm_cache").fetchone()[0]
            sizes = table_bytes(connection)
        file_bytes = sum(path.stat().st_size for path in Path(tmp).iterdir())  # the WAL is empty now
    persona_bytes = sum(size for table, size in sizes.items() if table in PERSONA_TABLES)
    per_answer = (file_bytes - persona_bytes) / counts["answers"]
    print(
        json.dumps(
            {
                "bytes_per_persona": round(persona_bytes / counts["personas"], 1),
                "bytes_per_answer": round(per_answer, 1),
                "paper_run_gb": round(per_answer * PAPER_ANSWERS / 1e9),
                "personas": counts["personas"],
                "answers": counts["answers"],
                "distinct_replies": replies,
                "file_bytes": file_bytes,
                "tables": sizes,
            }
        )
    )


if __name__ == "__main__":
    main()
