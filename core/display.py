"""What simrun prints: a run's summary, a sweep's comparison, on consoles that render no markup.

Names, paths, labels and errors come from users, files and models; with markup
off, "[...]" in them is text. ``run_summary`` is also what ``show --json`` and
``report`` read.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .baselines import split
from .components import COST_COUNTER
from .diagnostics import Diagnostics, diagnose
from .models import ALL_STRATA, INVALID_THRESHOLD, OPTION_LABELS, InvalidOutput
from .store import Store

# No console markup: names, paths, labels and errors come from users, files and models, and "[...]" in them is text.
console = Console(markup=False, highlight=False)
errors = Console(stderr=True, markup=False, highlight=False)


def unclipped(table: Table) -> Table:
    """A table whose cells wrap rather than end in "...": metric names and ids stay whole, to be read and copied."""
    for column in table.columns:
        column.overflow = "fold"
    return table


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def ci(pair: list[float] | None) -> str:
    return "" if pair is None else f"[{pair[0]:.4g}, {pair[1]:.4g}]"


def variant_label(v: dict[str, Any]) -> Text:
    """The variant's name, and each enrichment step of it that mostly failed."""
    marks = [(f" (! {o['step']} {o['share']:.0%} invalid)", "red") for o in v["invalid_outputs"] if o["mostly_failed"]]
    return Text.assemble(v["label"], *marks)


def sweep_warnings(result: dict[str, Any]) -> list[str]:
    """What to distrust in a sweep: the baseline variant's warnings, then any other variant's of another kind."""
    variants = result["variants"]
    said = {w.split(":", 1)[0] for w in variants[0]["diagnostics"]["warnings"]}
    out = list(variants[0]["diagnostics"]["warnings"])
    for v in variants[1:]:
        for w in v["diagnostics"]["warnings"]:
            if w.split(":", 1)[0] not in said:
                out.append(f"{v['label']}: {w}")
    if result["smallest_stratum"] < 2:
        out.append(
            "a stratum has a single persona: resampling within it cannot vary, so intervals understate uncertainty"
        )
    return out


def basis(result: dict[str, Any]) -> str:
    """What the intervals rest on."""
    base = result["variants"][0]
    seeds = result.get("replicates", 1)
    return (
        f"{result['reps']} bootstrap resamples of {base['personas']:,} personas "
        f"({len(base['personas_per_stratum'])} strata, fewest {result['smallest_stratum']} per stratum"
        f"{' per seed' if seeds > 1 else ''}) x {seeds} seed(s)"
        + ("; seeds resampled too, so intervals include seed-to-seed variation" if seeds > 1 else "")
    )


def moved_text(v: dict[str, Any], top: int = 1) -> str:
    """The options whose share moved most over all questions: "vote2024: Kamala Harris, the Democrat +3.1 pts"."""
    changes = [
        (qid, option, change) for qid, moved in (v["shift"] or {}).get("moved", {}).items() for option, change in moved
    ]
    changes.sort(key=lambda c: -abs(c[2]))
    return "; ".join(f"{qid}: {option} {change * 100:+.1f} pts" for qid, option, change in changes[:top])


def points(x: float | None) -> str:
    """A distance between answer shares (0 to 1) as the points of answers that changed option."""
    return "n/a" if x is None else f"{x * 100:.1f}"


def points_ci(pair: list[float] | None) -> str:
    return "" if pair is None else f"[{pair[0] * 100:.1f}, {pair[1] * 100:.1f}]"


SHIFT_NOTE = (
    "shift: the points of answer share that changed option (TVD x 100, averaged over questions; 0 = the same "
    "answers). moved?: above the noise floor, the shift a random swap of each persona's two answers gives "
    "(a permutation test at 5%). A model that answers the same prompt the same way makes even a tiny change 'yes': "
    "read the size too."
)


def print_shift(result: dict[str, Any]) -> None:
    """Variants ranked by how far their answers moved from the baseline's (TVD over answer shares)."""
    moved = [v for v in result["variants"] if v["shift"] and "tvd" in v["shift"]["figures"]]
    if not moved:
        return
    table = unclipped(
        Table(
            "variant",
            "shift (pts)",
            "95% interval",
            "noise floor",
            "moved?",
            "most moved option",
            title=f"shift: how far each variant moved answers from '{result['baseline']}'",
        )
    )
    for v in sorted(moved, key=lambda v: -v["shift"]["figures"]["tvd"]["value"]):
        figure = v["shift"]["figures"]["tvd"]
        table.add_row(
            variant_label(v),
            points(figure["value"]),
            points_ci(figure["ci"]),
            points(figure.get("noise")),
            verdict(figure),
            moved_text(v),
        )
    console.print(table)
    console.print(SHIFT_NOTE)


def verdict(figure: dict[str, Any]) -> str:
    """Whether a shift stands out from chance: above its noise floor (a one-sided permutation test at 5%)."""
    if figure.get("noise") is None:
        return "?"
    return "yes" if figure["value"] > figure["noise"] else "no: within noise"


def print_comparison(result: dict[str, Any], wanted: list[str]) -> None:
    baseline = result["baseline"]
    console.print(
        Text.assemble(
            (f"sweep {result['sweep']}", "bold"),
            f" {result['name']}: {len(result['variants'])} variants, baseline '{baseline}'",
        )
    )
    console.print(f"intervals: {basis(result)}")
    for warning in sweep_warnings(result):
        console.print(f"! {warning}", style="yellow")
    if not wanted or any(w == "shift" or w.startswith("shift.") for w in wanted):
        print_shift(result)
    names = list(dict.fromkeys(n for v in result["variants"] for n in v["metrics"]))
    names = (
        [n for n in names if n in wanted or n.split(".", 1)[0] in wanted]
        if wanted
        else [n for n in names if not n.startswith("shift.")]
    )
    beside = list(dict.fromkeys(b for v in result["variants"] for b in v.get("baselines", {})))
    for name in names:
        table = unclipped(
            Table(
                "variant",
                "value",
                "95% interval",
                f"difference from {baseline}",
                "95% interval",
                *beside,  # the same metric on each baseline's answers, e.g. uniform and no_persona
                title=name,
            )
        )
        rows = sorted(
            result["variants"],
            key=lambda v: (v["label"] != baseline, -abs(v["metrics"].get(name, {}).get("diff") or 0)),
        )
        for v in rows:
            m = v["metrics"].get(name)
            if m is None:
                continue
            table.add_row(
                variant_label(v),
                fmt(m["value"]),
                ci(m["ci"]),
                "" if v["label"] == baseline else fmt(m["diff"]),
                "" if v["label"] == baseline else ci(m["diff_ci"]),
                *(fmt(v.get("baselines", {}).get(b, {}).get(name)) for b in beside),
            )
        console.print(table)
    console.print(
        "variants are ranked by the size of their difference; n/a: the metric has no value for that variant. "
        "The ALL stratum is the population: personas weighted by the people they stand for."
    )
    if result["no_interval"]:
        console.print(
            f"no intervals for {', '.join(result['no_interval'])}: these metrics read more than answer shares"
        )
    for v in result["variants"]:
        for output in v["invalid_outputs"]:
            if output["mostly_failed"]:
                console.print(
                    f"{v['label']}: {invalid_summary(output)}. Over {result['invalid_threshold']:.0%}: "
                    "its differences measure the failure, not the step.",
                    style="red",
                )


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
    return {"design": name, "effective_sample_size": store.effective_sample_size(record["id"])}


def run_summary(store: Store, run_id: str, invalid_threshold: float = INVALID_THRESHOLD) -> dict[str, Any]:
    record = store.run(run_id)
    metrics = store.metrics(run_id)
    per_stratum: dict[str, dict[str, float]] = defaultdict(dict)
    overall: dict[str, float] = {}
    baselines: dict[str, dict[str, float]] = defaultdict(dict)
    for m in metrics:
        metric, baseline = split(m["metric"])
        key = f"{metric}.{m['name']}"
        if baseline:
            if not m["stratum"]:
                baselines[baseline][key] = m["value"]
        elif m["stratum"]:
            per_stratum[m["stratum"]][key] = m["value"]
        else:
            overall[key] = m["value"]
    question_ids = [
        r["question_id"]
        for r in store.db.query(
            "select distinct question_id from aggregates where run_id = ? order by question_id", [run_id]
        )
    ]
    questions = {qid: store.aggregates(run_id, qid) for qid in question_ids}
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
        "counts": store.counts(run_id),
        "design": design(store, record),
        "failed_answers": dict(zip(("count", "most_common"), store.answer_errors(run_id))),
        "invalid_outputs": [o.model_dump() for o in store.invalid_outputs(run_id, invalid_threshold)],
        "metrics": overall,
        "baselines": dict(baselines),  # baseline -> the same metrics scored on its answers (simrun.baselines)
        "metrics_by_stratum": dict(per_stratum),
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
    if d.off_option is not None:
        parts.append(f"off-option mass {d.off_option:.1%} (max {d.off_option_max:.1%})")
    parts.append(
        "position bias not measured (one option order)"
        if d.position_bias is None
        else f"position bias {d.position_bias:.2f} (0 content .. 1 place; {d.position_answers:,} answers)"
    )
    if d.persona_effect is not None:
        parts.append(f"persona effect {d.persona_effect:.3f} (TVD from the no-persona answer)")
    return "; ".join(parts)


def print_diagnostics(diagnostics: dict[str, Any]) -> None:
    """The run's checks on one line, then each warning they raise."""
    console.print("checks: " + checks_text(diagnostics))
    for warning in diagnostics["warnings"]:
        console.print(f"! {warning}", style="yellow")


def number(value: float | None, digits: int) -> str:
    """A metric value for a table; SQLite keeps NaN (no data) as NULL."""
    return "n/a" if value is None else f"{value:.{digits}f}"


REPLICA_COUNTERS = ("replicas_started", "replicas_lost", "chunks_resubmitted")  # an executor's, summed over resumes


def print_run(store: Store, run_id: str, invalid_threshold: float = INVALID_THRESHOLD) -> None:
    summary = run_summary(store, run_id, invalid_threshold)
    console.print(Text.assemble((f"run {summary['id']}", "bold"), f" {summary['name']} - {summary['status']}"))
    if summary["error"]:
        console.print(summary["error"], style="red")
    counts = summary["counts"]
    console.print(f"{counts['personas']} personas, {counts['answers']} answers, timings {summary['timings']}")
    console.print("components: " + ", ".join(f"{c['as']}={c['name']}" for c in summary["components"]))
    if summary["design"]:
        console.print(
            f"sampling design: {summary['design']['design']}; Kish effective sample size "
            f"{summary['design']['effective_sample_size']:,.0f} of {counts['personas']:,} personas"
        )
    stats = dict(summary["simulator_stats"])
    if "replicas_started" in stats:
        started, lost, resubmitted = (stats.pop(k, 0) for k in REPLICA_COUNTERS)
        console.print(
            f"replicas: {started} started, {lost} of {started} replicas lost, "
            f"{resubmitted} chunk(s) of prompts resubmitted to the survivors",
            style="yellow" if lost else None,
        )
    if COST_COUNTER in stats or "calls_unpriced" in stats:
        cost, unpriced = stats.pop(COST_COUNTER, 0) / 1_000_000, stats.pop("calls_unpriced", 0)
        prompt, completion = stats.pop("prompt_tokens", 0), stats.pop("completion_tokens", 0)
        note = f"; {unpriced} call(s) of a model with no known price not counted" if unpriced else ""
        console.print(f"API cost: ${cost:,.4f} for {prompt:,} prompt and {completion:,} completion tokens{note}")
    if stats:
        console.print(f"simulator: {stats}")
    failures = summary["failed_answers"]
    if failures["count"]:
        console.print(
            f"{failures['count']} answer(s) failed (all their mass counted invalid); most often: "
            + "; ".join(f"{error} ({n})" for error, n in failures["most_common"]),
            style="yellow",
        )
    for output in summary["invalid_outputs"]:
        style, note = (
            ("red", f" (over {invalid_threshold:.0%}: this step's effect is not measured)")
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
        table = unclipped(Table("stratum", "personas", *columns, title="per stratum", caption=population))
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
            table.add_row(name, number(value, 4), *(number(baselines[b].get(name), 4) for b in baselines))
        console.print(table)
