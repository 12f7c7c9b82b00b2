"""A disk that fills up mid-run: the run is marked failed with the reason and resumes, complete, once space is back.

The run log sits on a 400 KiB tmpfs mounted in a private mount namespace
(``unshare -m``, as root), so nothing outside the test sees it.
"""

import sqlite3
import subprocess
import sys

from conftest import EXAMPLE

from simrun.store import Store

SCRIPT = """
set -u
mount -t tmpfs -o size=400k tmpfs {mnt}
run() {{ "{python}" -m simrun "$@" --db {mnt}/r.db --plugins-dir {plugins} --quiet; echo "exit $?" >&2; }}
run run {towns} --set sampler.with.per_town=1500
"{python}" -c "import sqlite3; print(*sqlite3.connect('{mnt}/r.db')\
.execute('select id, status, error from runs').fetchone(), sep='|')" > {out}/first.txt
mount -o remount,size=50m {mnt}
run run --resume "$(cut -d'|' -f1 {out}/first.txt)"
cp {mnt}/r.db* {out}/
"""


def test_a_full_disk_fails_the_run_with_its_reason_and_it_resumes_once_space_is_back(tmp_path):
    mnt, out = tmp_path / "disk", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    script = SCRIPT.format(mnt=mnt, out=out, python=sys.executable, plugins=EXAMPLE, towns=EXAMPLE / "towns.yaml")
    result = subprocess.run(["unshare", "-m", "bash", "-c", script], capture_output=True, text=True, timeout=600)
    messages = result.stderr.splitlines()
    assert "exit 2" in messages and messages[-1] == "exit 0", result.stderr
    assert (
        f"the disk holding {mnt}/r.db is full: free some space; then continue with: simrun run --resume"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    run_id, status, error = (out / "first.txt").read_text().strip().split("|")
    # the reason is recorded when the failed write left room for it; else the run stays "running", its owner gone
    assert (status == "failed" and "is full" in error) or (status == "running" and error == "None")

    solo = tmp_path / "solo.db"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "simrun",
            "run",
            str(EXAMPLE / "towns.yaml"),
            "--set",
            "sampler.with.per_town=1500",
            "--db",
            str(solo),
            "--plugins-dir",
            str(EXAMPLE),
            "--quiet",
        ],
        check=True,
        capture_output=True,
    )
    resumed, alone = Store(out / "r.db", read_only=True), Store(solo, read_only=True)
    [solo_id] = [r["id"] for r in alone.runs.all()]
    assert resumed.runs.get(run_id)["status"] == "finished"

    def rows(store: Store, rid: str) -> list[tuple]:
        return [
            (r["persona_id"], r["question_id"], r["distribution"], r["prompt"])
            for r in store.answers.rows(rid, prompts=True)
        ]

    assert rows(resumed, run_id) == rows(alone, solo_id) and len(rows(alone, solo_id)) == 6000
    assert sqlite3.connect(out / "r.db").execute("pragma integrity_check").fetchone() == ("ok",)
