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

from .models import InvalidOutput
from .store import Store

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
        *invalid_notes("", summary["invalid_outputs"]),
    ]
    baselines = summary["baselines"]
    rows = [[k, v, *(baselines[b].get(k) for b in baselines)] for k, v in summary["metrics"].items()]
    parts += ["<h2>Metrics</h2>", _table(["metric", "personas", *baselines], rows)]
    plots = [_img(_png(figure), alt) for alt, figure in figures]
    if plots:
        parts += ["<h2>Plots</h2>", *plots]
    if per_stratum:
        columns = sorted({k for v in per_stratum.values() for k in v})
        parts += [
            "<h2>By stratum</h2>",
            _table(
                ["stratum", *columns], [[s, *(per_stratum[s].get(c, "") for c in columns)] for s in sorted(per_stratum)]
            ),
        ]
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


def sweep_report(result: dict[str, Any], per_state_by_variant: dict[str, dict[str, dict[str, float]]]) -> str:
    plt = pyplot()
    variants = result["variants"]
    labels = [v["label"] for v in variants]
    names = list(dict.fromkeys(n for v in variants for n in v["metrics"]))
    parts = [
        f"<h1>simrun sweep {html.escape(result['sweep'])}: {html.escape(result['name'])}</h1>",
        f"<p class='meta'>{len(variants)} variants · baseline {html.escape(result['baseline'])} · "
        f"{result['reps']} bootstrap resamples · ablation {html.escape(json.dumps(result['ablation']))}</p>",
    ]
    parts += [
        note
        for v in variants
        for note in invalid_notes(f"{v['label']}: ", [o for o in v["invalid_outputs"] if o["mostly_failed"]])
    ]
    for name in names:
        points = [(marked(v), v["metrics"][name]) for v in variants if name in v["metrics"]]
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.4 * len(points))))
        for i, (_, m) in enumerate(points):
            if m[
                "ci"
            ]:  # a percentile interval need not contain the estimate: drawn as it is, not as error bars around it
                ax.plot(m["ci"], [i, i], "|-", color="#3465a4", markersize=8)
            ax.plot(m["value"], i, "o", color="#3465a4")
        ax.set_yticks(range(len(points)), [label for label, _ in points])
        ax.invert_yaxis()
        ax.set(xlabel=name, title=f"{name} by variant (95% bootstrap interval)")
        rows = [
            [
                label,
                m["value"],
                f"[{m['ci'][0]:.4g}, {m['ci'][1]:.4g}]" if m["ci"] else "",
                m["diff"] if m["diff"] is not None else "",
                f"[{m['diff_ci'][0]:.4g}, {m['diff_ci'][1]:.4g}]" if m["diff_ci"] else "",
            ]
            for label, m in points
        ]
        parts += [
            f"<h2>{html.escape(name)}</h2>",
            _img(_png(fig), f"{name} by variant"),
            _table(["variant", "value", "95% interval", f"difference from {result['baseline']}", "95% interval"], rows),
        ]
    states = sorted(
        {s for per in per_state_by_variant.values() for s, v in per.items() if "election.error_points" in v}
    )
    if states:
        fig, ax = plt.subplots(figsize=(11, 4))
        for label in labels:
            per = per_state_by_variant.get(label, {})
            ax.plot(
                states,
                [per.get(s, {}).get("election.error_points", float("nan")) for s in states],
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


def page(title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
