"""The run log as pandas DataFrames, for notebooks: ``db = simrun.open("simrun.db")``.

Read-only: it opens the file as ``simrun runs`` does, never writes (but to convert a log an older simrun wrote,
once) and never creates it, so a notebook can watch a run that is still working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .store import Store


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("simrun.open needs pandas: pip install 'simrun[analysis]'") from None
    return pandas


class RunLog:
    """One run log's runs, personas, answers and metrics, each as a DataFrame."""

    def __init__(self, path: str | Path):
        self.store = Store(path, read_only=True)

    def runs(self) -> Any:
        """One row per run, newest first: id, name, status, seed, sweep and variant, times, error."""
        columns = ["id", "name", "status", "seed", "sweep_id", "variant", "created_at", "finished_at", "error"]
        return _pandas().DataFrame([{c: r[c] for c in columns} for r in self.store.runs.all()], columns=columns)

    def personas(self, run_id: str) -> Any:
        """One row per persona: id, stratum, weight and one column per attribute (hidden ``_`` ones left out)."""
        self.store.runs.get(run_id)  # a KeyError names an unknown run
        rows = [
            {
                "id": p.id,
                "stratum": p.stratum,
                "weight": p.weight,
                **{k: v for k, v in p.attributes.items() if not k.startswith("_")},
            }
            for p in self.store.personas.rows(run_id)
        ]
        return _pandas().DataFrame(rows)

    def answers(self, run_id: str) -> Any:
        """One row per persona x question x repeat: the option probabilities (``p_A``, ...), invalid mass,
        model, whether it came from the cache, the error of a failed answer, and the exact prompt."""
        self.store.runs.get(run_id)
        rows = [
            {
                "persona_id": r["persona_id"],
                "stratum": r["stratum"],
                "weight": r["weight"],
                "question_id": r["question_id"],
                "repeat": r["repeat"],
                **{f"p_{label}": p for label, p in r["distribution"].items()},
                "invalid": r["invalid"],
                "model": r["model"],
                "cached": bool(r["cached"]),
                "error": r["error"],
                "prompt": r["prompt"],
            }
            for r in self.store.answers.rows(run_id, prompts=True)
        ]
        return _pandas().DataFrame(rows)

    def metrics(self, run_id: str) -> Any:
        """One row per figure: metric, name, question ("" for all of them), stratum ("" for the whole run) and value
        (NaN where there was no data)."""
        self.store.runs.get(run_id)
        columns = ["metric", "name", "question", "stratum", "value"]
        return _pandas().DataFrame(
            [{c: m[c] for c in columns} for m in self.store.results.metrics(run_id)], columns=columns
        )


def open(path: str | Path) -> RunLog:  # noqa: A001 - simrun.open(...), as the docs promise
    """The run log at ``path``, read-only, as DataFrames."""
    return RunLog(path)
