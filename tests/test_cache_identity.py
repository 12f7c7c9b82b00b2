"""A simulator's cache identity is its whole config by default: changing any option never serves a stale answer."""

import importlib.metadata
import json

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE
from pydantic import Field

from simrun.cli import cli
from simrun.components import Simulator, StrictConfig
from simrun.models import ModelAnswer
from simrun.registry import PluginError, load_registry
from simrun.store import Store


class Tuned(Simulator):
    """A third-party simulator with options, one of which never changes an answer."""

    name = "tuned"
    non_semantic = frozenset({"concurrency"})

    class Config(StrictConfig):
        bias: float = 0.5
        style: str = "plain"
        stop: list[str] = Field(default_factory=list)
        options: dict[str, float] = Field(default_factory=dict)
        concurrency: int = 4

    @property
    def model(self):
        return "tuned-1"

    def answer(self, prompts):
        return [
            ModelAnswer(distribution={"A": self.config.bias, "B": 1 - self.config.bias}, invalid=0.0) for _ in prompts
        ]


@pytest.mark.parametrize(
    "field,value", [("bias", 0.9), ("style", "terse"), ("stop", ["\n"]), ("options", {"top_p": 0.5})]
)
def test_changing_any_semantic_field_changes_the_identity(field, value):
    base = Tuned().identity()
    assert Tuned(Tuned.Config(**{field: value})).identity() != base
    assert base["simulator"] == "tuned" and base["model"] == "tuned-1"


def test_a_non_semantic_field_keeps_the_identity():
    assert Tuned(Tuned.Config(concurrency=64)).identity() == Tuned().identity()


def test_the_same_scenario_with_another_option_asks_again(invoke, tmp_path):
    """The issue's case: instant with first_option_bias 0.9, then 0.1, on one database."""
    db = tmp_path / "c.db"
    shares = []
    for bias in ("0.9", "0.1"):
        result = invoke(
            "run", str(EXAMPLE / "towns.yaml"), "--quiet", "--set", f"simulator.with.first_option_bias={bias}", db=db
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(invoke("show", result.output.strip(), "--json", db=db).output)
        shares.append(summary["metrics"]["mean_share.share"])
    assert shares == [pytest.approx(0.9), pytest.approx(0.1)]
    again = invoke(
        "run",
        str(EXAMPLE / "towns.yaml"),
        "--quiet",
        "--set",
        "simulator.with.first_option_bias=0.1",
        "--set",
        "simulator.with.delay_s=0.0001",
        db=db,
    )  # a non-semantic change: served from the cache
    rows = list(Store(db, read_only=True).answers.rows(again.output.strip(), prompts=True))
    assert rows and all(r["cached"] and r["distribution"]["A"] == pytest.approx(0.1) for r in rows)


def test_non_semantic_must_name_config_fields(tmp_path):
    plugin = tmp_path / "bad.py"
    plugin.write_text(
        "from simrun import hookimpl\nfrom simrun.components import Simulator\n"
        "class Bad(Simulator):\n    name = 'bad'\n    non_semantic = frozenset({'timeout'})\n"
        "@hookimpl\ndef register_simulators(register):\n    register(Bad)\n"
    )
    with pytest.raises(PluginError, match="Bad.non_semantic names no Config field: timeout"):
        load_registry(tmp_path)


@pytest.mark.parametrize(
    "value",
    [
        {"B": 0.25, "A": 0.75},
        "plain ünïcode \u2028 text",
        [1, 2.5, None, True, float("nan"), float("inf"), -0.0],
        {"z": [{"b": 1, "a": {"d": (1, 2)}}], "a": "x", "m": {}},
        {1: "int key", 2: "another"},
        {"when": __import__("datetime").date(2026, 12, 2)},  # not JSON: default=str
    ],
)
def test_the_reused_encoder_writes_what_json_dumps_writes(value):
    from simrun.store import dumps

    assert dumps(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def test_where_the_code_came_from_is_part_of_the_cache_identity():
    import pluggy

    from simrun.plugin_source import _editable, plugin_source
    from simrun.plugins.simulators.embedded import EmbeddedSimulator

    assert plugin_source(EmbeddedSimulator) == {}  # simrun's own: an upgrade keeps the cache paid for
    assert plugin_source(pluggy.PluginManager) == {"code": f"pluggy {importlib.metadata.version('pluggy')}"}
    assert not _editable(importlib.metadata.distribution("pluggy"))
    here = plugin_source(Tuned)["code"]  # a class of a file no distribution installed: its name and source hash
    assert here.startswith("test_cache_identity.py sha256:") and Tuned().cache_identity()["code"] == here


def test_an_editable_install_is_told_from_a_released_one(tmp_path):
    from simrun.plugin_source import _editable

    info = tmp_path / "rules-1.0.dist-info"
    info.mkdir()
    (info / "direct_url.json").write_text('{"url": "file:///src/rules", "dir_info": {"editable": true}}')
    assert _editable(importlib.metadata.PathDistribution(info))
    (info / "direct_url.json").write_text("not json")
    assert not _editable(importlib.metadata.PathDistribution(info))


def test_an_edited_plugins_dir_file_asks_again_and_an_unedited_one_is_served(tmp_path):
    plugins = tmp_path / "my [plugins]"
    plugins.mkdir()
    source = (EXAMPLE / "simrun_example.py").read_text()
    (plugins / "simrun_example.py").write_text(source)
    db = tmp_path / "c.db"

    def cached() -> list[bool]:
        args = ["run", str(EXAMPLE / "towns.yaml"), "--quiet", "--db", str(db), "--plugins-dir", str(plugins)]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return [r["cached"] for r in Store(db, read_only=True).answers.rows(result.output.strip())]

    assert not any(cached())
    assert all(cached())
    (plugins / "simrun_example.py").write_text(source + "\n# the rules changed\n")
    assert not any(cached())
