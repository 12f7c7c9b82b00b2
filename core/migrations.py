"""The run log's schema as an ordered list of migrations, each applied once and recorded in ``_migrations``.

A new migration goes at the end; an applied one is never edited (the pattern
of Simon Willison's ``llm``). ``Store.migrate`` applies the missing ones in
order, under the write lock, so processes that open a new file together agree.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {
            "id": str,
            "name": str,
            "scenario_yaml": str,
            "scenario_hash": str,
            "scenario_json": str,
            "seed": int,
            "components": str,
            "status": str,
            "error": str,
            "created_at": str,
            "finished_at": str,
            "timings": str,
        },
        pk="id",
    )
    db["personas"].create(
        {
            "run_id": str,
            "id": int,
            "stratum": str,
            "weight": float,
            "attributes": str,
            "provenance": str,
        },
        pk=("run_id", "id"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["answers"].create(
        {
            "run_id": str,
            "persona_id": int,
            "question_id": str,
            "prompt": str,
            "raw": str,
            "distribution": str,
            "invalid": float,
            "model": str,
            "tokens": int,
            "latency_ms": float,
            "cache_key": str,
            "cached": int,
        },
        pk=("run_id", "persona_id", "question_id"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["aggregates"].create(
        {
            "run_id": str,
            "question_id": str,
            "stratum": str,
            "option": str,
            "share": float,
            "weight": float,
            "invalid": float,
        },
        pk=("run_id", "question_id", "stratum", "option"),
    )
    db["metrics"].create(
        {"run_id": str, "metric": str, "name": str, "stratum": str, "value": float},
        pk=("run_id", "metric", "name", "stratum"),
    )
    db["llm_cache"].create({"key": str, "model": str, "response": str, "created_at": str}, pk="key")
    db["progress"].create(
        {"run_id": str, "batch": int, "personas": int, "done_at": str},
        pk=("run_id", "batch"),
    )


@migration
def m002_simulator_stats(db: sqlite_utils.Database) -> None:
    db["runs"].add_column("simulator_stats", str)


@migration
def m003_sweeps(db: sqlite_utils.Database) -> None:
    db["sweeps"].create(
        {
            "id": str,
            "name": str,
            "scenario_yaml": str,
            "scenario_hash": str,
            "ablation": str,
            "variants": str,
            "status": str,
            "created_at": str,
            "finished_at": str,
        },
        pk="id",
    )
    db["runs"].add_column("sweep_id", str)
    db["runs"].add_column("variant", str)
    db["personas"].add_column("batch", int)


@migration
def m004_answer_repeats(db: sqlite_utils.Database) -> None:
    db["answers"].add_column("repeat", int, not_null_default=0)
    db["answers"].transform(pk=("run_id", "persona_id", "question_id", "repeat"))


@migration
def m005_run_owner(db: sqlite_utils.Database) -> None:
    db["runs"].add_column("owner", str)


@migration
def m006_answer_errors(db: sqlite_utils.Database) -> None:
    db["answers"].add_column("error", str)
