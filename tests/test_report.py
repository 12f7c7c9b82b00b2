"""simrun report: one self-contained HTML page, opened in headless Chromium."""

import json
import shutil

from conftest import EXAMPLE
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
    assert alts["election.mae_points by variant"] and alts["per-state error by variant"]
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


def test_a_bootstrap_interval_that_leaves_out_its_estimate_is_drawn_as_it_is():
    # percentile intervals of a skewed statistic can sit beside the estimate; error bars around it cannot be negative
    metric = {"value": 0.915, "ci": [0.9158, 0.93], "diff": None, "diff_ci": None}
    result = {
        "sweep": "s1",
        "name": "n",
        "baseline": "baseline",
        "reps": 30,
        "ablation": {},
        "variants": [
            {
                "label": "baseline",
                "metrics": {"election.mae_points": metric},
                "invalid_outputs": [],
                "mostly_failed": [],
            }
        ],
    }
    page = sweep_report(result, {})
    assert "election.mae_points by variant" in page and "[0.9158, 0.93]" in page
