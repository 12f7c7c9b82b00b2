"""simrun report: one self-contained HTML page, opened in headless Chromium."""

import json
import shutil

import pytest
import yaml
from conftest import EXAMPLE, SCENARIOS
from playwright.sync_api import sync_playwright

from simrun.report import sweep_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ELECTION = [
    "--set",
    "sampler={use: census, with: {states: [CA, TX, WY, VT, PA], per_state: 6}}",
    "--set",
    "enrichers=[]",
    "--set",
    "questions=[{id: vote2024, text: 'Who did you vote for?', options: [Harris, Trump]}]",
    "--set",
    "metrics={election: {question: vote2024}}",
]


def open_in_chromium(path):
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        problems = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "request",
            lambda r: (
                problems.append(f"network request: {r.url}") if not r.url.startswith(("file:", "data:")) else None
            ),
        )
        page.goto(path.as_uri())
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        title = page.title()
        page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
        browser.close()
    return title, images, problems


def test_run_report_renders_its_plots(invoke, tmp_path):
    db = tmp_path / "r.db"
    assert invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", *ELECTION, db=db).exit_code == 0
    run_id = json.loads(invoke("runs", "--json", db=db).output)[0]["id"]
    out = tmp_path / "report.html"
    result = invoke("report", run_id, "-o", str(out), db=db)
    assert result.exit_code == 0, result.output
    title, images, problems = open_in_chromium(out)
    assert title == f"simrun run {run_id}"
    assert dict(images) == {"simulated vs real Democratic share by state": True, "error by state": True}
    assert problems == []
    assert "election.mae_points" in out.read_text()


def test_sweep_report_has_a_plot_per_metric_and_per_state_errors(invoke, tmp_path):
    db = tmp_path / "s.db"
    result = invoke(
        "sweep",
        str(EXAMPLE / "towns_sweep.yaml"),
        "--quiet",
        *ELECTION,
        "--set",
        "ablation.with.attributes=[age, sex]",
        db=db,
    )
    assert result.exit_code == 0, result.output
    sweep_id = result.output.strip()
    compared = json.loads(invoke("compare", sweep_id, "--json", "--reps", "30", db=db).output)
    assert compared["no_interval"] == []
    assert all(v["metrics"]["election.mae_points"]["ci"] is not None for v in compared["variants"])
    out = tmp_path / "sweep.html"
    assert invoke("report", sweep_id, "-o", str(out), "--reps", "30", db=db).exit_code == 0
    title, images, problems = open_in_chromium(out)
    assert title == f"simrun sweep {sweep_id}"
    alts = dict(images)
    assert alts["election.mae_points: difference from baseline"] and alts["per-state error by variant"]
    assert alts["shift by variant"]
    assert all(alts.values()) and problems == []


def test_a_plugin_metric_adds_its_own_plots(invoke, tmp_path):
    db = tmp_path / "m.db"
    assert invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db).exit_code == 0
    run_id = json.loads(invoke("runs", "--json", db=db).output)[0]["id"]
    out = tmp_path / "towns.html"
    assert invoke("report", run_id, "-o", str(out), db=db).exit_code == 0
    title, images, problems = open_in_chromium(out)
    assert dict(images) == {"share of A by town": True} and problems == []


def test_unknown_id_is_a_clear_error(invoke, tmp_path):
    invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet")
    result = invoke("report", "nope", "-o", str(tmp_path / "x.html"))
    assert result.exit_code == 2 and "no run or sweep 'nope'" in result.output


def compared(variants, **metrics):
    """compare()'s result for variants whose only figures are ``metrics`` (name -> per variant)."""
    diagnostics = {"personas_per_stratum": {"CA": 40}, "off_option": 0.0, "warnings": []}
    return {
        "sweep": "s1",
        "name": "n",
        "baseline": variants[0],
        "reps": 30,
        "replicates": 1,
        "ablation": {},
        "smallest_stratum": 40,
        "no_interval": [],
        "variants": [
            {
                "label": label,
                "personas": 40,
                "personas_per_stratum": {"CA": 40},
                "metrics": {name: values[i] for name, values in metrics.items() if values[i] is not None},
                "shift": None,
                "baselines": {},
                "diagnostics": diagnostics,
                "invalid_outputs": [],
                "mostly_failed": [],
            }
            for i, label in enumerate(variants)
        ],
    }


def test_a_bootstrap_interval_that_leaves_out_its_estimate_is_drawn_as_it_is():
    # percentile intervals of a skewed statistic can sit beside the estimate; error bars around it cannot be negative
    base = {"value": 0.915, "ci": [0.9, 0.93], "diff": 0.0, "diff_ci": [0.0, 0.0]}
    other = {"value": 0.92, "ci": [0.9, 0.94], "diff": 0.005, "diff_ci": [0.0058, 0.02]}
    page = sweep_report(compared(["baseline", "other"], **{"election.mae_points": [base, other]}), {})
    assert "election.mae_points: difference from baseline" in page and "[0.0058, 0.02]" in page


def test_a_metric_without_a_value_for_a_variant_shows_n_a():
    # the tiers sweep: persona_text has no figure for the meta variant, whose personas no LLM wrote
    written = {"value": None, "ci": None, "diff": None, "diff_ci": None}
    page = sweep_report(compared(["meta", "objective"], **{"persona_text.polarity": [written, written]}), {})
    assert page.count("n/a") >= 2


def sweep_scenarios():
    return sorted(p for p in SCENARIOS.glob("*.yaml") if "ablation" in yaml.safe_load(p.read_text()))


@pytest.mark.parametrize("scenario", sweep_scenarios(), ids=lambda p: p.name)
def test_the_report_of_every_shipped_sweep_renders(invoke, tmp_path, scenario):
    db = tmp_path / "s.db"
    result = invoke(
        "sweep",
        str(scenario),
        "--quiet",
        "--set",
        "sampler.with.states=[VT, WY]",
        "--set",
        "sampler.with.per_state=3",
        "--set",
        "simulator={use: instant}",
        db=db,
    )
    assert result.exit_code == 0, result.output
    sweep_id = result.output.strip()
    out = tmp_path / "sweep.html"
    written = invoke("report", sweep_id, "-o", str(out), "--reps", "20", db=db)
    assert written.exit_code == 0, written.output
    title, images, problems = open_in_chromium(out)
    alts = dict(images)
    assert title == f"simrun sweep {sweep_id}" and problems == []
    assert alts["shift by variant"] and all(alts.values()), alts
    page = out.read_text()
    assert "What to distrust" in page and "few personas" in page  # 3 per state
