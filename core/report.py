"""``simrun report``: one self-contained HTML page for a run or a sweep, plots embedded.

Plots are drawn with matplotlib (Agg) and embedded as PNG data URIs, so the
page needs no network, no script and no other file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

from .diagnostics import MIN_PER_STRATUM
from .display import checks_text
from .models import ALL_STRATA, InvalidOutput
from .store import Store
from .sweep_text import (
    QUESTION_COLUMNS,
    SHIFT_COLUMNS,
    SHIFT_NOTE,
    basis,
    ci,
    moved_text,
    points,
    question_rows,
    shift_cells,
    shifted,
    sweep_warnings,
)

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}\
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}\
img{max-width:100%;display:block;margin:1em 0}
.meta{color:#555}.warn{color:#a40000;font-weight:600}
"""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def pyplot():
    """matplotlib.pyplot drawing off screen (Agg), with math text off: labels are data and may hold "$"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["text.parse_math"] = False
    return plt


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="num">{v:.4g}</td>'
        return f"<td>{html.escape(str(v))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{html.escape(alt)}">'


def invalid_notes(label: str, outputs: list[dict[str, Any]]) -> list[str]:
    """One paragraph per enrichment step that wrote nothing usable for some personas; a warning when it is over the
    threshold.
    """
    return [
        f"<p class='{'warn' if o['mostly_failed'] else 'meta'}'>"
        f"{html.escape(label + InvalidOutput.model_validate(o).summary())}"
        f"{'; over the threshold: this step&#39;s effect is not measured' if o['mostly_failed'] else ''}.</p>"
        for o in outputs
    ]


def marked(variant: dict[str, Any]) -> str:
    """A variant's label, with each step that mostly failed."""
    return variant["label"] + "".join(
        f" (! {o['step']} {o['share']:.0%} invalid)" for o in variant["invalid_outputs"] if o["mostly_failed"]
    )


def run_report(store: Store, summary: dict[str, Any], figures: list[tuple[str, Any]]) -> str:
    """The run page; ``figures`` are (alt text, matplotlib Figure) pairs from the metrics' ``plots``."""
    per_stratum = summary["metrics_by_stratum"]
    parts = [
        f"<h1>simrun run {html.escape(summary['id'])}: {html.escape(summary['name'])}</h1>",
        f"<p class='meta'>status {summary['status']} · created {summary['created_at']} · "
        f"finished {summary['finished_at'] or '-'} · "
        f"{summary['counts']['personas']} personas · {summary['counts']['answers']} answers · "
        f"seed {summary['seed']}</p>",
        *warning_list(summary["diagnostics"]["warnings"]),
        f"<p class='meta'>checks: {html.escape(checks_text(summary['diagnostics']))}</p>",
        *invalid_notes("", summary["invalid_outputs"]),
    ]
    baselines = summary["baselines"]
    rows = [[k, na(v), *(na(baselines[b].get(k)) for b in baselines)] for k, v in summary["metrics"].items()]
    parts += ["<h2>Metrics</h2>", _table(["metric", "personas", *baselines], rows)]
    plots = [_img(_png(figure), alt) for alt, figure in figures]
    if plots:
        parts += ["<h2>Plots</h2>", *plots]
    sizes = summary["diagnostics"]["personas_per_stratum"]
    if per_stratum:
        columns = sorted({k for v in per_stratum.values() for k in v})
        parts += [
            "<h2>By stratum</h2>",
            _table(
                ["stratum", "personas", *columns],
                [[s, sizes.get(s, ""), *(na(per_stratum[s].get(c)) for c in columns)] for s in sorted(per_stratum)],
            ),
        ]
    parts += share_tables(summary, sizes)
    parts += [
        "<h2>Run details</h2>",
        _table(
            ["component", "name", "package", "version"],
            [[c["as"], c["name"], c["package"], c["version"]] for c in summary["components"]],
        ),
        f"<p class='meta'>timings {html.escape(json.dumps(summary['timings']))} · "
        f"simulator {html.escape(json.dumps(summary['simulator_stats']))}</p>",
    ]
    return page(f"simrun run {summary['id']}", parts)


def share_tables(summary: dict[str, Any], sizes: dict[str, int]) -> list[str]:
    """Each question's answer shares per stratum, options by their text, with the personas behind each row."""
    parts = []
    for qid, shares in summary["shares"].items():
        labels = sorted({label for by_label in shares.values() for label in by_label})
        texts = summary["options"].get(qid, {})
        rows = [
            [
                stratum,
                sum(sizes.values()) if stratum == ALL_STRATA else sizes.get(stratum, ""),
                *(shares[stratum].get(label, 0.0) for label in labels),
            ]
            for stratum in sorted(shares, key=lambda s: (s != ALL_STRATA, s))
        ]
        header = ["stratum", "personas", *(f"{label}. {texts[label]}" if label in texts else label for label in labels)]
        parts += [f"<h2>Answer shares: {html.escape(qid)}</h2>", _table(header, rows)]
    if parts:
        parts.append(
            f"<p class='meta'>{ALL_STRATA}: the population, personas weighted by the people they stand for.</p>"
        )
    return parts


def warning_list(warnings: list[str]) -> list[str]:
    """The warnings a reader must see before any figure, at the top of the page."""
    if not warnings:
        return []
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return [f"<div class='warn'><p>What to distrust:</p><ul>{items}</ul></div>"]


def na(value: float | None) -> Any:
    return "n/a" if value is None else value


def shift_section(plt, result: dict[str, Any]) -> list[str]:
    """Each variant's shift from the baseline with its interval, against zero and its noise floor; then by question
    and by stratum."""
    moved = shifted(result)
    if not moved:
        return []
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.45 * len(moved) + 1)))
    for i, v in enumerate(moved):
        figure = v["shift"]["figures"]["tvd"]
        if figure.get("noise") is not None:
            ax.plot([0, 100 * figure["noise"]], [i, i], "-", color="#bbbbbb", linewidth=6, solid_capstyle="butt")
        if figure["ci"]:
            ax.plot([100 * x for x in figure["ci"]], [i, i], "|-", color="#3465a4", markersize=8)
        ax.plot(100 * figure["value"], i, "o", color="#3465a4")
    ax.axvline(0, color="#444", linewidth=0.8)
    ax.set_xlim(left=0)
    ax.set_yticks(range(len(moved)), [marked(v) for v in moved])
    ax.invert_yaxis()
    ax.set(
        xlabel=f"shift from '{result['baseline']}': points of answer share that changed option (0 = same answers)",
        title="How far each variant moved answers (dot, 95% interval; grey: noise floor)",
    )
    rows = [[marked(v), *shift_cells(v), moved_text(v, top=3)] for v in moved]
    by_question = [[v["label"], *row] for v in moved for row in question_rows(v)]
    return [
        "<h2>Shift: how far each variant moved answers</h2>",
        f"<p class='meta'>{html.escape(SHIFT_NOTE)} It needs no real answers.</p>",
        _img(_png(fig), "shift by variant"),
        _table(["variant", *SHIFT_COLUMNS, "most moved options"], rows),
        "<h3>Shift by question</h3>",
        "<p class='meta'>The mean position's change is in the question's own scale units (ordinal questions).</p>",
        _table(["variant", *QUESTION_COLUMNS], by_question),
        *shift_by_stratum(result, moved),
    ]


def shift_by_stratum(result: dict[str, Any], moved: list[dict[str, Any]]) -> list[str]:
    """Each variant's shift within each stratum: where the answers moved; strata with few personas marked."""
    sizes = result["variants"][0]["personas_per_stratum"]
    strata = sorted({s for v in moved for s in v["shift"]["strata"].get("tvd", {})})
    if not strata:
        return []
    rows = [
        [
            stratum,
            f"{sizes.get(stratum, '')}{' (few)' if sizes.get(stratum, 0) < MIN_PER_STRATUM else ''}",
            *(points(v["shift"]["strata"]["tvd"].get(stratum, {}).get("value")) for v in moved),
        ]
        for stratum in strata
    ]
    return [
        "<h3>Shift by stratum</h3>",
        "<p class='meta'>The same shift (points) within each stratum, averaged over questions. A stratum's figure "
        f"rests on its own personas only, and a distance from few of them is biased upward: under {MIN_PER_STRATUM} "
        "personas (few), read it as noise.</p>",
        _table(["stratum", "personas", *(v["label"] for v in moved)], rows),
    ]


def metric_section(plt, result: dict[str, Any], name: str) -> list[str]:
    """One metric: each variant's difference from the baseline with its interval, around zero, with the uniform and
    no-persona baselines as reference lines; the values in a table, "n/a" where a variant has none."""
    variants = result["variants"]
    baseline = result["baseline"]
    beside = list(dict.fromkeys(b for v in variants for b in v.get("baselines", {})))
    base_value = variants[0]["metrics"].get(name, {}).get("value")
    parts = [f"<h2>{html.escape(name)}</h2>"]
    others = [v for v in variants[1:] if name in v["metrics"]]
    if others and base_value is not None:
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.45 * len(others) + 1)))
        for i, v in enumerate(others):
            m = v["metrics"][name]
            if m["diff_ci"]:
                ax.plot(m["diff_ci"], [i, i], "|-", color="#3465a4", markersize=8)
            if m["diff"] is not None:
                ax.plot(m["diff"], i, "o", color="#3465a4")
        ax.axvline(0, color="#444", linewidth=1, label=f"{baseline} ({base_value:.4g})")
        for b, style in zip(beside, ("--", ":", "-.")):
            reference = variants[0]["baselines"].get(b, {}).get(name)
            if reference is not None:
                ax.axvline(reference - base_value, color="#a40000", linestyle=style, linewidth=1, label=b)
        ax.set_yticks(
            range(len(others)),
            [marked(v) + ("" if v["metrics"][name]["diff"] is not None else " (n/a)") for v in others],
        )
        ax.invert_yaxis()
        ax.legend(fontsize=7, loc="best")
        has_interval = any(v["metrics"][name]["diff_ci"] for v in others)
        title = f"{name}: difference from '{baseline}'" + (" (95% interval)" if has_interval else " (no interval)")
        ax.set(xlabel=f"difference from '{baseline}'", title=title)
        parts.append(_img(_png(fig), f"{name}: difference from {baseline}"))
    rows = [
        [
            marked(v),
            na(v["metrics"][name]["value"]),
            ci(v["metrics"][name]["ci"]),
            "" if v["label"] == baseline else na(v["metrics"][name]["diff"]),
            "" if v["label"] == baseline else ci(v["metrics"][name]["diff_ci"]),
            *(na(v.get("baselines", {}).get(b, {}).get(name)) for b in beside),
        ]
        for v in variants
        if name in v["metrics"]
    ]
    parts.append(
        _table(["variant", "value", "95% interval", f"difference from {baseline}", "95% interval", *beside], rows)
    )
    return parts


def sweep_report(result: dict[str, Any], per_state_by_variant: dict[str, dict[str, dict[str, float]]]) -> str:
    plt = pyplot()
    variants = result["variants"]
    labels = [v["label"] for v in variants]
    names = [n for n in dict.fromkeys(n for v in variants for n in v["metrics"]) if not n.startswith("shift.")]
    parts = [
        f"<h1>simrun sweep {html.escape(result['sweep'])}: {html.escape(result['name'])}</h1>",
        f"<p class='meta'>{len(variants)} variants · baseline {html.escape(result['baseline'])} · "
        f"intervals: {html.escape(basis(result))} · ablation {html.escape(json.dumps(result['ablation']))}</p>",
        *warning_list(sweep_warnings(result)),
    ]
    parts += [
        note
        for v in variants
        for note in invalid_notes(f"{v['label']}: ", [o for o in v["invalid_outputs"] if o["mostly_failed"]])
    ]
    parts += shift_section(plt, result)
    for name in names:
        parts += metric_section(plt, result, name)
    if result["no_interval"]:
        parts.append(
            f"<p class='meta'>No intervals for {html.escape(', '.join(result['no_interval']))}: these metrics read "
            "more than answer shares, so they are not recomputed on resamples.</p>"
        )
    states = sorted(
        {s for per in per_state_by_variant.values() for s, v in per.items() if "election.error_points" in v}
    )
    if states:
        fig, ax = plt.subplots(figsize=(11, 4))
        for label in labels:
            per = per_state_by_variant.get(label, {})
            ax.plot(
                states,
                [nan_for_none(per.get(s, {}).get("election.error_points")) for s in states],
                marker="o",
                markersize=3,
                linewidth=1,
                label=label,
            )
        ax.axhline(0, color="#444", linewidth=0.8)
        ax.tick_params(axis="x", labelsize=7, rotation=90)
        ax.set(ylabel="simulated - real (points)", title="Per-state error by variant")
        ax.legend(fontsize=7)
        parts += ["<h2>Per-state error by variant</h2>", _img(_png(fig), "per-state error by variant")]
    return page(f"simrun sweep {result['sweep']}", parts)


def nan_for_none(value: float | None) -> float:
    return float("nan") if value is None else value


def page(title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
