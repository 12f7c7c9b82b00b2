"""``simrun browse``: the run log in datasette, every table and column described, with canned queries.

datasette (an extra: ``pip install -e '.[browse]'``) serves the file read-only. simrun adds what the
schema alone cannot say: a description of each table and column, the queries users ask most (a run's
shares by stratum, one persona's attributes and answers with the exact prompts, a metric across runs),
and the SQL function ``simrun_prompt(run_id, persona_id, question_id, repeat)``, which re-renders an
answer's prompt as ``simrun show --prompt`` does.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .store import Store
from .store.answers import CACHED

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "runs": (
        "One row per run: its scenario as written and as validated, status, timings, components and versions.",
        {
            "id": "The run's id (UTC start time and randomness)",
            "number": "The run's number: what its personas and answers carry (their run column)",
            "scenario_yaml": "The scenario file as given",
            "scenario_json": "The scenario after --set overrides, as run",
            "components": "Every component's kind, name, package and version",
            "simulator_stats": "Counters of the simulator and executor (retries, replicas lost, ...)",
            "model": "The simulator's model name",
            "simulator_identity": "Everything that changes an answer: part of every cache key",
            "sweep_id": "The sweep this run is a variant of, if any",
            "owner": "The process executing the run (pid, host), while it runs",
        },
    ),
    "personas": (
        "One row per persona: stratum, weight (the adults it stands for), attribute values in prompt order.",
        {
            "run": "The run's number (runs.number)",
            "shape": 'Hash of the attribute names and where each came from (texts.hash: {"names", "provenance"})',
            "values": "Attribute values, in the order of the names",
            "batch": "The batch it was committed in",
        },
    ),
    "answers": (
        "One row per persona x question x repeat. Its reply is llm_cache's under its cache_key, or its own (reply)"
        " when the cache does not hold it (several option orders, a failure): coalesce(a.reply, c.response), read with"
        " simrun_distribution(), simrun_invalid() and simrun_raw() (the persona_answers query shows how).",
        {
            "run": "The run's number (runs.number)",
            "reply": "The answer's own reply, packed; empty when it is llm_cache's under cache_key",
            "cache_key": "16 bytes per option order asked: the model-call cache entries used",
            "cached": "1 when every order came from the cache",
            "error": "Why the backend gave no usable answer (secrets masked)",
        },
    ),
    "run_questions": (
        "Per run and question: the option labels and the user text of each option order asked.",
        {"users": 'JSON {"labels": [...], "users": [...]}'},
    ),
    "texts": ("Texts many rows share (a persona's attribute names and provenance), stored once by hash.", {}),
    "aggregates": ("Weighted option shares per run, question and stratum (ALL: everyone).", {}),
    "metrics": (
        "Metric values per run, question and stratum ('' for all); metric NAME@BASELINE is NAME on a baseline's"
        " answers.",
        {},
    ),
    "llm_cache": (
        "Every model call's reply, by a 16-byte key of the simulator identity and the request (a prompt's key"
        " begins with 4 bytes of its system text's hash, so a persona's replies sit together). An entry never"
        " changes once written.",
        {"response": "The reply: an answer packed (simrun_distribution() and the like read it), or JSON"},
    ),
    "cache_formats": ("Older key forms this log's cache still holds, looked up for a miss.", {}),
    "progress": ("Batches committed per run: what --resume skips.", {}),
    "legacy_prompts": ("Prompts of answers logged before simrun re-rendered them, kept as they were.", {}),
    "sweeps": ("One row per sweep: its scenario, ablation and variants.", {}),
}

QUERIES: dict[str, dict[str, str]] = {
    "run_shares": {
        "title": "A run's answer shares by stratum",
        "sql": "select question_id, stratum, option, round(share, 4) as share, weight, round(invalid, 4) as invalid"
        " from aggregates where run_id = :run_id order by question_id, stratum = 'ALL' desc, stratum, option",
    },
    "persona_attributes": {
        "title": "One persona's attributes",
        "sql": "select n.value as attribute, v.value as value from personas p join texts t on t.hash = p.shape,"
        " json_each(t.text, '$.names') n, json_each(p.\"values\") v"
        " join runs r on r.number = p.run where r.id = :run_id and p.id = :persona_id and n.key = v.key order by n.key",
    },
    "persona_answers": {
        "title": "One persona's answers, with the exact prompts",
        "sql": 'select a.question_id, a."repeat", simrun_distribution(coalesce(a.reply, c.response)) as distribution,'
        " round(simrun_invalid(coalesce(a.reply, c.response)), 4) as invalid,"
        " simrun_raw(coalesce(a.reply, c.response)) as raw, a.error,"
        ' simrun_prompt(r.id, a.persona_id, a.question_id, a."repeat") as prompt from answers a'
        f" join runs r on r.number = a.run {CACHED}"
        ' where r.id = :run_id and a.persona_id = :persona_id order by a.question_id, a."repeat"',
    },
    "metric_across_runs": {
        "title": "One metric across runs and sweeps",
        "sql": "select r.id as run_id, r.name, r.sweep_id, r.variant, r.created_at, m.value from metrics m"
        " join runs r on r.id = m.run_id where m.metric = :metric and m.name = :name and m.question = :question"
        " and m.stratum = ''"
        " order by r.created_at",
    },
}


def metadata(database: str) -> dict[str, Any]:
    tables = {name: {"description": about, "columns": columns} for name, (about, columns) in TABLES.items()}
    return {
        "title": "simrun run log",
        "description": "Every run, persona, answer and metric simrun logged. Canned queries below each database.",
        "databases": {database: {"tables": tables, "queries": QUERIES}},
    }


class PromptFunction:
    """A datasette plugin: ``simrun_prompt(...)`` in SQL, one read-only store per thread datasette queries in."""

    def __init__(self, path: str):
        self.path, self.local = path, threading.local()

    def prompt(self, run_id: str, persona_id: int, question_id: str, repeat: int) -> str | None:
        if not hasattr(self.local, "store"):
            self.local.store = Store(self.path, read_only=True)
        try:
            return self.local.store.prompts.get(run_id, int(persona_id), question_id, int(repeat))[0]
        except (KeyError, ValueError, TypeError):
            return None


def serve(db_path: str, host: str, port: int, started: Callable[[str], None]) -> None:
    """Serve the run log until interrupted, telling ``started`` its address; a missing, damaged or foreign file,
    or a port in use, fails before anything starts."""
    import uvicorn
    from datasette.app import Datasette
    from datasette.plugins import pm
    from datasette.utils import tilde_encode

    Store(db_path, read_only=True)  # a clear error for a missing or foreign file, and an older log migrated
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot serve on {host}:{port} ({exc.strerror}): give another --port") from None
    if not pm.has_plugin("simrun"):
        pm.register(importlib.import_module("simrun.browse_functions"), name="simrun")
    ds = Datasette(files=[db_path], metadata=metadata(Path(db_path).stem), settings={"sql_time_limit_ms": 5000})
    asyncio.run(ds.invoke_startup())
    started(f"http://{host}:{port}/{tilde_encode(Path(db_path).stem)}")
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")
