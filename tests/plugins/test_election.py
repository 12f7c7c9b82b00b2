import pytest

from simrun.plugins.metrics.election import ElectionMetric


class ToyRun:
    questions = {"vote": object()}

    def __init__(self, shares):
        self._shares = shares

    def shares(self, question_id):
        return self._shares

    def invalid(self, question_id):
        return {"ALL": 0.1}

    def sizes(self, question_id):
        return {"AA": 2, "BB": 1, "CC": 1, "ALL": 4}


def test_three_state_toy_by_hand(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("state,dem_votes,rep_votes,electoral_votes\nAA,60,40,10\nBB,30,70,5\nCC,45,55,3\n")
    # simulated two-party shares: AA 0.5 (A 0.4 / B 0.4), BB 0.4, CC 0.55
    shares = {
        "AA": {"A": 0.4, "B": 0.4, "C": 0.2},
        "BB": {"A": 0.4, "B": 0.6},
        "CC": {"A": 0.55, "B": 0.45},
        "ALL": {"A": 0.5, "B": 0.5},
    }
    metric = ElectionMetric(ElectionMetric.Config(question="vote", truth=str(truth), abstain_option="C"))
    v = {(m.name, m.stratum): m.value for m in metric.compute(ToyRun(shares))}
    errors = [0.5 - 0.6, 0.4 - 0.3, 0.55 - 0.45]
    assert v[("mae_points", "")] == pytest.approx(100 * (0.1 + 0.1 + 0.1) / 3)
    assert v[("bias_points", "")] == pytest.approx(100 * sum(errors) / 3)
    assert v[("rmse_points", "")] == pytest.approx(10.0)
    # calls: AA sim 0.5 is a tie, called for neither (truth D); BB R/R right; CC D/R wrong
    assert v[("states_called", "")] == 1 and v[("states_tied", "")] == 1
    assert v[("dem_electoral_votes", "")] == 3 and v[("rep_electoral_votes", "")] == 5  # AA's 10 go to neither
    assert v[("true_dem_electoral_votes", "")] == 10
    assert v[("national_dem_share", "")] == pytest.approx((0.5 * 100 + 0.4 * 100 + 0.55 * 100) / 300)
    assert v[("alignment_per_state", "")] == pytest.approx(1 - 0.1)
    # W between {0.5, 0.4, 0.55} and {0.6, 0.3, 0.45}: sorted pairs (0.4,0.3) (0.5,0.45) (0.55,0.6)
    assert v[("alignment_state_shares", "")] == pytest.approx(1 - (0.1 + 0.05 + 0.05) / 3)
    assert v[("error_points", "BB")] == pytest.approx(10.0)
    assert v[("invalid_rate", "")] == pytest.approx(0.1)
    assert v[("abstain_rate", "")] == 0.0  # no option C in the ALL shares
    # correlation of simulated {0.5, 0.4, 0.55} with real {0.6, 0.3, 0.45}: by hand, and by rank (2,1,3 vs 3,1,2)
    sim, true = [0.5, 0.4, 0.55], [0.6, 0.3, 0.45]
    ms, mt = sum(sim) / 3, sum(true) / 3
    cov = sum((a - ms) * (b - mt) for a, b in zip(sim, true))
    r = cov / (sum((a - ms) ** 2 for a in sim) * sum((b - mt) ** 2 for b in true)) ** 0.5
    assert v[("pearson_r", "")] == pytest.approx(r)
    assert v[("spearman_rho", "")] == pytest.approx(0.5)
    # chance alone at 2, 1 and 1 voters: AA E|k/2 - 0.6| = .16*.6 + .48*.1 + .36*.4; BB 2*.7*.3; CC 2*.45*.55
    assert v[("sampling_mae_points", "")] == pytest.approx(100 * (0.288 + 0.42 + 0.495) / 3)


def test_a_model_that_says_the_same_everywhere_has_no_correlation(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("state,dem_votes,rep_votes,electoral_votes\nAA,60,40,10\nBB,30,70,5\nCC,45,55,3\n")
    shares = {s: {"A": 0.8, "B": 0.2} for s in ("AA", "BB", "CC", "ALL")}
    metric = ElectionMetric(ElectionMetric.Config(question="vote", truth=str(truth)))
    v = {(m.name, m.stratum): m.value for m in metric.compute(ToyRun(shares))}
    assert v[("pearson_r", "")] != v[("pearson_r", "")] and v[("spearman_rho", "")] != v[("spearman_rho", "")]  # NaN


def test_default_truth_is_the_2024_result():
    shares = {"CA": {"A": 1.0, "B": 0.0}}
    v = {
        (m.name, m.stratum): m.value
        for m in ElectionMetric(ElectionMetric.Config(question="vote")).compute(ToyRun(shares))
    }
    assert v[("true_dem_share", "CA")] == pytest.approx(9276179 / (9276179 + 6081697))  # MEDSL 2024


def test_bad_truth_file_names_the_missing_columns(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("state,dem\nAA,1\n")
    with pytest.raises(ValueError, match="missing column"):
        ElectionMetric.Config(truth=str(bad))


def test_truth_can_be_swapped_from_the_command_line(invoke, tmp_path):
    import json

    from conftest import EXAMPLE

    from simrun import data

    other = tmp_path / "flipped.csv"
    lines = data.path("president_2024.csv").read_text().splitlines()
    header = lines[0].split(",")
    d, r = header.index("dem_votes"), header.index("rep_votes")
    flipped = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[d], cells[r] = cells[r], cells[d]
        flipped.append(",".join(cells))
    other.write_text("\n".join(flipped) + "\n")
    base = [
        "--set",
        "sampler={use: census, with: {states: [CA, WY], per_state: 3}}",
        "--set",
        "enrichers=[]",
        "--set",
        "questions=[{id: vote2024, text: 'Who?', options: [Harris, Trump]}]",
        "--set",
        "metrics={election: {}}",
        "--quiet",
    ]
    for truth in (None, other):
        extra = ["--set", f"metrics.election.truth={truth}"] if truth else []
        assert invoke("run", str(EXAMPLE / "towns.yaml"), *base, *extra).exit_code == 0
    runs = json.loads(invoke("runs", "--json").output)
    shown = [json.loads(invoke("show", r["id"], "--json").output) for r in runs]
    flipped_run, real_run = shown  # newest first
    for state in ("CA", "WY"):
        real = real_run["metrics_by_stratum"][state]["election.true_dem_share"]
        assert flipped_run["metrics_by_stratum"][state]["election.true_dem_share"] == pytest.approx(1 - real)


def test_a_state_with_no_mass_on_either_candidate_is_a_tie_not_a_republican_call(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("state,dem_votes,rep_votes,electoral_votes\nAA,60,40,10\nBB,30,70,5\n")
    shares = {"AA": {"A": 0.0, "B": 0.0, "C": 1.0}, "BB": {"A": 0.2, "B": 0.8}, "ALL": {"A": 0.1, "B": 0.4}}
    metric = ElectionMetric(ElectionMetric.Config(question="vote", truth=str(truth), abstain_option="C"))
    v = {(m.name, m.stratum): m.value for m in metric.compute(ToyRun(shares))}
    assert v[("dem_share", "AA")] == 0.5 and v[("states_tied", "")] == 1
    assert v[("rep_electoral_votes", "")] == 5 and v[("states_called", "")] == 1  # BB only
