"""Coverage: the metric's figures; design: coverage reaches rare cells, and its weights keep estimates unbiased."""

import json

import numpy as np
import pytest
from conftest import PersonasView

from simrun import Persona, coverage_of, draw_by_design, kish_effective_size
from simrun.plugins.metrics.coverage import CoverageMetric
from simrun.plugins.samplers.census import CensusSampler
from simrun.plugins.samplers.library import LibrarySampler

# A hand-made population: 30 cells whose people fall off geometrically (the rarest holds 0.002% of them), several
# rows per cell, and a value per row whose mean differs by cell.
CELLS = 30
ROWS_PER_CELL = 4
PEOPLE = np.repeat(0.7 ** np.arange(CELLS), ROWS_PER_CELL) * np.tile([1.0, 2.0, 3.0, 4.0], CELLS)
CELL = np.repeat(np.arange(CELLS), ROWS_PER_CELL)
VALUE = CELL * 1.0 + np.tile([0.0, 1.0, 2.0, 3.0], CELLS)
TRUE_MEAN = float((PEOPLE * VALUE).sum() / PEOPLE.sum())
TRUE_RARE_SHARE = float(PEOPLE[CELL >= 20].sum() / PEOPLE.sum())


def estimates(design: str, seeds: int, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed: cells reached, the weighted mean value, the weighted share of the ten rarest cells."""
    reached, means, rare = [], [], []
    for seed in range(seeds):
        picks, share = draw_by_design(PEOPLE, CELL, n, np.random.default_rng(seed), design)
        reached.append(len(set(CELL[picks].tolist())))
        means.append((share * VALUE[picks]).sum() / share.sum())
        rare.append(share[CELL[picks] >= 20].sum() / share.sum())
    return np.array(reached), np.array(means), np.array(rare)


def test_coverage_reaches_every_cell_where_proportional_misses_the_rare_ones():
    proportional, _, _ = estimates("proportional", 200)
    coverage, _, _ = estimates("coverage", 200)
    assert (coverage == CELLS).all()  # 60 draws, 30 cells: a floor of one each
    assert proportional.max() < CELLS and proportional.mean() < 20  # the geometric tail is never all reached


@pytest.mark.parametrize("design", ["proportional", "coverage"])
def test_weighted_estimates_are_unbiased_under_either_design(design):
    _, means, rare = estimates(design, 400)
    for values, truth in ((means, TRUE_MEAN), (rare, TRUE_RARE_SHARE)):
        error = values.std(ddof=1) / np.sqrt(len(values))
        assert abs(values.mean() - truth) < 4 * error + 1e-12, (design, values.mean(), truth, error)


def test_coverage_estimates_the_rare_cells_with_far_less_spread():
    _, _, rare_proportional = estimates("proportional", 400)
    _, _, rare_coverage = estimates("coverage", 400)
    assert rare_coverage.std() < rare_proportional.std() / 3


def test_coverage_figures_on_a_small_population():
    population = {("a",): 70.0, ("b",): 25.0, ("c",): 4.0, ("d",): 1.0, ("e",): 0.0}
    personas = {("a",): 6, ("b",): 2, ("z",): 2}
    figures = coverage_of(population, personas, tail=0.05)
    assert figures["cells"] == 4  # a cell with no people is not the population's
    assert figures["cells_reached"] == 0.5
    assert figures["population_reached"] == pytest.approx(0.95)
    assert figures["tail_reached"] == 0.0  # d then c hold the rarest 5%; neither is reached
    assert figures["outside"] == pytest.approx(0.2)  # the personas in z, a cell with nobody in it
    assert figures["effective_profiles"] == pytest.approx(np.exp(-(0.6 * np.log(0.6) + 2 * 0.2 * np.log(0.2))))
    assert kish_effective_size(np.array([1.0, 1.0, 2.0])) == pytest.approx(16 / 6)


class View(PersonasView):
    def __init__(self, personas, cells=None):
        super().__init__(personas)
        self.cells = cells

    def population_cells(self, dimensions, reference=None):
        return self.cells


def llm_persona(pid: int, occupation: str) -> Persona:
    persona = Persona(id=pid, stratum="VT", weight=1.0)
    persona.set("sex", "female", "census")
    persona.set("occupation", occupation, "llm:smollm2")
    return persona


def test_llm_written_attributes_show_a_tier_that_repeats_itself():
    personas = [llm_persona(i, "teacher" if i % 3 == 0 else f"job {i}") for i in range(30)]
    values = {v.name: v.value for v in CoverageMetric(CoverageMetric.Config()).compute(View(personas, {"VT": {}}))}
    assert values["distinct[occupation]"] == 21
    assert values["top_share[occupation]"] == pytest.approx(10 / 30)
    assert "distinct[sex]" not in values  # census-given attributes are not the LLM's


def test_a_sampler_that_cannot_tell_its_population_asks_for_a_reference():
    with pytest.raises(ValueError, match="reference: {use: census"):
        CoverageMetric(CoverageMetric.Config()).compute(View([llm_persona(0, "nurse")]))


def census_personas(design: str, seed: int = 3, per_state: int = 400):
    sampler = CensusSampler(CensusSampler.Config(states=["VT"], per_state=per_state, design=design))
    personas = [p for batch in sampler.sample(np.random.default_rng(seed), 500) for p in batch]
    return sampler, personas


def test_the_census_sampler_by_design_reaches_every_populated_cell_and_keeps_the_population():
    sampler, proportional = census_personas("proportional")
    _, coverage = census_personas("coverage")
    people = sampler.population_cells(("sex_age", "race_ethnicity", "education_18plus"))["VT"]
    metric = CoverageMetric(CoverageMetric.Config())
    scores = {}
    for name, personas in (("proportional", proportional), ("coverage", coverage)):
        values = metric.compute(View(personas, {"VT": people}))
        scores[name] = {v.name: v.value for v in values if not v.stratum}
    assert scores["coverage"]["cells_reached"] == 1.0 and scores["coverage"]["tail_reached"] == 1.0
    assert scores["proportional"]["cells_reached"] < 0.8 and scores["proportional"]["tail_reached"] < 0.5
    assert scores["proportional"]["effective_sample_size"] == pytest.approx(400)
    assert 50 < scores["coverage"]["effective_sample_size"] < 400  # the price of the rare cells
    population = sampler.population("VT")
    assert sum(p.weight for p in proportional) == pytest.approx(population)
    assert sum(p.weight for p in coverage) == pytest.approx(population, rel=0.1)  # exact only in expectation


def test_a_coverage_run_shows_its_design_and_effective_sample_size(tmp_path, invoke):
    scenario = tmp_path / "coverage [v1].yaml"
    scenario.write_text(
        "name: coverage\nsampler: {use: census, with: {states: [VT, WY], per_state: 250, design: coverage}}\n"
        "simulator: {use: instant}\nquestions:\n  - {id: q1, text: 'Like it?', options: ['Yes', 'No']}\n"
        "metrics: {coverage: {}}\n"
    )
    result = invoke("run", str(scenario))
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "sampling design: coverage; Kish effective sample size" in said and "of 500 personas" in said
    run_id = json.loads(invoke("runs", "--json").output)[0]["id"]
    shown = json.loads(invoke("show", run_id, "--json").output)
    assert shown["metrics"]["coverage.cells_reached"] == 1.0
    assert set(shown["metrics_by_stratum"]) == {"VT", "WY"}
    assert 0 < shown["design"]["effective_sample_size"] < 500


def test_the_library_sampler_draws_for_coverage_too(tmp_path):
    rows = ["STATE,age,sex,race_ethnicity,education"]
    rows += ["VT,40,female,white,high school"] * 95 + ["VT,70,male,asian,graduate degree"] * 5
    path = tmp_path / "panel.csv"
    path.write_text("\n".join(rows) + "\n")
    config = dict(path=str(path), stratum="STATE", per_stratum=10, design="coverage", floor=3)
    sampler = LibrarySampler(LibrarySampler.Config(**config))
    personas = [p for batch in sampler.sample(np.random.default_rng(0), 50) for p in batch]
    rare = [p for p in personas if p.attributes["race_ethnicity"] == "asian"]
    assert len(rare) >= 3  # 5% of the rows, but a floor of 3 draws
    assert sum(p.weight for p in rare) / sum(p.weight for p in personas) < 0.15  # weights bring it back down
    with pytest.raises(ValueError, match="set per_stratum"):
        LibrarySampler.Config(**{**config, "per_stratum": None})


def test_compare_and_report_put_the_designs_coverage_side_by_side(tmp_path, invoke):
    scenario = tmp_path / "designs.yaml"
    scenario.write_text(
        "name: designs\nsampler: {use: census, with: {states: [VT], per_state: 300}}\n"
        "simulator: {use: instant}\nquestions:\n  - {id: q1, text: 'Like it?', options: ['Yes', 'No']}\n"
        "metrics: {coverage: {}}\n"
        "ablation: {use: swap, with: {field: sampler.with.design, "
        "options: {proportional: proportional, coverage: coverage}}}\n"
    )
    assert invoke("sweep", str(scenario), "--quiet").exit_code == 0
    sweep_id = json.loads(invoke("runs", "--json").output)[0]["sweep_id"]
    compared = json.loads(invoke("compare", sweep_id, "--json").output)
    reached = {v["label"]: v["metrics"]["coverage.cells_reached"]["value"] for v in compared["variants"]}
    assert reached["coverage"] == 1.0 > reached["proportional"]
    report = tmp_path / "designs.html"
    assert invoke("report", sweep_id, "-o", str(report)).exit_code == 0
    assert "coverage.tail_reached" in report.read_text()


@pytest.mark.parametrize(
    "sampler, metric, expected",
    [
        ("{use: census, with: {states: [VT]}}", "{reference: {use: cenus}}", "did you mean 'census'"),
        ("{use: census, with: {states: [VT]}}", "{reference: {with: {states: all}}}", "reference.use"),
        (
            "{use: census, with: {states: [VT]}}",
            "{reference: {use: census, with: {states: [XX]}}}",
            "sampler census: states: Value error, unknown state code",
        ),
        ("{use: census, with: {states: [VT]}}", "{reference: {use: census, with: {states: [WY]}}}", "no stratum"),
        ("{use: towns}", "{}", "the towns sampler cannot tell its population's cells"),
    ],
)
def test_a_coverage_metric_that_could_not_be_scored_is_refused_before_anything_is_asked(
    tmp_path, invoke, sampler, metric, expected
):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"name: c\nsampler: {sampler}\nsimulator: {{use: instant}}\n"
        f"questions:\n  - {{id: q1, text: 'Like it?', options: ['Yes', 'No']}}\nmetrics:\n  coverage: {metric}\n"
    )
    result = invoke("validate", str(scenario))
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and expected in said and "s.yaml:7" in said, said


def test_strata_the_population_lacks_are_counted_and_left_out_of_the_overall_figures():
    people = {("a",): 10.0, ("b",): 10.0}
    personas = [Persona(id=i, stratum=s, weight=1.0) for i, s in enumerate(["VT", "TX", "TX"])]
    values = CoverageMetric(CoverageMetric.Config()).compute(View(personas, {"VT": people}))
    overall = {v.name: v.value for v in values if not v.stratum}
    assert overall["personas"] == 1 and overall["strata_without_population"] == 1
    with pytest.raises(ValueError, match=r"no stratum of the run \(TX, VT\)"):
        CoverageMetric(CoverageMetric.Config()).compute(View(personas, {"CA": people}))


def test_a_floor_too_large_for_n_gives_each_cell_what_n_allows():
    picks, _ = draw_by_design(PEOPLE, CELL, 70, np.random.default_rng(0), "coverage", floor=3)
    assert len(set(CELL[picks].tolist())) == CELLS  # floor 2 fits 30 cells in 70 draws; 3 would not
