"""What simrun prints: a run's summary, a sweep's comparison, on consoles that render no markup.

Names, paths, labels and errors come from users, files and models; with markup
off, "[...]" in them is text. ``run_summary`` is also what ``show --json`` and
``report`` read.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .baselines import split
from .components import COST_COUNTER, figure_label
from .diagnostics import Diagnostics, diagnose
from .models import ALL_STRATA, INVALID_THRESHOLD, OPTION_LABELS, InvalidOutput
from .store import Store

# No console markup: names, paths, labels and errors come from users, files and models, and "[...]" in them is text.
# Piped or redirected, rich would wrap tables at 80 columns and break numbers mid-token: wide lines read better in
# a file or a pager. A terminal, or COLUMNS set, keeps its own width.
PIPED_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(markup=False, highlight=False, width=PIPED_WIDTH)
errors = Console(stderr=True, markup=False, highlight=False)


def unclipped(table: Table) -> Table:
    """A table whose cells wrap rather than end in "...": metric names and ids stay whole, to be read and copied."""
    for column in table.columns:
        column.overflow = "fold"
    return table


def invalid_summary(output: dict[str, Any]) -> str:
    """``InvalidOutput.summary`` of an output as ``compare --json`` and ``show --json`` give it."""
    return InvalidOutput.model_validate(output).summary()


def design(store: Store, record: dict[str, Any]) -> dict[str, Any] | None:
    """The sampler's design when it has one (``design: coverage`` draws rare cells more often, weights undo it),
    with Kish's effective sample size of the weights."""
    config = json.loads(record["scenario_json"]).get("sampler", {}).get("with") or {}
    if "design" not in config:
        return None
    name = config["design"] + (f" (floor {config['floor']})" if "floor" in config else "")
    return {"design": name, "effective_sample_size": store.personas.effective_size(record["id"])}


def scores(store: Store, run_id: str) -> tuple[dict, dict, dict]:
    """A run's metric figures: (overall, baseline -> overall, stratum -> figures), each figure as METRIC.NAME."""
    per_stratum: dict[str, dict[str, float]] = defaultdict(dict)
    overall: dict[str, float] = {}
    baselines: dict[str, dict[str, float]] = defaultdict(dict)
    for m in store.results.metrics(run_id):
        metric, baseline = split(m["metric"])
        key = f"{metric}.{figure_label(m['name'], m['question'])}"
        if baseline:
            if not m["stratum"]:
                baselines[baseline][key] = m["value"]
        elif m["stratum"]:
            per_stratum[m["stratum"]][key] = m["value"]
        else:
            overall[key] = m["value"]
    return overall, dict(baselines), dict(per_stratum)


def run_summary(store: Store, run_id: str, invalid_threshold: float = INVALID_THRESHOLD) -> dict[str, Any]:
    record = store.runs.get(run_id)
    overall, baselines, per_stratum = scores(store, run_id)
    question_ids = [
        r["question_id"]
        for r in store.db.query(
            "select distinct question_id from aggregates where run_id = ? order by question_id", [run_id]
        )
    ]
    questions = {qid: store.results.aggregates(run_id, qid) for qid in question_ids}
    return {
        "diagnostics": diagnose(store, run_id).model_dump(),
        "options": option_texts(record),
        "id": record["id"],
        "name": record["name"],
        "status": record["status"],
        "error": record["error"],
        "seed": record["seed"],
        "created_at": record["created_at"],
        "finished_at": record["finished_at"],
        "timings": json.loads(record["timings"] or "{}"),
        "components": json.loads(record["components"]),
        "simulator_stats": json.loads(record.get("simulator_stats") or "{}"),
        "counts": store.runs.counts(run_id),
        "cache": store.answers.cache_use(run_id),
        "simulator": {"model": record.get("model"), "identity": json.loads(record.get("simulator_identity") or "null")},
        "design": design(store, record),
        "failed_answers": dict(zip(("count", "most_common"), store.answers.errors(run_id))),
        "invalid_outputs": [o.model_dump() for o in store.results.invalid_outputs(run_id, invalid_threshold)],
        "metrics": overall,
        "baselines": baselines,  # baseline -> the same metrics scored on its answers (simrun.baselines)
        "metrics_by_stratum": per_stratum,
        "shares": questions,
    }


def option_texts(record: dict[str, Any]) -> dict[str, dict[str, str]]:
    """question -> option label -> the option's text, for the questions the scenario lists itself."""
    questions = json.loads(record["scenario_json"]).get("questions") or []
    return {
        q["id"]: dict(zip(OPTION_LABELS, map(str, q["options"])))
        for q in questions
        if isinstance(q, dict) and "id" in q and isinstance(q.get("options"), list)
    }


def checks_text(diagnostics: dict[str, Any]) -> str:
    """The run's checks in one line."""
    d = Diagnostics.model_validate(diagnostics)
    name, fewest = d.smallest
    parts = [f"{len(d.personas_per_stratum)} strata, fewest personas {fewest} ({name})"]
    if d.failed_answers:
        parts.append(f"{d.failed_answers} of {d.answers} answers failed")
    if d.off_option is not None:
        parts.append(f"off-option mass {d.off_option:.1%} (max {d.off_option_max:.1%})")
    parts.append(
        f"position bias not measured: {d.position_note}"
        if d.position_bias is None
        else f"position bias {d.position_bias:.2f} (0 content .. 1 place; {d.position_answers:,} answers)"
    )
    if d.persona_effect is not None:
        parts.append(f"persona effect {d.persona_effect * 100:.1f} pts (from the answer with no persona)")
    if d.persona_spread is not None:
        parts.append(f"persona spread {d.persona_spread * 100:.1f} pts (from the personas' average)")
    return "; ".join(parts)


def print_diagnostics(diagnostics: dict[str, Any]) -> None:
    """The run's checks on one line, then each warning they raise."""
    console.print("checks: " + checks_text(diagnostics))
    for warning in diagnostics["warnings"]:
        console.print(f"! {warning}", style="yellow")


def number(value: float | None, digits: int) -> str:
    """A metric value for a table; SQLite keeps NaN (no data) as NULL."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def figure(value: float | None) -> str:
    """A metric's figure: a whole number (a count: states called, electoral votes) as one, else 4 decimals."""
    return str(int(value)) if value is not None and float(value).is_integer() else number(value, 4)


REPLICA_COUNTERS = ("replicas_started", "replicas_lost", "chunks_resubmitted")  # an executor's, summed over resumes


def print_run(summary: dict[str, Any]) -> None:
    """A run as ``run_summary`` gives it, for the terminal."""
    console.print(Text.assemble((f"run {summary['id']}", "bold"), f" {summary['name']} - {summary['status']}"))
    if summary["error"]:
        console.print(summary["error"], style="red")
    counts = summary["counts"]
    cache = summary["cache"]
    console.print(
        f"{counts['personas']} personas, {counts['answers']} answers ({cache['from_cache']} from the cache, "
        f"{cache['from_model']} from the model), timings {summary['timings']}"
    )
    if summary["simulator"]["identity"] is not None:
        console.print(f"simulator identity (its cache key): {json.dumps(summary['simulator']['identity'])}")
    console.print("components: " + ", ".join(f"{c['as']}={c['name']}" for c in summary["components"]))
    if summary["design"]:
        console.print(
            f"sampling design: {summary['design']['design']}; Kish effective sample size "
            f"{summary['design']['effective_sample_size']:,.0f} of {counts['personas']:,} personas"
        )
    stats = dict(summary["simulator_stats"])
    if "replicas_started" in stats:
        started, lost, resubmitted = (stats.pop(k, 0) for k in REPLICA_COUNTERS)
        added, by_added = stats.pop("replicas_added", 0), stats.pop("chunks_answered_by_added", 0)
        joined = f", {added} added as nodes joined ({by_added} chunk(s) answered by them)" if added else ""
        console.print(
            f"replicas: {started} started{joined}, {lost} of {started} replicas lost, "
            f"{resubmitted} chunk(s) of prompts resubmitted to the survivors",
            style="yellow" if lost else None,
        )
    if COST_COUNTER in stats or "calls_unpriced" in stats:
        cost, unpriced = stats.pop(COST_COUNTER, 0) / 1_000_000, stats.pop("calls_unpriced", 0)
        prompt, completion = stats.pop("prompt_tokens", 0), stats.pop("completion_tokens", 0)
        note = f"; {unpriced} call(s) of a model with no known price not counted" if unpriced else ""
        console.print(f"API cost: ${cost:,.4f} for {prompt:,} prompt and {completion:,} completion tokens{note}")
    if stats:
        counted = (f"{value:,}" if isinstance(value, int | float) else str(value) for value in stats.values())
        console.print("simulator: " + ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in zip(stats, counted)))
    failures = summary["failed_answers"]
    if failures["count"]:
        console.print(
            f"{failures['count']} answer(s) failed (all their mass counted invalid); most often: "
            + "; ".join(f"{error} ({n})" for error, n in failures["most_common"]),
            style="yellow",
        )
    for output in summary["invalid_outputs"]:
        style, note = (
            ("red", f" (over {output['threshold']:.0%}: this step's effect is not measured)")
            if output["mostly_failed"]
            else ("yellow", "")
        )
        console.print(invalid_summary(output) + note, style=style)
    print_diagnostics(summary["diagnostics"])
    sizes = summary["diagnostics"]["personas_per_stratum"]
    population = f"{ALL_STRATA}: the population, personas weighted by the people they stand for"
    strata = summary["metrics_by_stratum"]
    if strata:
        columns = sorted({k for values in strata.values() for k in values})
        table = unclipped(Table("stratum", "personas", *columns, title="per stratum"))
        for stratum in sorted(strata):
            table.add_row(stratum, str(sizes.get(stratum, "")), *(number(strata[stratum].get(c), 3) for c in columns))
        console.print(table)
    else:
        for qid, shares in summary["shares"].items():
            labels = sorted({label for s in shares.values() for label in s})
            texts = summary["options"].get(qid, {})
            table = unclipped(
                Table(
                    "stratum",
                    "personas",
                    *(f"{label}. {texts[label]}" if label in texts else label for label in labels),
                    title=f"answer shares: {qid}",
                    caption=population,
                )
            )
            for stratum in sorted(shares, key=lambda s: (s == ALL_STRATA, s)):
                n = sum(sizes.values()) if stratum == ALL_STRATA else sizes.get(stratum, "")
                table.add_row(stratum, str(n), *(f"{shares[stratum].get(option, 0):.3f}" for option in labels))
            console.print(table)
    if summary["metrics"]:
        baselines = summary["baselines"]
        title = "metrics" + (" (beside: the same metric on each baseline's answers)" if baselines else "")
        table = unclipped(Table("metric", "personas", *(b.replace("_", " ") for b in baselines), title=title))
        for name, value in summary["metrics"].items():
            table.add_row(name, figure(value), *(figure(baselines[b].get(name)) for b in baselines))
        console.print(table)
