"""The run log: one SQLite file holding every run, persona, prompt, answer and metric.

Schema changes are an ordered list of migrations, each applied once and
recorded in ``_migrations`` (the pattern of Simon Willison's ``llm``).

Many processes may share one file: readers open it read-only and write
nothing; every write transaction takes the lock up front (``BEGIN
IMMEDIATE``), waits for it up to a busy timeout and is retried whole if it
still cannot have it; a run being executed is owned by its process, so a
second ``--resume`` of a live run is refused and a dead owner's run taken over.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import json
import operator
import os
import secrets
import sqlite3
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from .concurrency import StoreError, T, alive, retrying, this_process, writes
from .migrations import MIGRATIONS, text_hash
from .models import (
    ALL_STRATA,
    INVALID_PREFIX,
    INVALID_SUFFIX,
    INVALID_THRESHOLD,
    OPTION_LABELS,
    Answers,
    InvalidOutput,
    ModelAnswer,
    Persona,
    Prompt,
    cache_key_text,
    prompt_text,
)
from .prompts import PromptSpec

BUSY_TIMEOUT_S = 30.0  # how long one statement waits for another process's lock


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_id() -> str:
    """Sortable and readable: UTC time, then randomness."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key_of(request: str) -> bytes:
    """A model call's cache key: the first 16 bytes of the SHA-256 of the request."""
    return hashlib.sha256(request.encode()).digest()[:16]


ANSWER_FORMAT = 1  # the first byte of a cached answer stored as bytes


def pack_answer(answer: ModelAnswer) -> bytes | str:
    """A model answer as the cache stores it: format byte, option count, invalid, tokens, latency, the option
    probabilities as float64 (options A, B, ... in order: every prompt's labels), then the raw text. Exact, and a
    third of its JSON. An answer with other labels or an error (never cached, but kept general) stays JSON."""
    values = list(answer.distribution.values())
    if answer.error is not None or list(answer.distribution) != list(OPTION_LABELS[: len(values)]):
        return answer.model_dump_json(exclude_defaults=True)
    head = struct.pack(
        f"<BBdqd{len(values)}d", ANSWER_FORMAT, len(values), answer.invalid, answer.tokens, answer.latency_ms, *values
    )
    return head + answer.raw.encode()


def unpack_answer(stored: bytes | str) -> ModelAnswer:
    if isinstance(stored, str):
        return ModelAnswer.model_validate_json(stored)
    n = stored[1]
    _, _, invalid, tokens, latency_ms, *values = struct.unpack_from(f"<BBdqd{n}d", stored)
    return ModelAnswer(
        distribution=dict(zip(OPTION_LABELS, values)),
        invalid=invalid,
        tokens=tokens,
        latency_ms=latency_ms,
        raw=stored[struct.calcsize(f"<BBdqd{n}d") :].decode(),
    )


def sweep_hash(scenario: dict) -> str:
    """A sweep's identity: its scenario but the executor, so a sweep resumed on another cluster is the same one."""
    return sha256(dumps({key: value for key, value in scenario.items() if key != "executor"}))


KEY_BYTES = 16  # a cache key's length; an answer asked in several option orders keeps one per order
CLUSTER = 4  # bytes of a prompt's cache key taken from its system text alone


class PromptKeys:
    """The cache key of asking prompts of the simulator ``identity`` describes. The request is
    ``{"labels", "model": identity, "sample", "system", "user"}`` as ``dumps`` writes it, each prompt's ``repeat``
    its sample; its key is 4 bytes of the SHA-256 of the system text, then 12 of the request's.

    The system text's bytes come first so that a persona's questions sit side by side in ``llm_cache``: a key
    that is a hash of the whole request lands each reply on a random page, and a commit writes a page per reply.
    ``legacy=True`` gives the key simrun used before (16 bytes of the request's hash), which an older log's
    cache and answers hold. The request is hashed as it is written, part by part: everything up to the system
    text once per labels and sample, a persona's system text once for all of ``asks`` (each labels, sample and
    the user texts asked with them: a run's questions), the user text per prompt.
    """

    def __init__(self, identity: dict, asks: Iterable[tuple[Sequence[str], int, Sequence[str]]] = ()):
        self.model = dumps(identity)
        self.starts: dict[tuple[tuple[str, ...], int], Any] = {}  # (labels, sample) -> hash up to the system text
        self.asks = [(self.start(labels, repeat), [self.end(user) for user in users]) for labels, repeat, users in asks]

    def start(self, labels: Sequence[str], repeat: int) -> Any:
        """The hash of a request up to its system text."""
        which = (tuple(labels), repeat)
        if which not in self.starts:
            self.starts[which] = hashlib.sha256(
                f'{{"labels":{dumps(list(labels))},"model":{self.model},"sample":{repeat},"system":'.encode()
            )
        return self.starts[which]

    @staticmethod
    def end(user: str) -> bytes:
        """A request's bytes after its system text."""
        return f',"user":{json_string(user)}}}'.encode()

    def persona(self, system: str) -> list[bytes]:
        """The key of every prompt of ``asks`` asked with this system text, in order."""
        encoded = json_string(system).encode()
        cluster = hashlib.sha256(encoded).digest()[:CLUSTER]
        keys = []
        for start, ends in self.asks:
            head = start.copy()
            head.update(encoded)
            for end in ends:
                request = head.copy()
                request.update(end)
                keys.append(cluster + request.digest()[: 16 - CLUSTER])
        return keys

    def of(self, prompt: Prompt, legacy: bool = False) -> bytes:
        """One prompt's key."""
        encoded = json_string(prompt.system).encode()
        request = self.start(prompt.labels, prompt.repeat).copy()
        request.update(encoded)
        request.update(self.end(prompt.user))
        if legacy:
            return request.digest()[:16]
        return hashlib.sha256(encoded).digest()[:CLUSTER] + request.digest()[: 16 - CLUSTER]


json_string = json.encoder.encode_basestring_ascii  # a str as dumps writes it, without building an encoder


def _json_writer(sort_keys: bool, separators: tuple[str, str]) -> Callable[[Any], str]:
    """``json.dumps`` with these options and ``default=str``, as a function. ``json.dumps`` builds an encoder on
    every call; this builds it once, with the arguments ``iterencode`` gives it, so the output is the same (the
    run log's hot path)."""
    encoder = json.JSONEncoder(sort_keys=sort_keys, separators=separators, default=str)
    if json.encoder.c_make_encoder is None:
        return encoder.encode
    item, key = separators
    make = json.encoder.c_make_encoder(
        None, str, json.encoder.encode_basestring_ascii, None, key, item, sort_keys, False, True
    )
    return lambda value: "".join(make(value, 0))


dumps = _json_writer(sort_keys=True, separators=(",", ":"))  # canonical: compact, keys sorted
plain_dumps = _json_writer(sort_keys=False, separators=(", ", ": "))  # as json.dumps(value, default=str) writes


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}


class Store:
    """All reads and writes of the run log go through here.

    ``read_only`` opens an existing file for reading only (a missing file is a
    ``StoreError``, never created); otherwise the file and its schema are
    created or migrated as needed, safely when several processes start at once.
    """

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = str(path)
        self.read_only = read_only
        self.depth = 0  # write transactions open in this store (nested ones share the outermost)
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
        return sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None)

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

    # runs -------------------------------------------------------------
    @writes
    def create_run(
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
        self.db["runs"].insert(
            {
                "id": run_id,
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

    # sweeps -----------------------------------------------------------
    @writes
    def create_sweep(self, name: str, scenario_yaml: str, scenario: dict, ablation: dict, variants: list[str]) -> str:
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

    def unfinished_sweep(self, scenario: dict) -> str | None:
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

    def sweep(self, sweep_id: str) -> dict:
        rows = list(self.db["sweeps"].rows_where("id = ?", [sweep_id]))
        if not rows:
            raise KeyError(sweep_id)
        return rows[0]

    def sweep_runs(self, sweep_id: str) -> dict[str, list[dict]]:
        """Variant label -> its run records, one per replicate (seed), by seed."""
        runs: dict[str, list[dict]] = {}
        for r in self.db["runs"].rows_where("sweep_id = ?", [sweep_id], order_by="seed, created_at"):
            runs.setdefault(r["variant"], []).append(r)
        return runs

    @writes
    def finish_sweep(self, sweep_id: str) -> None:
        self.db["sweeps"].update(sweep_id, {"status": "finished", "finished_at": now()})

    def run(self, run_id: str) -> dict:
        rows = list(self.db["runs"].rows_where("id = ?", [run_id]))
        if not rows:
            raise KeyError(run_id)
        return rows[0]

    def runs(self) -> list[dict]:
        return list(self.db["runs"].rows_where(order_by="created_at desc, id desc"))

    @writes
    def update_run(self, run_id: str, **fields: Any) -> None:
        self.db["runs"].update(run_id, fields)

    @writes
    def claim_run(self, run_id: str, take_over: bool = False) -> None:
        """Own a run for this process, to resume it: refused while it is finished or a live process owns it
        (``take_over``: even then, for an owner on another host that is gone)."""
        record = self.run(run_id)
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
    def add_simulator_stats(self, run_id: str, stats: dict[str, int]) -> None:
        """Add a (resumed) session's counters to the run's totals."""
        total = json.loads(self.run(run_id).get("simulator_stats") or "{}")
        for name, value in stats.items():
            total[name] = total.get(name, 0) + value
        self.update_run(run_id, simulator_stats=dumps(total))

    @writes
    def describe_run(self, run_id: str, model: str, identity: dict, questions: dict[str, dict]) -> None:
        """What re-renders and checks the run's prompts: the simulator's model and identity, and per question its
        option labels and the user text of each option order asked (``{"labels": [...], "users": [...]}``)."""
        self.db.execute(
            "update runs set model = ?, simulator_identity = ? where id = ?", [model, dumps(identity), run_id]
        )
        self.db.conn.executemany(
            "insert or replace into run_questions values (?, ?, ?)",
            [(run_id, question_id, dumps(asked)) for question_id, asked in questions.items()],
        )

    def keep_texts(self, texts: Iterable[str]) -> None:
        self.db.conn.executemany("insert or ignore into texts values (?, ?)", {text_hash(t): t for t in texts}.items())

    # batches ----------------------------------------------------------
    def done_batches(self, run_id: str) -> set[int]:
        return {r["batch"] for r in self.db["progress"].rows_where("run_id = ?", [run_id])}

    @writes
    def write_batch(self, run_id: str, batch: int, personas: list[Persona], answers: Answers) -> None:
        """Commit a batch's personas, answers and progress marker together.

        Attribute names and provenance go to ``texts`` once and are referenced by hash; the prompt is not
        stored (``answer_rows(prompts=True)`` re-renders it), nor the model (the run has it).
        """
        shared: dict[str, bytes] = {}  # text -> its hash; a batch's personas mostly share names and provenance

        def reference(text: str) -> bytes:
            if text not in shared:
                shared[text] = text_hash(text)
            return shared[text]

        names: dict[tuple[str, ...], str] = {}  # attribute names -> their JSON, made once per distinct set
        rows = []
        for p in personas:
            listed = tuple(p.attributes)
            if listed not in names:
                names[listed] = plain_dumps(list(listed))
            rows.append(
                (
                    run_id,
                    p.id,
                    batch,
                    p.stratum,
                    p.weight,
                    reference(names[listed]),
                    plain_dumps(list(p.attributes.values())),  # in prompt order, as the names
                    reference(plain_dumps(p.provenance)),
                )
            )
        self.keep_texts(shared)
        self.db.conn.executemany("insert or replace into personas values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        columns: dict[int, tuple] = {}  # id of a reply -> its columns; the batch holds every reply, so ids stay
        answer_rows = []
        for a in answers.records:
            reply = a.reply
            if (stored := columns.get(id(reply))) is None:  # a reply the cache gave more than one answer, once
                stored = columns[id(reply)] = (
                    reply.raw,
                    dumps(reply.distribution),
                    reply.invalid,
                    reply.tokens,
                    reply.latency_ms,
                )
            answer_rows.append(
                (run_id, a.persona_id, a.question_id, a.repeat, *stored, a.keys, int(a.cached), reply.error)
            )
        self.db.conn.executemany(
            "insert or replace into answers values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", answer_rows
        )
        self.db.execute(
            "insert or replace into progress (run_id, batch, personas, done_at) values (?, ?, ?, ?)",
            [run_id, batch, len(personas), now()],
        )

    # the model-call cache ---------------------------------------------
    @functools.cached_property
    def legacy_prompt_keys(self) -> bool:
        """Whether the cache holds replies under the prompt keys simrun used before m008 (``PromptKeys``)."""
        return self.db.execute("select 1 from cache_formats where format = 'whole-request'").fetchone() is not None

    def cached(self, keys: Iterable[bytes]) -> dict[bytes, str | bytes]:
        """Cached responses, as stored (JSON text, or ``pack_answer`` bytes), for the keys (``cache_key_of``) found."""
        wanted = list(keys)
        found: dict[bytes, str | bytes] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"select key, response from llm_cache where key in ({marks})", chunk))
        return found

    @writes
    def cache(self, model: str, entries: dict[bytes, str | bytes]) -> None:
        self.keep_texts([model])
        created, model_ref = int(dt.datetime.now(dt.UTC).timestamp()), text_hash(model)
        self.db.conn.executemany(
            "insert or replace into llm_cache values (?, ?, ?, ?)",
            [(key, model_ref, value, created) for key, value in entries.items()],
        )

    # reads for aggregation, metrics and export --------------------------
    def texts(self, hashes: Iterable[bytes]) -> dict[bytes, str]:
        wanted = list(set(hashes))
        found: dict[bytes, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"select hash, text from texts where hash in ({marks})", chunk).fetchall())
        return found

    def personas(self, run_id: str, batch: int | None = None) -> Iterator[Persona]:
        where, args = ("run_id = ?", [run_id]) if batch is None else ("run_id = ? and batch = ?", [run_id, batch])
        known: dict[bytes, Any] = {}
        cursor = self.db.execute(
            f'select id, stratum, weight, names, "values", provenance from personas where {where} order by id', args
        )
        while rows := cursor.fetchmany(1000):
            missing = {h for row in rows for h in (row[3], row[5]) if h not in known}
            known.update((h, json.loads(text)) for h, text in self.texts(missing).items())
            for pid, stratum, weight, names, values, provenance in rows:
                yield Persona(
                    id=pid,
                    stratum=stratum,
                    weight=weight,
                    attributes=dict(zip(known[names], json.loads(values))),
                    provenance=known[provenance],
                )

    def persona_batches(self, run_id: str) -> Iterator[tuple[int, list[Persona]]]:
        """A finished run's personas, batch by batch, for another run to reuse."""
        batches = [
            r["batch"] for r in self.db.query("select batch from progress where run_id = ? order by batch", [run_id])
        ]
        for batch in batches:  # no cursor stays open while the caller writes
            yield batch, list(self.personas(run_id, batch))

    def sizes(self, run_id: str, question_id: str) -> dict[str, int]:
        """Personas who answered a question, per stratum and in all (``ALL``)."""
        counts = dict(
            self.db.execute(
                "select p.stratum, count(distinct a.persona_id) from answers a join personas p"
                " on p.run_id = a.run_id and p.id = a.persona_id where a.run_id = ? and a.question_id = ?"
                " group by p.stratum",
                [run_id, question_id],
            ).fetchall()
        )
        return {**counts, ALL_STRATA: sum(counts.values())}

    def share_rows(self, run_id: str) -> Iterator[list[tuple[str, str, float, float, dict[str, float]]]]:
        """A run's answers batch by batch, in batch order, each as ``ShareSums.add_batch`` sums it: (question id,
        stratum, weight, invalid mass, distribution), in the order the log keeps them."""
        rows = self.db.execute(
            "select p.batch, a.question_id, p.stratum, p.weight, a.invalid, a.distribution from answers a"
            " join personas p on p.run_id = a.run_id and p.id = a.persona_id where a.run_id = ?"
            ' order by p.batch, a.persona_id, a.question_id, a."repeat"',
            [run_id],
        )
        for _, batch in itertools.groupby(rows, key=operator.itemgetter(0)):
            yield [
                (question, stratum, weight, invalid, json.loads(text))
                for _, question, stratum, weight, invalid, text in batch
            ]

    def answer_rows(self, run_id: str, prompts: bool = False) -> Iterator[dict]:
        """A run's answers with their persona's stratum and weight and the run's model, by persona and question.

        ``prompts`` adds each answer's exact prompt: re-rendered from the persona, the run's prompt settings and
        the question texts it recorded (or, for a run logged before prompts were re-rendered, as stored then).
        """
        model = self.run(run_id).get("model")
        columns = (
            'a.persona_id, a.question_id, a."repeat", a.raw, a.distribution, a.invalid, a.tokens, a.latency_ms,'
            " a.cache_key, a.cached, a.error, p.stratum, p.weight"
        )
        extra, join = ("", "")
        if prompts:
            render = self.prompt_renderer(run_id)
            extra = ', p.names, p."values", l.prompt'
            join = (
                " left join legacy_prompts l on l.run_id = a.run_id and l.persona_id = a.persona_id"
                ' and l.question_id = a.question_id and l."repeat" = a."repeat"'
            )
        cursor = self.db.execute(
            f"select {columns}{extra} from answers a join personas p on p.run_id = a.run_id and p.id = a.persona_id"
            f'{join} where a.run_id = ? order by a.persona_id, a.question_id, a."repeat"',
            [run_id],
        )
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(1000):
            for values in rows:
                row = dict(zip(names, values))
                row["run_id"], row["model"] = run_id, model
                row["cache_key"] = cache_key_text(row["cache_key"])
                if prompts:
                    legacy = row.pop("prompt")
                    row["prompt"] = legacy if legacy is not None else render(row.pop("names"), row.pop("values"), row)
                yield row

    def prompt_renderer(self, run_id: str) -> Callable[[bytes, str, dict], str]:
        """(attribute-names hash, attribute values, answer row) -> the exact prompt text the answer was asked with."""
        parts = self.prompt_parts(run_id)
        return lambda names, values, row: prompt_text(*parts(names, values, row["question_id"]))

    def prompt_parts(self, run_id: str) -> Callable[[bytes, str, str], tuple[str, list[str]]]:
        """(attribute-names hash, attribute values, question id) -> (system text, user text of each option order),
        rendered from the run's prompt settings and the question texts it recorded."""
        record = self.run(run_id)
        spec = PromptSpec.model_validate(json.loads(record["scenario_json"]).get("prompt") or {})
        asked = {
            question_id: json.loads(users)
            for question_id, users in self.db.execute(
                "select question_id, users from run_questions where run_id = ?", [run_id]
            )
        }
        names_by_hash: dict[bytes, list[str]] = {}
        last: list[Any] = [None, ""]  # (persona, its system text): rows come persona by persona

        def parts(names: bytes, values: str, question_id: str) -> tuple[str, list[str]]:
            if names not in names_by_hash:
                names_by_hash.update((h, json.loads(t)) for h, t in self.texts([names]).items())
            if last[0] != (names, values):
                attributes = dict(zip(names_by_hash[names], json.loads(values)))
                persona = Persona(id=0, stratum="", weight=1.0, attributes=attributes)
                last[:] = [(names, values), spec.system.format(persona=spec.render_persona(persona))]
            return last[1], asked[question_id]["users"]

        return parts

    def prompt(self, run_id: str, persona_id: int, question_id: str, repeat: int = 0) -> tuple[str, bool]:
        """One answer's exact prompt, and whether it hashes to the cache key the answer was asked under (False
        when another simrun version renders personas differently). A run logged before m007 kept its prompts."""
        row = self.db.execute(
            'select a.cache_key, p.names, p."values", l.prompt from answers a'
            " join personas p on p.run_id = a.run_id and p.id = a.persona_id"
            " left join legacy_prompts l on l.run_id = a.run_id and l.persona_id = a.persona_id"
            ' and l.question_id = a.question_id and l."repeat" = a."repeat"'
            ' where a.run_id = ? and a.persona_id = ? and a.question_id = ? and a."repeat" = ?',
            [run_id, persona_id, question_id, repeat],
        ).fetchone()
        if row is None:
            raise KeyError((run_id, persona_id, question_id, repeat))
        keys, names, values, legacy = row
        if legacy is not None:
            return legacy, True
        system, users = self.prompt_parts(run_id)(names, values, question_id)
        identity = json.loads(self.run(run_id)["simulator_identity"])
        labels = json.loads(
            self.db.execute(
                "select users from run_questions where run_id = ? and question_id = ?", [run_id, question_id]
            ).fetchone()[0]
        )["labels"]
        prompt_keys = PromptKeys(identity)
        asked = [
            Prompt(
                persona_id=persona_id, question_id=question_id, system=system, user=user, labels=labels, repeat=repeat
            )
            for user in users
        ]
        expected = {b"".join(prompt_keys.of(prompt, legacy) for prompt in asked) for legacy in (False, True)}
        return prompt_text(system, users), keys in expected

    @writes
    def write_aggregates(self, run_id: str, rows: list[dict]) -> None:
        self.db["aggregates"].delete_where("run_id = ?", [run_id])
        self.db["aggregates"].insert_all(rows)

    def aggregates(self, run_id: str, question_id: str) -> dict[str, dict[str, float]]:
        """Weighted option shares per stratum for one question."""
        shares: dict[str, dict[str, float]] = {}
        for row in self.db["aggregates"].rows_where(
            "run_id = ? and question_id = ?", [run_id, question_id], order_by="stratum, option"
        ):
            shares.setdefault(row["stratum"], {})[row["option"]] = row["share"]
        return shares

    def invalid(self, run_id: str, question_id: str) -> dict[str, float]:
        """Weighted share of answer mass outside the options, per stratum, for one question."""
        return {
            row["stratum"]: row["invalid"]
            for row in self.db.query(
                "select distinct stratum, invalid from aggregates where run_id = ? and question_id = ?",
                [run_id, question_id],
            )
        }

    @writes
    def write_metrics(self, run_id: str, metric: str, values: list[dict]) -> None:
        self.db["metrics"].delete_where("run_id = ? and metric = ?", [run_id, metric])
        self.db["metrics"].insert_all({"run_id": run_id, "metric": metric, **v} for v in values)

    def metrics(self, run_id: str) -> list[dict]:
        return list(self.db["metrics"].rows_where("run_id = ?", [run_id], order_by="metric, name, stratum"))

    def invalid_outputs(self, run_id: str, threshold: float = INVALID_THRESHOLD) -> list[InvalidOutput]:
        """Per enrichment step, the personas it wrote nothing usable for (``Persona.mark_invalid``), most first."""
        reasons: dict[str, dict[str, int]] = {}
        marked = self.db.execute(
            "select 1 from texts where text like ? escape '\\'"
            " and hash in (select names from personas where run_id = ?)",
            [f'%"{INVALID_PREFIX}%{INVALID_SUFFIX}"%'.replace("_", "\\_"), run_id],
        ).fetchone()
        for persona in self.personas(run_id) if marked else ():
            for key, value in persona.attributes.items():
                if not (key.startswith(INVALID_PREFIX) and key.endswith(INVALID_SUFFIX)):
                    continue
                step = key.removeprefix(INVALID_PREFIX).removesuffix(INVALID_SUFFIX)
                # runs logged before reasons were recorded apart keep "error: reply" as one string
                reason = value.get("reason", "") if isinstance(value, dict) else str(value).split(": {")[0][:120]
                by_reason = reasons.setdefault(step, {})
                by_reason[reason] = by_reason.get(reason, 0) + 1
        personas = self.db["personas"].count_where("run_id = ?", [run_id]) if reasons else 0
        outputs = [
            InvalidOutput(
                step=step,
                invalid=sum(counts.values()),
                personas=personas,
                reason=reason,
                reason_count=count,
                threshold=threshold,
            )
            for step, counts in reasons.items()
            for reason, count in [max(counts.items(), key=lambda rc: (rc[1], rc[0]))]
        ]
        return sorted(outputs, key=lambda o: (-o.invalid, o.step))

    def answer_errors(self, run_id: str, most: int = 3) -> tuple[int, list[tuple[str, int]]]:
        """How many answers failed, and their most common errors with counts."""
        rows = list(
            self.db.query(
                "select error, count(*) as n from answers where run_id = ? and error is not null"
                " group by error order by n desc, error",
                [run_id],
            )
        )
        return sum(r["n"] for r in rows), [(r["error"], r["n"]) for r in rows[:most]]

    def effective_sample_size(self, run_id: str) -> float:
        """Kish's effective sample size of the run's persona weights, (sum w)^2 / sum w^2, in SQL."""
        total, squares = self.db.execute(
            "select sum(weight), sum(weight * weight) from personas where run_id = ?", [run_id]
        ).fetchone()
        return total * total / squares if squares else 0.0

    def counts(self, run_id: str) -> dict[str, int]:
        return {
            table: self.db[table].count_where("run_id = ?", [run_id]) for table in ("personas", "answers", "metrics")
        }
