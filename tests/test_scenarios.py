"""Every scenario shipped in scenarios/ validates (components, configs, enricher plans)."""

import pytest
from conftest import ROOT

SHARED_OPINIONQA = ROOT.parent / "shared" / "data" / "opinionqa"


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenario_validates(path, invoke):
    extra = ["--set", f"metrics.opinion.path={SHARED_OPINIONQA}"] if path.name == "opinionqa.yaml" else []
    result = invoke("validate", str(path), *extra)
    assert result.exit_code == 0, result.output


def test_opinionqa_scenario_brings_the_scorable_disagreement_questions(registry):
    from simrun.scenario import load_scenario

    loaded = load_scenario(
        ROOT / "scenarios" / "opinionqa.yaml", registry, [f"metrics.opinion.path={SHARED_OPINIONQA}"]
    )
    assert len(loaded.scenario.questions) == 113
