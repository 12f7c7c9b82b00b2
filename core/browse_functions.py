"""The datasette plugin ``simrun browse`` registers: ``simrun_prompt(run_id, persona_id, question_id, repeat)``,
``simrun_distribution(reply)``, ``simrun_invalid(reply)`` and ``simrun_raw(reply)`` in SQL, for each simrun log
datasette opens. Imported only by ``simrun.browse.serve``, with datasette installed."""

from __future__ import annotations

from datasette import hookimpl

from .browse import PromptFunction
from .store import add_functions

FUNCTIONS: dict[str, PromptFunction] = {}  # one per run log


@hookimpl
def prepare_connection(conn, database, datasette) -> None:
    path = datasette.databases[database].path
    if path:
        function = FUNCTIONS.setdefault(path, PromptFunction(path))
        conn.create_function("simrun_prompt", 4, function.prompt)
        add_functions(conn)
