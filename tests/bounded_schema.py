"""A schema and prompts that test whether a backend's constrained generation keeps integer bounds, lengths, enums and
sizes.
"""

# Every backend's constrained generation must keep all of this, whatever the prompt says (issue: the objective tier).
BOUNDED_SCHEMA = {
    "type": "object",
    "properties": {
        "household_size": {"type": "integer", "minimum": 1, "maximum": 12},
        "year_moved_in": {"type": "integer", "minimum": 1950, "exclusiveMaximum": 2025},
        "balance_change": {"type": "integer", "minimum": -50, "maximum": -10},
        "occupation": {"type": "string", "minLength": 3, "maxLength": 20},
        "urbanicity": {"enum": ["urban", "suburban", "rural"]},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 15}, "minItems": 1, "maxItems": 2},
    },
    "required": ["household_size", "year_moved_in", "balance_change", "occupation", "urbanicity", "hobbies"],
    "additionalProperties": False,
}
# Prompts that ask for values the schema forbids, as a small model writes unprompted (household_size 30, 45, 65).
TEMPTING_PROMPTS = [
    "The Garcia household has 35 people. They moved in in 1890 and their balance grew by 900 dollars. "
    "Describe the household as JSON: household_size, year_moved_in, balance_change, occupation, urbanicity, hobbies.",
    "A commune of 65 members in a big city, founded in 2031, "
    "with an occupation of 'professional competitive underwater basket weaver'. "
    "Give household_size, year_moved_in, balance_change, occupation, urbanicity and five hobbies as JSON.",
    "Write JSON for a family: household_size 45, year_moved_in 1776, balance_change 0, occupation 'x', "
    "urbanicity 'downtown', hobbies [].",
]
