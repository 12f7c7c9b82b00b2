"""``import simrun`` is the whole plugin API: every plugin, built-in ones included, imports from it and nothing else in
simrun. And every module stays small enough to read whole.
"""

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, ROOT

import simrun
from simrun.cli import cli

PLUGINS, CORE = ROOT / "plugins", ROOT / "core"


def simrun_imports(path: Path) -> list[str]:
    """Every module a file imports that is simrun or under it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "simrun":
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "simrun"]
    return found


def test_plugins_import_only_the_public_namespace():
    offenders = {
        str(p.relative_to(PLUGINS)): [m for m in simrun_imports(p) if m != "simrun"] for p in PLUGINS.rglob("*.py")
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_every_public_name_exists_and_is_listed_once():
    assert len(simrun.__all__) == len(set(simrun.__all__))
    assert [name for name in simrun.__all__ if not hasattr(simrun, name)] == []


SAMPLER = """
from simrun import Persona, Sampler, hookimpl


class DeclaredTowns(Sampler):
    name = "declared_towns"
    provides = {provides}

    def total(self):
        return 1

    def sample(self, rng, batch_size):
        persona = Persona(id=0, stratum="Ashford", weight=1.0)
        persona.set("town", "Ashford", "test")
        persona.set("age", 40, "test")
        yield [persona]


@hookimpl
def register_samplers(register):
    register(DeclaredTowns)
"""


def validate_with(tmp_path, provides: str):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "simrun_example.py").write_text((EXAMPLE / "simrun_example.py").read_text())
    (plugins / "declared.py").write_text(SAMPLER.format(provides=provides))
    args = [
        "validate",
        str(EXAMPLE / "towns.yaml"),
        "--set",
        "sampler={use: declared_towns}",
        "--plugins-dir",
        str(plugins),
    ]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_a_sampler_may_declare_provides_as_a_set_like_an_enricher(tmp_path):
    result = validate_with(tmp_path, 'frozenset({"town", "age"})')
    assert result.exit_code == 0, result.output


def test_provides_of_another_type_is_refused_with_the_component_named(tmp_path):
    result = validate_with(tmp_path, '"age"')
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sampler 'declared_towns': provides must be a set of attribute names" in " ".join(result.output.split())


MOST_LINES, MOST_CLASS_LINES = 420, 250  # a module a newcomer reads in one sitting; a class that does one thing


def test_no_module_or_class_outgrows_its_room():
    """Each module of simrun and its built-ins stays small enough to read whole (docs/architecture.md says which
    does what): a module that outgrows this is split by what it does."""
    too_long = {}
    for path in sorted([*CORE.rglob("*.py"), *PLUGINS.rglob("*.py")]):
        text = path.read_text()
        classes = [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.ClassDef)]
        if len(text.splitlines()) > MOST_LINES:
            too_long[str(path.relative_to(ROOT))] = len(text.splitlines())
        for node in classes:
            if node.end_lineno - node.lineno + 1 > MOST_CLASS_LINES:
                too_long[f"{path.relative_to(ROOT)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert too_long == {}


def test_a_metric_value_is_made_as_the_docs_write_it_by_keyword_or_in_order():
    assert simrun.MetricValue("share", 0.5, "CA") == simrun.MetricValue(name="share", value=0.5, stratum="CA")
    assert simrun.MetricValue("share", 0.5).stratum == ""
    per_question = simrun.MetricValue("tvd", 0.1, "", "Q1")
    assert per_question.question == "Q1" and per_question.label == "tvd[Q1]"
    with pytest.raises(TypeError, match="name, value, stratum and question"):
        simrun.MetricValue("share", 0.5, "CA", "Q1", "extra")


def test_a_trusted_persona_is_the_persona_model_construct_makes_and_its_shared_provenance_copies_on_set():
    import copy
    import pickle

    from simrun import Persona, SharedProvenance

    shared = SharedProvenance({"age": "census:B01001", "sex": "census:B01001"})
    one, two = (Persona.trusted(i, "CA", 2.5, {"age": 30, "sex": "female"}, shared) for i in (1, 2))
    built = Persona.model_construct(
        id=1, stratum="CA", weight=2.5, attributes={"age": 30, "sex": "female"}, provenance=dict(shared)
    )
    assert one == built and one.model_dump() == built.model_dump() and one.model_fields_set == built.model_fields_set
    assert one.model_dump_json() == built.model_dump_json()
    assert pickle.loads(pickle.dumps(one)) == one and copy.deepcopy(one) == one
    with pytest.raises(TypeError, match=r"shared by many personas: change it with persona.set"):
        one.provenance["age"] = "mine"
    one.set("party", "democrat", "survey:GSS")
    assert one.provenance == {**shared, "party": "survey:GSS"} and type(one.provenance) is dict
    assert two.provenance is shared and "party" not in shared  # the others keep the shared one, unchanged
    assert Persona.model_validate(two.model_dump()) == two
