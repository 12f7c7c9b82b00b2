"""The run log's schema as an ordered list of migrations, each applied once and recorded in ``_migrations``.

A new migration goes at the end; an applied one is never edited (the pattern
of Simon Willison's ``llm``). ``Store.migrate`` applies the missing ones in
order, under the write lock, so processes that open a new file together agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator

import sqlite_utils

from .models import ModelAnswer

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


def text_hash(text: str) -> bytes:
    """The key of a text in ``texts``: 8 bytes of its SHA-256 (no collision in any run log's few distinct texts)."""
    return hashlib.sha256(text.encode()).digest()[:8]


def persona_shape(names: str, provenance: str) -> str:
    """A persona's shape as ``texts`` keeps it: its attribute names (a JSON list) and where each came from (a JSON
    object), one JSON object that the many personas alike share."""
    return f'{{"names": {names}, "provenance": {provenance}}}'


def cache_key_bytes(key: str) -> bytes:
    """A cache key as stored: 16 bytes (the first 32 hex digits of the SHA-256 the engine computes)."""
    return bytes.fromhex(key[:32])


def epoch(timestamp: str | None) -> int | None:
    return None if not timestamp else int(dt.datetime.fromisoformat(timestamp).timestamp())


@migration
def m007_compact_run_log(db: sqlite_utils.Database) -> None:
    """A run log that fits a million personas: every repeated text once, keys as bytes, no second copy of a key.

    Personas keep their attribute names and provenance by the hash of a shared text; answers keep no prompt
    (the engine re-renders it from the persona, the run's prompt settings and its question texts, checked
    against the answer's cache key) and no model name (the run has it); cache keys are 16 bytes. Tables
    keyed by several columns are WITHOUT ROWID, so the key is stored once. An older log's prompts move to
    ``legacy_prompts`` as they were: nothing is lost.
    """
    conn = db.conn
    statements = [
        "create table texts (hash blob primary key, text text not null) without rowid",
        "alter table runs add column model text",
        "alter table runs add column simulator_identity text",
        "create table run_questions (run_id text not null references runs(id), question_id text not null,"
        " users text not null, primary key (run_id, question_id)) without rowid",
        'create table personas_v7 (run_id text not null references runs(id), id integer not null, "batch" integer,'
        ' stratum text, weight real, names blob, "values" text, provenance blob, primary key (run_id, id))'
        " without rowid",
        "create table answers_v7 (run_id text not null references runs(id), persona_id integer not null,"
        ' question_id text not null, "repeat" integer not null default 0, raw text, distribution text,'
        " invalid real, tokens integer, latency_ms real, cache_key blob, cached integer, error text,"
        ' primary key (run_id, persona_id, question_id, "repeat")) without rowid',
        "create table legacy_prompts (run_id text not null, persona_id integer not null, question_id text not null,"
        ' "repeat" integer not null, prompt text, primary key (run_id, persona_id, question_id, "repeat"))'
        " without rowid",
        "create table llm_cache_v7 (key blob primary key, model blob, response text, created_at integer) without rowid",
    ]
    for statement in statements:
        conn.execute(statement)

    texts: dict[bytes, str] = {}

    def ref(text: str) -> bytes:
        key = text_hash(text)
        texts[key] = text
        return key

    def personas() -> Iterator[tuple]:
        for run_id, pid, batch, stratum, weight, attributes, provenance in conn.execute(
            "select run_id, id, batch, stratum, weight, attributes, provenance from personas"
        ):
            values = json.loads(attributes)
            yield (
                run_id,
                pid,
                batch,
                stratum,
                weight,
                ref(json.dumps(list(values))),
                json.dumps(list(values.values())),
                ref(provenance),
            )

    conn.executemany("insert into personas_v7 values (?, ?, ?, ?, ?, ?, ?, ?)", personas())
    models = dict(conn.execute("select run_id, max(model) from answers group by run_id"))
    conn.executemany("update runs set model = ? where id = ?", [(model, run) for run, model in models.items()])
    conn.execute('insert into legacy_prompts select run_id, persona_id, question_id, "repeat", prompt from answers')
    conn.executemany(
        "insert into answers_v7 values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (*row[:9], b"".join(cache_key_bytes(k) for k in (row[9] or "").split(",") if k), *row[10:])
            for row in conn.execute(
                'select run_id, persona_id, question_id, "repeat", raw, distribution, invalid, tokens, latency_ms,'
                " cache_key, cached, error from answers"
            )
        ),
    )
    conn.executemany(
        "insert or ignore into llm_cache_v7 values (?, ?, ?, ?)",
        (
            (cache_key_bytes(key), ref(model or ""), response, epoch(created))
            for key, model, response, created in conn.execute("select key, model, response, created_at from llm_cache")
        ),
    )
    conn.executemany("insert or ignore into texts values (?, ?)", texts.items())
    conn.execute("pragma legacy_alter_table = on")  # a user's view on an old table is left to find the new one
    for table in ("personas", "answers", "llm_cache"):
        conn.execute(f"drop table {table}")
        conn.execute(f"alter table {table}_v7 rename to {table}")
    conn.execute("pragma legacy_alter_table = off")


@migration
def m008_clustered_prompt_keys(db: sqlite_utils.Database) -> None:
    """A prompt's cache key now begins with 4 bytes of the hash of its system text (``PromptKeys``), so a persona's
    replies sit side by side in ``llm_cache`` and a commit writes a page per persona, not per reply.

    Entries already there keep their keys, since a hash cannot be recomputed without its request: ``cache_formats``
    notes that this log holds some, and the engine then also looks a miss up under its old key. Answers keep the
    keys they were asked under; ``simrun show --prompt`` checks a prompt against either form.
    """
    db.conn.execute("create table cache_formats (format text primary key, noted_at text)")
    if db.conn.execute("select 1 from llm_cache limit 1").fetchone():
        db.conn.execute(
            "insert into cache_formats values ('whole-request', ?)",
            [dt.datetime.now(dt.UTC).isoformat(timespec="seconds")],
        )


@migration
def m009_metric_questions(db: sqlite_utils.Database) -> None:
    """A metric's figure may belong to one question (``MetricValue.question``). Figures logged before keep the
    question in their name (``tvd[Q1]``), which displays the same."""
    db["metrics"].add_column("question", str, not_null_default="")
    db["metrics"].transform(pk=("run_id", "metric", "name", "question", "stratum"))


@migration
def m010_runs_by_number(db: sqlite_utils.Database) -> None:
    """A run log sized for 10^9 answers. A persona's or answer's run is a number, not its 22-character id; a
    persona's attribute names and provenance are one shared text (its shape), its values compact JSON; an answer
    whose reply the cache holds under its key refers to it instead of keeping a copy (``answers.reply`` is empty
    then), and a cache entry never changes once written, so the reference stays true. An older log's answers keep
    their replies, packed; its cache loses the model name and time of each entry, which nothing read."""
    from .store.cache import pack_answer  # the store imports this module

    conn = db.conn
    conn.execute("alter table runs add column number integer")
    conn.execute(
        "update runs set number = (select n from (select id, row_number() over (order by created_at, id) as n"
        " from runs) as ordered where ordered.id = runs.id)"
    )
    conn.execute("create unique index runs_number on runs(number)")
    statements = [
        'create table personas_v10 (run integer not null references runs(number), id integer not null, "batch"'
        ' integer, stratum text, weight real, shape blob, "values" text, primary key (run, id)) without rowid',
        "create table answers_v10 (run integer not null references runs(number), persona_id integer not null,"
        ' question_id text not null, "repeat" integer not null default 0, cache_key blob, cached integer,'
        ' reply blob, error text, primary key (run, persona_id, question_id, "repeat")) without rowid',
        "create table llm_cache_v10 (key blob primary key, response) without rowid",
        "insert into llm_cache_v10 select key, response from llm_cache",
    ]
    for statement in statements:
        conn.execute(statement)
    texts = dict(conn.execute("select hash, text from texts"))
    shapes: dict[tuple[bytes, bytes], bytes] = {}

    def shape(names: bytes, provenance: bytes) -> bytes:
        if (names, provenance) not in shapes:
            text = persona_shape(texts[names], texts[provenance])
            shapes[names, provenance] = text_hash(text)
            conn.execute("insert or ignore into texts values (?, ?)", [shapes[names, provenance], text])
        return shapes[names, provenance]

    conn.executemany(
        "insert into personas_v10 values (?, ?, ?, ?, ?, ?, ?)",
        (
            (*row[:5], shape(row[5], row[7]), json.dumps(json.loads(row[6]), separators=(",", ":")))
            for row in conn.execute(
                'select r.number, p.id, p.batch, p.stratum, p.weight, p.names, p."values", p.provenance'
                " from personas p join runs r on r.id = p.run_id"
            )
        ),
    )
    conn.execute("delete from texts where hash not in (select shape from personas_v10)")

    def packed(
        raw: str | None,
        distribution: str | None,
        invalid: float | None,
        tokens: int | None,
        latency_ms: float | None,
        error: str | None,
    ) -> bytes | str:
        answer = ModelAnswer.model_construct(
            distribution=json.loads(distribution or "{}"),
            invalid=invalid or 0.0,
            raw=raw or "",
            tokens=tokens or 0,
            latency_ms=latency_ms or 0.0,
            error=error,
        )
        return pack_answer(answer)

    conn.executemany(
        "insert into answers_v10 values (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (*row[:4], row[4], row[5], packed(*row[6:11], row[11]), row[11])
            for row in conn.execute(
                'select r.number, a.persona_id, a.question_id, a."repeat", a.cache_key, a.cached, a.raw,'
                " a.distribution, a.invalid, a.tokens, a.latency_ms, a.error from answers a"
                " join runs r on r.id = a.run_id"
            )
        ),
    )
    conn.execute("pragma legacy_alter_table = on")
    for table in ("personas", "answers", "llm_cache"):
        conn.execute(f"drop table {table}")
        conn.execute(f"alter table {table}_v10 rename to {table}")
    conn.execute("pragma legacy_alter_table = off")
