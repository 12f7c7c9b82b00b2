"""What a run's answers came to: the ``aggregates`` (weighted option shares) and ``metrics`` tables, and the
enrichment outputs that were unusable."""

from __future__ import annotations

from ..concurrency import writes
from ..models import INVALID_PREFIX, INVALID_SUFFIX, INVALID_THRESHOLD, InvalidOutput
from .table import Table


class Results(Table):
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
        return list(self.db["metrics"].rows_where("run_id = ?", [run_id], order_by="metric, name, question, stratum"))

    def invalid_outputs(self, run_id: str, threshold: float = INVALID_THRESHOLD) -> list[InvalidOutput]:
        """Per enrichment step, the personas it wrote nothing usable for (``Persona.mark_invalid``), most first."""
        reasons: dict[str, dict[str, int]] = {}
        marked = self.db.execute(
            "select 1 from texts where text like ? escape '\\' and hash in (select shape from personas where run = ?)",
            [f'%"{INVALID_PREFIX}%{INVALID_SUFFIX}"%'.replace("_", "\\_"), self.store.runs.number(run_id)],
        ).fetchone()
        for persona in self.store.personas.rows(run_id) if marked else ():
            for key, value in persona.attributes.items():
                if not (key.startswith(INVALID_PREFIX) and key.endswith(INVALID_SUFFIX)):
                    continue
                step = key.removeprefix(INVALID_PREFIX).removesuffix(INVALID_SUFFIX)
                # runs logged before reasons were recorded apart keep "error: reply" as one string
                reason = value.get("reason", "") if isinstance(value, dict) else str(value).split(": {")[0][:120]
                by_reason = reasons.setdefault(step, {})
                by_reason[reason] = by_reason.get(reason, 0) + 1
        personas = self.db["personas"].count_where("run = ?", [self.store.runs.number(run_id)]) if reasons else 0
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
