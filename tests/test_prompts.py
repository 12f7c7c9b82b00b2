"""How personas become prompt text."""

from simrun import Persona
from simrun.prompts import PromptSpec


def persona() -> Persona:
    p = Persona(id=1, stratum="OH", weight=1.0)
    p.set("age", 40, "census:x")
    p.set("hobbies", ["fishing", "chess", "baking"], "llm:m")
    p.set("core_values", ["family"], "llm:m")
    p.set("_objective_invalid", {"reason": "x"}, "llm:m")
    return p


def test_list_attributes_read_as_prose_not_python():
    table = PromptSpec().render_persona(persona())
    assert table == "age: 40\nhobbies: fishing, chess, baking\ncore values: family"
    first = PromptSpec(style="first_person").render_persona(persona())
    assert first == "My age is 40. My hobbies are fishing, chess and baking. My core values is family."
    assert "[" not in table + first and "_objective" not in table + first
