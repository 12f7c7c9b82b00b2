"""Malformed scenarios and invocations, as a hostile or careless user writes them.

Every case must end with a clear message that says where (file:line, field,
path) and what, the documented exit code, and no Python traceback; and a
scenario that cannot be scored is refused before any model call.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import EXAMPLE

from simrun import data

TOWNS = (EXAMPLE / "towns.yaml").read_text()
CENSUS = """name: census check
seed: 1
sampler:
  use: census
  with:
    states: [VT, WY]
    per_state: 2
simulator:
  use: instant
questions:
  - id: vote2024
    text: Who did you vote for?
    options: [Harris, Trump]
metrics:
  election:
    question: vote2024
"""
CONTROLS_HEADER = "state,table,dimension,category,count\n"


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if fragment in line)


def replaced(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (id, scenario text, fragments the message must hold); "{line:X}" is the line of X in the text
SCENARIOS = [
    ("duplicate-top-level-key", TOWNS + "name: again\n", ["duplicate key 'name' (first on line 1)"]),
    (
        "duplicate-nested-key",
        replaced(TOWNS, "    per_town: 12\n", "    per_town: 12\n    per_town: 13\n"),
        ["duplicate key 'per_town'"],
    ),
    ("yaml-syntax", TOWNS + "questions: [\n", ["YAML syntax error"]),
    ("yaml-tab-indent", replaced(TOWNS, "  use: towns", "\tuse: towns"), ["YAML syntax error"]),
    ("not-a-mapping", "- just\n- a list\n", ["expected a mapping of fields"]),
    ("empty-file", "", ["expected a mapping of fields"]),
    ("python-tag", TOWNS + "evil: !!python/object/apply:os.system ['true']\n", ["YAML syntax error", "python/object"]),
    (
        "alias-bomb",
        "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
        ["an alias bomb"],
    ),
    ("nested-100", "name: " + "[" * 100 + "]" * 100 + "\n", ["nested more than 64 levels"]),
    ("nested-5000", "name: " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
    ("unknown-field", TOWNS + "colour: blue\n", ["{line:colour}", "colour: unknown field"]),
    (
        "misspelled-plugin",
        replaced(TOWNS, "use: instant", "use: instnat"),
        ["{line:instnat}", "did you mean 'instant'"],
    ),
    ("wrong-type", replaced(TOWNS, "per_town: 12", "per_town: twelve"), ["{line:twelve}", "sampler.with.per_town"]),
    ("negative-seed", replaced(TOWNS, "seed: 7", "seed: -1"), ["{line:seed}", "seed", "greater than or equal to 0"]),
    ("huge-seed", replaced(TOWNS, "seed: 7", "seed: 99999999999999999999999"), ["{line:seed}", "seed"]),
    ("zero-batch", replaced(TOWNS, "batch_size: 8", "batch_size: 0"), ["{line:batch_size}", "batch_size"]),
    ("zero-repeats", TOWNS + "repeats: 0\n", ["{line:repeats}", "repeats"]),
    (
        "duplicate-options",
        replaced(TOWNS, "options: [Yes, No]", "options: [Yes, No, yes]"),
        ["{line:[Yes, No, yes]}", "option 'yes' appears twice"],
    ),
    ("duplicate-question-ids", replaced(TOWNS, "id: q2", "id: q1"), ["question id 'q1' appears twice"]),
    ("one-option", replaced(TOWNS, "options: [Yes, No]", "options: [Yes]"), ["{line:[Yes]}", "options"]),
    (
        "27-options",
        replaced(TOWNS, "options: [Yes, No]", "options: [" + ", ".join(f"o{i}" for i in range(27)) + "]"),
        ["options"],
    ),
    ("bad-question-id", replaced(TOWNS, "id: q2", "id: 'q 2'"), ["{line:q 2}", "questions.1.id"]),
    (
        "truth-wrong-length",
        replaced(TOWNS, "options: [Yes, No]", "options: [Yes, No]\n    truth: [1, 2, 3]"),
        ["truth has 3 values but there are 2 options"],
    ),
    (
        "truth-negative",
        replaced(TOWNS, "options: [Yes, No]", "options: [Yes, No]\n    truth: [1, -2]"),
        ["non-negative"],
    ),
    (
        "ordinal-too-long",
        replaced(TOWNS, "options: [Yes, No]", "options: [Yes, No]\n    ordinal: [1, 2, 3]"),
        ["ordinal has 3 values"],
    ),
    (
        "metric-question-missing",
        replaced(TOWNS, "question: q1", "question: q9"),
        ["{line:q9}", "metrics.mean_share.question", "no question 'q9'"],
    ),
    (
        "metric-option-missing",
        replaced(TOWNS, "question: q1", "question: q1\n    option: Z"),
        ["{line:option: Z}", "metrics.mean_share.option", "'Z' is not an option label"],
    ),
    (
        "stability-without-repeats",
        TOWNS + "  stability: {}\n",
        ["{line:stability}", "metrics.stability", "set repeats: 2 or more"],
    ),
    ("wasserstein-without-truth", TOWNS + "  wasserstein: {}\n", ["metrics.wasserstein", "no question has truth"]),
    (
        "wasserstein-unknown-question",
        TOWNS + "  wasserstein: {questions: [q1, nope]}\n",
        ["metrics.wasserstein.questions.1", "no question 'nope'"],
    ),
    (
        "no-questions",
        replaced(TOWNS, TOWNS[TOWNS.index("questions:") : TOWNS.index("metrics:")], "").replace(
            "metrics:\n  mean_share:\n    question: q1\n", ""
        ),
        ["no questions"],
    ),
    ("unknown-metric", TOWNS + "  forecast: {}\n", ["{line:forecast}", "no metric named 'forecast'"]),
    ("ablation-unknown", TOWNS + "ablation: {use: shuffle}\n", ["{line:shuffle}", "no ablation named 'shuffle'"]),
    ("census-no-states", replaced(CENSUS, "states: [VT, WY]", "states: []"), ["{line:states}", "no states"]),
    (
        "census-unknown-state",
        replaced(CENSUS, "states: [VT, WY]", "states: [VT, XX]"),
        ["{line:states}", "unknown state code(s) ['XX']"],
    ),
    ("census-zero-per-state", replaced(CENSUS, "per_state: 2", "per_state: 0"), ["{line:per_state}", "per_state"]),
    ("census-no-size", replaced(CENSUS, "per_state: 2", "per_state: null"), ["set per_state or total"]),
    (
        "election-question-missing",
        replaced(CENSUS, "    question: vote2024", "    question: vote"),
        ["{line:question: vote}", "metrics.election.question", "no question 'vote'"],
    ),
    (
        "election-wrong-dem-option",
        replaced(CENSUS, "    question: vote2024", "    question: vote2024\n    dem_option: C"),
        ["{line:dem_option}", "metrics.election.dem_option", "'C' is not an option label of vote2024", "A (Harris)"],
    ),
    (
        "election-same-options",
        replaced(CENSUS, "    question: vote2024", "    question: vote2024\n    rep_option: A"),
        ["metrics.election.rep_option", "the same option as dem_option"],
    ),
]
FILES = [  # (id, file name, file content, scenario edit given the file's path, fragments)
    (
        "controls-missing",
        None,
        None,
        lambda f: replaced(CENSUS, "per_state: 2", f"per_state: 2\n    controls: {f}"),
        ["{line:controls}", "cannot read it"],
    ),
    (
        "controls-negative",
        "controls.csv",
        CONTROLS_HEADER + "VT,B01001,sex_age,male|18-29,-5\n",
        lambda f: replaced(CENSUS, "per_state: 2", f"per_state: 2\n    controls: {f}"),
        ["controls.csv:2", "is not a number >= 0"],
    ),
    (
        "controls-missing-column",
        "controls.csv",
        "state,table,dimension,category\nVT,B01001,sex_age,male_18_24\n",
        lambda f: replaced(CENSUS, "per_state: 2", f"per_state: 2\n    controls: {f}"),
        ["missing column(s) count"],
    ),
    (
        "controls-latin1",
        "controls.csv",
        (CONTROLS_HEADER + "VT,B01001,sex_age,caf\xe9,5\n").encode("latin-1"),
        lambda f: replaced(CENSUS, "per_state: 2", f"per_state: 2\n    controls: {f}"),
        ["not a UTF-8 CSV table"],
    ),
    (
        "controls-miss-a-state",
        "controls.csv",
        "VT_ONLY",
        lambda f: replaced(CENSUS, "per_state: 2", f"per_state: 2\n    controls: {f}"),
        ["{line:controls}", "has no rows for state(s) WY"],
    ),
    (
        "controls-short-row",
        "controls.csv",
        CONTROLS_HEADER + "VT,B01001,sex_age,male|18-29\n",
        lambda f: replaced(CENSUS, "per_state: 2", f"per_state: 2\n    controls: {f}"),
        ["controls.csv:2: fewer values than the header's 5 columns"],
    ),
    (
        "truth-missing",
        None,
        None,
        lambda f: replaced(CENSUS, "    question: vote2024", f"    question: vote2024\n    truth: {f}"),
        ["{line:truth}", "metrics.election.truth", "cannot read it"],
    ),
    (
        "truth-no-overlap",
        "truth.csv",
        "state,dem_votes,rep_votes,electoral_votes\nCA,10,5,54\n",
        lambda f: replaced(CENSUS, "    question: vote2024", f"    question: vote2024\n    truth: {f}"),
        ["metrics.election.truth", "no state in common"],
    ),
    (
        "truth-negative-votes",
        "truth.csv",
        "state,dem_votes,rep_votes,electoral_votes\nVT,-10,5,3\n",
        lambda f: replaced(CENSUS, "    question: vote2024", f"    question: vote2024\n    truth: {f}"),
        ["truth.csv:2: state VT: dem_votes", "not a number >= 0"],
    ),
    (
        "truth-not-csv",
        "truth.csv",
        bytes(range(256)) * 4,
        lambda f: replaced(CENSUS, "    question: vote2024", f"    question: vote2024\n    truth: {f}"),
        ["metrics.election.truth", "truth.csv"],
    ),
]


def check(result, code: int, fragments: list[str], text: str = "") -> None:
    output = " ".join(result.output.split())
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        if fragment.startswith("{line:"):
            fragment = f"scenario.yaml:{line_of(text, fragment[6:-1])}"
        assert fragment in output, result.output


@pytest.mark.parametrize("text,fragments", [pytest.param(t, f, id=i) for i, t, f in SCENARIOS])
def test_a_malformed_scenario_is_named_where_it_is_wrong(invoke, tmp_path, text, fragments):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    check(invoke("validate", str(path)), 2, fragments, text)


@pytest.mark.parametrize("name,content,scenario,fragments", [pytest.param(*case[1:], id=case[0]) for case in FILES])
def test_a_bad_data_file_is_named_before_the_run(invoke, tmp_path, name, content, scenario, fragments):
    file = tmp_path / (name or "absent.csv")
    if (
        content == "VT_ONLY"
    ):  # the shipped controls, Vermont's rows only: a valid file that lacks a state the scenario samples
        shipped = (Path(data.__file__).parent / "acs2018_adult_controls.csv").read_text().splitlines()
        content = "\n".join([shipped[0], *(row for row in shipped[1:] if row.startswith("VT,"))]) + "\n"
    if content is not None:
        file.write_bytes(content if isinstance(content, bytes) else content.encode())
    text = scenario(file)
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    check(invoke("validate", str(path)), 2, fragments, text)


@pytest.mark.parametrize(
    "content,fragments",
    [
        pytest.param(b"name: caf\xe9\n", ["scenario.yaml:1", "not UTF-8 text (byte 0xe9)"], id="latin1"),
        pytest.param(b"\x7fELF\x02\x01\x01\x00\x00", ["a binary file"], id="binary"),
        pytest.param(b"# big\n" + b"x" * (1 << 20), ["larger than 1024 KiB"], id="too-big"),
    ],
)
def test_a_file_that_is_not_yaml_text_is_named(invoke, tmp_path, content, fragments):
    path = tmp_path / "scenario.yaml"
    path.write_bytes(content)
    check(invoke("validate", str(path)), 2, fragments)


@pytest.mark.parametrize(
    "target,fragments",
    [
        pytest.param("/dev/zero", ["/dev/zero: cannot read scenario: not a regular file"], id="device"),
        pytest.param("/nonexistent/scenario.yaml", ["cannot read scenario: no such file"], id="missing"),
    ],
)
def test_a_path_that_is_no_scenario_file_is_named(invoke, target, fragments):
    check(invoke("validate", target), 2, fragments)


@pytest.mark.parametrize(
    "setting,fragments",
    [
        pytest.param("seed", ["--set 'seed': expected PATH=VALUE"], id="no-equals"),
        pytest.param("seed=[1, 2", ["the value is not valid YAML"], id="bad-yaml-value"),
        pytest.param("questions.7.text=x", ["'questions.7.text' does not fit"], id="path-does-not-fit"),
        pytest.param("seed=-5", ["seed", "(set by --set seed)"], id="negative-seed"),
        pytest.param(
            "metrics.mean_share.option=Q",
            ["'Q' is not an option label", "(set by --set metrics.mean_share.option)"],
            id="bad-option",
        ),
    ],
)
def test_a_bad_override_is_named(invoke, setting, fragments):
    check(invoke("validate", str(EXAMPLE / "towns.yaml"), "--set", setting), 2, fragments)


def test_a_run_that_could_not_be_scored_asks_nothing(invoke, tmp_path):
    log = tmp_path / "calls.log"
    text = replaced(CENSUS, "    question: vote2024", "    question: vote2024\n    dem_option: C")
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    db = tmp_path / "r.db"
    check(invoke("run", str(path), "--set", f"simulator.with.call_log={log}", db=db), 2, ["'C' is not an option label"])
    assert not log.exists()
    assert (
        not db.exists()
        or sqlite3.connect(db).execute("select count(*) from sqlite_master where name = 'runs'").fetchone()[0] == 0
        or sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0] == 0
    )


# the run log and output files --------------------------------------------------------------------------------------


@pytest.fixture
def finished_db(invoke, tmp_path):
    db = tmp_path / "done.db"
    result = invoke("run", str(EXAMPLE / "towns.yaml"), "--quiet", db=db)
    assert result.exit_code == 0, result.output
    return db, result.output.strip()


def test_reading_commands_on_damaged_or_foreign_files(invoke, tmp_path, finished_db):
    db, run_id = finished_db
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 200)
    check(invoke("runs", db=garbage), 2, [f"{garbage} is not a usable simrun run log", "move it aside"])
    truncated = tmp_path / "truncated.db"
    sqlite3.connect(db).execute("pragma wal_checkpoint(truncate)")
    whole = db.read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    check(invoke("show", run_id, db=truncated), 2, [f"{truncated}"])
    check(invoke("runs", db=tmp_path), 2, ["--db", "is a directory"])


def test_unwritable_and_missing_locations(invoke, tmp_path, finished_db):
    db, run_id = finished_db
    check(
        invoke("run", str(EXAMPLE / "towns.yaml"), db=tmp_path / "no" / "such" / "r.db"),
        2,
        ["the folder", "does not exist"],
    )
    check(
        invoke("export", run_id, "-o", str(tmp_path / "no" / "out.csv"), db=db),
        2,
        ["out.csv", "No such file or directory"],
    )
    check(
        invoke("report", run_id, "-o", str(tmp_path / "no" / "r.html"), db=db),
        2,
        ["r.html", "No such file or directory"],
    )
    check(
        invoke("sample", str(EXAMPLE / "towns.yaml"), "-o", str(tmp_path / "no" / "p.csv"), db=tmp_path / "s.db"),
        2,
        ["p.csv"],
    )
    check(invoke("run", "--resume", "nope", db=db), 2, ["no run 'nope'"])
    check(invoke("run", "--resume", run_id, db=db), 2, ["has already finished"])
    check(invoke("compare", "nope", db=db), 2, ["no sweep 'nope'"])


def test_a_read_only_folder_is_named(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="simrun-ro-"))
    (folder / "locked").mkdir()
    folder.chmod(0o755)
    (folder / "locked").chmod(0o555)
    command = [
        sys.executable,
        "-m",
        "simrun",
        "run",
        str(EXAMPLE / "towns.yaml"),
        "--db",
        str(folder / "locked" / "r.db"),
        "--plugins-dir",
        str(EXAMPLE),
    ]
    if os.geteuid() == 0:  # root ignores permissions: run as nobody, whom chmod binds
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    finally:
        shutil.rmtree(folder)
    assert result.returncode == 2, result.stderr
    assert "is read-only" in result.stderr and "Traceback" not in result.stderr, result.stderr


# untrusted text ---------------------------------------------------------------------------------------------------


def test_brackets_in_names_paths_and_labels_are_text_everywhere(invoke, tmp_path):
    folder = tmp_path / "runs [2024]"
    folder.mkdir()
    text = replaced(
        replaced(TOWNS, "name: towns", "name: 'survey [/2024] [bold]x[/bold]'"),
        "options: [Yes, No]",
        "options: ['[red]Yes', 'No [/]']",
    )
    path = folder / "scen[a]rio.yaml"
    path.write_text(text)
    db = folder / "log [1].db"
    result = invoke("run", str(path), db=db)
    assert result.exit_code == 0, result.output
    assert "survey [/2024] [bold]x[/bold]" in result.output
    listed = invoke("runs", db=db)
    run_id = json.loads(invoke("runs", "--json", db=db).output)[0]["id"]
    assert listed.exit_code == 0 and "[/2024]" in listed.output and run_id in listed.output  # the id is never cut
    shown = invoke("show", run_id, db=db)
    assert shown.exit_code == 0 and "survey [/2024] [bold]x[/bold]" in shown.output
    assert invoke("validate", str(path), db=db).exit_code == 0
    assert invoke("export", run_id, "-o", str(folder / "out [x].csv"), db=db).exit_code == 0
    assert invoke("report", run_id, "-o", str(folder / "r [x].html"), db=db).exit_code == 0
    missing = invoke("show", "[bold]nope[/]", db=db)
    assert missing.exit_code == 2 and "no run '[bold]nope[/]'" in missing.output
    assert invoke("sample", str(path), "-o", str(folder / "p [1].csv"), db=db).exit_code == 0
    swept = invoke(
        "sweep", str(path), "--quiet", "--set", "ablation={use: grid, with: {fields: {seed: [1, 2]}}}", db=db
    )
    assert swept.exit_code == 0, swept.output
    compared = invoke("compare", swept.output.strip(), "--reps", "20", db=db)
    assert compared.exit_code == 0 and "seed=1" in compared.output
    bad = invoke("validate", str(path), "--set", "metrics.mean_share.option='[red]Q'", db=db)
    assert bad.exit_code == 2 and "'[red]Q' is not an option label" in " ".join(bad.output.split())


def test_a_database_of_something_else_is_refused_and_left_untouched(invoke, tmp_path):
    other = tmp_path / "notes.db"
    with sqlite3.connect(other) as connection:
        connection.execute("create table notes (text)")
    before = other.read_bytes()
    check(
        invoke("runs", db=other), 2, ["is an SQLite database of something else (tables notes)", "not a simrun run log"]
    )
    check(invoke("run", str(EXAMPLE / "towns.yaml"), db=other), 2, ["not a simrun run log"])
    assert other.read_bytes() == before


def test_yaml_anchors_and_merge_keys_still_work(invoke, tmp_path):
    text = replaced(TOWNS, "    options: [Yes, No, Not sure]", "    options: &answers [Yes, No, Not sure]")
    text = replaced(text, "    options: [Yes, No]", "    options: *answers")
    text = replaced(text, "  with:\n    per_town: 12", "  with:\n    <<: {per_town: 3}")
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output


def test_take_over_resumes_a_run_whose_owner_on_another_host_looks_alive(invoke, tmp_path):
    db, flag = tmp_path / "t.db", tmp_path / "armed"
    flag.touch()
    command = [
        sys.executable,
        "-m",
        "simrun",
        "run",
        str(EXAMPLE / "towns.yaml"),
        "--db",
        str(db),
        "--quiet",
        "--plugins-dir",
        str(EXAMPLE),
        "--set",
        "simulator.with.kill_at_call=2",
        "--set",
        f"simulator.with.kill_flag={flag}",
    ]
    assert subprocess.run(command, capture_output=True, text=True).returncode == -9
    with sqlite3.connect(db) as connection:
        run_id = connection.execute("select id from runs").fetchone()[0]
        connection.execute("update runs set owner = ?", [json.dumps({"host": "elsewhere", "pid": 1, "started": None})])
    refused = invoke("run", "--resume", run_id, db=db)
    assert refused.exit_code == 2 and "resume with --take-over" in " ".join(refused.output.split())
    taken = invoke("run", "--resume", run_id, "--take-over", "--quiet", db=db)
    assert taken.exit_code == 0, taken.output
