"""The run log: one SQLite file holding every run, persona, prompt, answer and metric.

``Store`` opens the file and hands out one object per concern, each in its own module with one verb per
method (the way ``sqlite-utils`` hands out tables):

- ``runs``, ``sweeps`` (``runs.py``): what was run, with what, by which process, how it ended;
- ``cache`` (``cache.py``): every model reply, under a key made of what was asked;
- ``texts``, ``prompts`` (``texts.py``): long texts kept once, and prompts re-rendered from them;
- ``personas``, ``answers`` (``answers.py``): a run's people and their answers, committed batch by batch;
- ``results`` (``results.py``): aggregates, metric values, unusable enrichment outputs.

Schema changes are an ordered list of migrations (``simrun.migrations``), each applied once and recorded in
``_migrations`` (the pattern of Simon Willison's ``llm``).

Many processes may share one file: readers open it read-only and write nothing; every write transaction takes
the lock up front (``BEGIN IMMEDIATE``), waits for it up to a busy timeout and is retried whole if it still
cannot have it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import sqlite_utils

from ..concurrency import StoreError, T, retrying
from ..migrations import MIGRATIONS
from .answers import Answers, Personas
from .cache import KEY_BYTES, SQL_FUNCTIONS, Cache, PromptKeys, cache_key_of, pack_answer, unpack_answer
from .encoding import dumps, now, plain_dumps
from .results import Results
from .runs import Runs, Sweeps
from .texts import Prompts, Texts

__all__ = [
    "KEY_BYTES",
    "add_functions",
    "PromptKeys",
    "Store",
    "StoreError",
    "cache_key_of",
    "dumps",
    "now",
    "pack_answer",
    "plain_dumps",
    "unpack_answer",
]

BUSY_TIMEOUT_S = 30.0  # how long one statement waits for another process's lock


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}


def add_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions that read a stored reply (``answers.reply``, ``llm_cache.response``):
    ``simrun_distribution(reply)``, ``simrun_invalid(reply)`` and ``simrun_raw(reply)``."""
    for name, function in SQL_FUNCTIONS.items():
        conn.create_function(name, 1, function, deterministic=True)


class Store:
    """The run log file: every read and write of it goes through the tables this hands out.

    ``read_only`` opens an existing file for reading only (a missing file is a
    ``StoreError``, never created); otherwise the file and its schema are
    created or migrated as needed, safely when several processes start at once.
    """

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = str(path)
        self.read_only = read_only
        self.depth = 0  # write transactions open in this store (nested ones share the outermost)
        self.runs, self.sweeps = Runs(self), Sweeps(self)
        self.cache = Cache(self)
        self.texts, self.prompts = Texts(self), Prompts(self)
        self.personas, self.answers = Personas(self), Answers(self)
        self.results = Results(self)
        try:
            self.open()
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.explain(exc)) from None

    def open(self) -> None:
        file = Path(self.path)
        if file.exists() and not file.is_file():
            raise StoreError(f"{self.path} is not a file: give --db the path of a run log (a .db file)")
        if self.read_only and not file.is_file():
            raise StoreError(f"no run log at {self.path}: run a scenario first, or give the right --db")
        if not file.parent.is_dir():
            raise StoreError(f"cannot create the run log {self.path}: the folder {file.parent} does not exist")
        if file.is_file():
            self.check_integrity()
            if self.read_only and self.pending_migrations():
                Store(self.path)  # a run log from an older simrun: migrate it once, then read
        self.db = sqlite_utils.Database(self.connect())
        if self.read_only:
            return
        if self.db.execute("pragma journal_mode").fetchone()[0] != "wal":
            retrying(self.db.enable_wal)
        # In WAL mode a commit need not wait for the disk: a killed process still loses nothing, and a power cut at
        # most the last batches, which a resume asks again (a flushed commit took 3 to 16 ms here under load).
        self.db.execute("pragma synchronous = normal")
        self.migrate()
        # sqlite-utils probes for upsert support by creating and dropping a table the
        # first time it upserts; do that now, never inside a batch's transaction.
        retrying(lambda: self.db.supports_on_conflict)

    def check_integrity(self) -> None:
        """``PRAGMA quick_check``: a damaged or foreign file is named before anything reads or writes it."""
        with closing(self.connect(read_only=True)) as conn:
            problems = [row[0] for row in conn.execute("pragma quick_check(3)")]
            tables = table_names(conn)
        if problems == ["ok"] and tables and not tables & {"_migrations", "runs"}:
            raise StoreError(
                f"{self.path} is an SQLite database of something else (tables {', '.join(sorted(tables)[:5])}), "
                "not a simrun run log: give --db another path"
            )
        if problems != ["ok"]:
            raise StoreError(
                f"{self.path} is damaged ({'; '.join(problems)}): move it aside to start a new run log, "
                "or restore it from a copy (sqlite3's .recover can save what is left)"
            )

    def explain(self, exc: sqlite3.DatabaseError) -> str:
        """What a storage error means for this run log, and what to do, in one line."""
        text, folder = str(exc), Path(self.path).resolve().parent
        if "not a database" in text or "malformed" in text:
            return (
                f"{self.path} is not a usable simrun run log ({text}): "
                "move it aside to start a new one, or restore it from a copy"
            )
        if "disk is full" in text:
            return f"the disk holding {self.path} is full: free some space"
        if "readonly" in text or ("unable to open" in text and not os.access(folder, os.W_OK)):
            return (
                f"cannot write the run log {self.path}: it or its folder {folder} is read-only; "
                "give --db a writable path"
            )
        return f"run log {self.path}: {text}"

    def connect(self, read_only: bool | None = None) -> sqlite3.Connection:
        """A connection to the file: read-only (it never writes or creates it) for readers, else read-write."""
        if self.read_only if read_only is None else read_only:
            target, uri = Path(self.path).resolve().as_uri() + "?mode=ro", True
        else:
            target, uri = self.path, False
        conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        add_functions(conn)
        return conn

    def pending_migrations(self) -> list[str]:
        with closing(self.connect(read_only=True)) as conn:
            applied = (
                {row[0] for row in conn.execute("select name from _migrations")}
                if "_migrations" in table_names(conn)
                else set()
            )
        return [fn.__name__ for fn in MIGRATIONS if fn.__name__ not in applied]

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One write transaction that takes the lock at its start, so it waits for it rather than fails halfway."""
        conn = self.db.conn
        if self.depth:  # inside another write of this store: one transaction
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        self.depth += 1
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:  # COMMIT itself may fail (busy, disk full): never leave the transaction open
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self.depth -= 1

    def transact(self, work: Callable[[], T]) -> T:
        """``work`` in one write transaction, retried whole while another process holds the lock past the busy timeout.

        A storage fault (disk full, read-only file, damaged file) is a ``StoreError`` that says what to do.
        """

        def attempt() -> T:
            with self.writing():
                return work()

        try:
            return retrying(attempt)
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.explain(exc)) from exc

    def migrate(self) -> None:
        """Apply the migrations this file lacks, in order; a process that loses the race finds them applied."""

        def apply() -> None:
            table = self.db["_migrations"]
            table.create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
            applied = {row["name"] for row in table.rows}
            for fn in MIGRATIONS:
                if fn.__name__ not in applied:
                    fn(self.db)
                    table.insert({"name": fn.__name__, "applied_at": now()})

        if self.pending_migrations():
            self.transact(apply)
