"""What ``simrun compare`` (and the end of ``simrun sweep``) prints, and the sentences ``simrun report`` shares with
it: what the intervals rest on, what to distrust, each variant's shift, every metric beside its baselines."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from .diagnostics import unsaid
from .display import console, invalid_summary, unclipped


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def ci(pair: list[float] | None) -> str:
    return "" if pair is None else f"[{pair[0]:.4g}, {pair[1]:.4g}]"


def points(x: float | None) -> str:
    """A distance or change of answer shares (0 to 1) as points of answer share."""
    return "n/a" if x is None else f"{x * 100:.1f}"


def points_ci(pair: list[float] | None) -> str:
    return "" if pair is None else f"[{pair[0] * 100:.1f}, {pair[1] * 100:.1f}]"


SHIFT_NOTE = (
    "shift: the points of answer share that changed option in the population (TVD x 100, averaged over questions; "
    "0 = the same answers); a distance between two samples is above 0 even when nothing changed, so judge it "
    "against the noise floor, the shift a random swap of each persona's two answers gives: moved? says 'yes' above "
    "it (a permutation test at 5%: among 20 variants that change nothing, one says 'yes' by chance; n/a when the "
    "variant has other personas). A model that answers the same prompt the same way makes even a tiny change 'yes': "
    "read the size too. per persona: how far each persona's own answer moved, on average; far above the shift, "
    "personas moved in directions that cancel out in the population."
)


def signed(value: float, interval: list[float] | None) -> str:
    """A signed change with its interval: "+0.120 [+0.050, +0.190]"."""
    return f"{value:+.3f}" + ("" if interval is None else f" [{interval[0]:+.3f}, {interval[1]:+.3f}]")


def variant_label(v: dict[str, Any]) -> Text:
    """The variant's name, and each enrichment step of it that mostly failed."""
    marks = [(f" (! {o['step']} {o['share']:.0%} invalid)", "red") for o in v["invalid_outputs"] if o["mostly_failed"]]
    return Text.assemble(v["label"], *marks)


def sweep_warnings(result: dict[str, Any]) -> list[str]:
    """What to distrust in a sweep: the baseline variant's warnings, then any other variant's of another kind."""
    variants = result["variants"]
    said: set[str] = set()
    out = unsaid(variants[0]["diagnostics"]["warnings"], said)
    for v in variants[1:]:
        out += [f"{v['label']}: {w}" for w in unsaid(v["diagnostics"]["warnings"], said)]
    if result["smallest_stratum"] == 1:
        out.append(
            "a stratum has a single persona: resampling within it cannot vary, so intervals understate uncertainty"
        )
    for v in variants[1:]:
        if v["shift"] and v["shift"]["not_compared"]:
            out.append(
                f"{v['label']}: its shift leaves out {', '.join(v['shift']['not_compared'])}, asked with other "
                "options than the baseline's (or in one of the two only)"
            )
    return out


def basis(result: dict[str, Any]) -> str:
    """What the intervals rest on."""
    base = result["variants"][0]
    seeds = result.get("replicates", 1)
    return (
        f"{result['reps']} bootstrap resamples of {base['personas']:,} personas"
        + (" per seed" if seeds > 1 else "")
        + f" ({len(base['personas_per_stratum'])} strata, fewest {result['smallest_stratum']} per stratum) "
        f"x {seeds} seed(s)"
        + ("; seeds resampled too, so intervals include seed-to-seed variation" if seeds > 1 else "")
    )


def moved_text(v: dict[str, Any], top: int = 1) -> str:
    """The options whose share moved most over all questions: "vote2024: Harris +3.1 pts [1.2, 5.0]"."""
    changes = [(qid, *change) for qid, moved in (v["shift"] or {}).get("moved", {}).items() for change in moved]
    changes.sort(key=lambda c: -abs(c[2]))
    return "; ".join(
        f"{qid}: {option} {change * 100:+.1f} pts {points_ci(interval)}".rstrip()
        for qid, option, change, interval in changes[:top]
    )


def per_persona(v: dict[str, Any]) -> str:
    """How far each persona's own answer moved, with its interval; "n/a" for a variant of other personas."""
    figure = v["shift"]["figures"].get("persona")
    return "n/a" if figure is None else f"{points(figure['value'])} {points_ci(figure['ci'])}".rstrip()


def by_seed(figure: dict[str, Any]) -> str:
    """Each seed's own shift, in points: does the ranking hold from one draw of personas to the next?"""
    return ", ".join(points(x) for x in figure.get("per_seed", []))


def verdict(figure: dict[str, Any]) -> str:
    """Whether a shift stands out from chance: above its noise floor (a one-sided permutation test at 5%)."""
    if figure.get("noise") is None:
        return "n/a"
    return "yes" if figure["value"] > figure["noise"] else "no: within noise"


def shifted(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The variants with a shift, the largest first."""
    moved = [v for v in result["variants"] if v["shift"] and "tvd" in v["shift"]["figures"]]
    return sorted(moved, key=lambda v: -v["shift"]["figures"]["tvd"]["value"])


def question_rows(v: dict[str, Any]) -> list[list[str]]:
    """One variant's shift per question: TVD with its interval, and the mean position's change on ordinal scales."""
    figures = v["shift"]["figures"]
    rows = []
    for qid in v["shift"]["questions"]:
        tvd, position = figures.get(f"tvd.{qid}"), figures.get(f"position.{qid}")
        top = v["shift"]["moved"].get(qid, [])[:1]
        rows.append(
            [
                qid,
                points(tvd["value"]) if tvd else "n/a",
                points_ci(tvd["ci"]) if tvd else "",
                signed(position["value"], position["ci"]) if position else "",
                "".join(f"{option} {change * 100:+.1f} pts {points_ci(interval)}" for option, change, interval in top),
            ]
        )
    return rows


SHIFT_COLUMNS = ["shift (pts)", "95% interval", "noise floor", "moved?", "per persona (pts)"]


def shift_cells(v: dict[str, Any]) -> list[str]:
    """A variant's overall shift, as the ``SHIFT_COLUMNS`` of compare's table and the report's."""
    figure = v["shift"]["figures"]["tvd"]
    return [
        points(figure["value"]),
        points_ci(figure["ci"]),
        points(figure.get("noise")),
        verdict(figure),
        per_persona(v),
    ]


QUESTION_COLUMNS = ["question", "shift (pts)", "95% interval", "mean position change", "most moved option"]


def print_shift(result: dict[str, Any], per_question: bool) -> None:
    """Variants ranked by how far their answers moved from the baseline's; with ``per_question``, each question."""
    moved = shifted(result)
    if not moved:
        return
    title = f"shift: how far each variant moved answers from '{result['baseline']}'"
    table = unclipped(Table("variant", *SHIFT_COLUMNS, "most moved option", title=title))
    seeds = result.get("replicates", 1) > 1
    if seeds:
        table.add_column("by seed (pts)")
    for v in moved:
        by = [by_seed(v["shift"]["figures"]["tvd"])] if seeds else []
        table.add_row(variant_label(v), *shift_cells(v), moved_text(v), *by)
    console.print(table)
    if per_question:
        for v in moved:
            detail = unclipped(Table(*QUESTION_COLUMNS, title=f"shift of '{v['label']}' by question"))
            for row in question_rows(v):
                detail.add_row(*row)
            console.print(detail)
    console.print(SHIFT_NOTE)


def print_metric(result: dict[str, Any], name: str, beside: list[str]) -> None:
    """One metric figure: every variant's value, interval, difference from the baseline, and each baseline's."""
    baseline = result["baseline"]
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
        result["variants"], key=lambda v: (v["label"] != baseline, -abs(v["metrics"].get(name, {}).get("diff") or 0))
    )
    for v in rows:
        m = v["metrics"].get(name)
        if m is not None:
            table.add_row(
                variant_label(v),
                fmt(m["value"]),
                ci(m["ci"]),
                "" if v["label"] == baseline else fmt(m["diff"]),
                "" if v["label"] == baseline else ci(m["diff_ci"]),
                *(fmt(v.get("baselines", {}).get(b, {}).get(name)) for b in beside),
            )
    console.print(table)


def selected_by(name: str) -> set[str]:
    """What ``--metric`` may say to pick the figure ``name``: itself (``wasserstein.tvd[Q1]``), its metric
    (``wasserstein``), or, for a per-question figure, the figure across questions (``wasserstein.tvd``)."""
    return {name, name.split(".", 1)[0], name.split("[", 1)[0]}


def print_comparison(result: dict[str, Any], wanted: list[str]) -> None:
    console.print(
        Text.assemble(
            (f"sweep {result['sweep']}", "bold"),
            f" {result['name']}: {len(result['variants'])} variants, baseline '{result['baseline']}'",
        )
    )
    console.print(f"intervals: {basis(result)}")
    for warning in sweep_warnings(result):
        console.print(f"! {warning}", style="yellow")
    asked_shift = any(w == "shift" or w.startswith("shift.") for w in wanted)
    if not wanted or asked_shift:
        print_shift(result, per_question=asked_shift)
    names = list(dict.fromkeys(n for v in result["variants"] for n in v["metrics"] if not n.startswith("shift.")))
    if wanted:
        names = [n for n in names if selected_by(n) & set(wanted)]
    beside = list(dict.fromkeys(b for v in result["variants"] for b in v.get("baselines", {})))
    for name in names:
        print_metric(result, name, beside)
    if names:
        console.print(
            "variants are ranked by the size of their difference from the baseline; n/a: the metric has no value for "
            "that variant."
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
