"""A simulator's cache identity is its whole config by default: changing any option never serves a stale answer."""

import json

import pytest
from conftest import EXAMPLE
from pydantic import Field

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
    assert rows and all(r["cached"] and json.loads(r["distribution"])["A"] == pytest.approx(0.1) for r in rows)


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
