"""simrun browse: the run log in datasette, checked page by page in headless Chromium."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import EXAMPLE
from playwright.sync_api import sync_playwright
from test_report import CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, invoke):
    """A run log with a name that needs escaping, served by simrun browse; (url, run id, process)."""
    db = tmp_path / "run log [v2].db"
    run_id = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db).output.strip()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "simrun", "browse", "--db", str(db), "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    line = server.stderr.readline()
    url = re.search(r"at (\S+) \(Ctrl-C", line)
    assert url, line
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url.group(1) + ".json", timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
            time.sleep(0.2)
    yield url.group(1), run_id, server
    server.terminate()
    server.wait(timeout=30)


def page_text(url: str) -> str:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page()
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        text = page.inner_text("body")
        browser.close()
    return text


def test_the_run_log_in_datasette_with_descriptions_and_canned_queries(served):
    url, run_id, _ = served
    home = page_text(url)
    table = page_text(f"{url}/answers")
    assert "One row per persona x question x repeat" in table  # the table's description, and its columns'
    assert "The answer's own reply, packed" in table
    for title in ("A run's answer shares by stratum", "One persona's answers, with the exact prompts"):
        assert title in home
    shares = page_text(f"{url}/run_shares?run_id={run_id}")
    assert "ALL" in shares and "q1" in shares and "Not sure" not in shares  # options are labels: A, B, C
    answers = page_text(f"{url}/persona_answers?run_id={run_id}&persona_id=0")
    assert "[system]" in answers and "Do you like the town park?" in answers
    assert '{"A":0.' in answers  # a packed reply, read in SQL by simrun_distribution()
    attributes = page_text(f"{url}/persona_attributes?run_id={run_id}&persona_id=0")
    assert "generation" in attributes and "town" in attributes
    across = page_text(f"{url}/metric_across_runs?metric=mean_share&name=share")
    assert run_id in across


def test_browse_refuses_a_port_in_use_and_a_missing_log(tmp_path, invoke):
    db = tmp_path / "r.db"
    invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = invoke("browse", "--port", str(port), db=db)
    assert busy.exit_code == 2 and f"cannot serve on 127.0.0.1:{port}" in busy.output
    missing = invoke("browse", "--port", "1", db=tmp_path / "typo.db")
    assert missing.exit_code == 2 and "no run log at" in missing.output and not (tmp_path / "typo.db").exists()
