"""Scenario files: YAML in, a validated ``Scenario`` out, or errors with file:line.

Every error names the file, the line, the field path, what was given and what
was expected, and for a misspelled plugin the nearest installed name.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from .components import CheckContext, Problem
from .instruments import InstrumentError, comma_separated, read_instrument
from .models import Question
from .overrides import apply_overrides, set_path
from .registry import Registry, UnknownComponent
from .scenario_models import (
    AblationSpec,
    ComponentSpec,
    LoadedScenario,
    QuestionFile,
    Scenario,
    ScenarioError,
    ScenarioIssue,
)
from .yaml_input import (
    MAX_SCENARIO_BYTES,
    MAX_YAML_DEPTH,
    PathKey,
    ScenarioLoader,
    check_yaml_size,
    line_index,
    load_yaml,
)

__all__ = [  # the models live in scenario_models; loading them is here, and both are imported from here
    "AblationSpec",
    "ComponentSpec",
    "LoadedScenario",
    "QuestionFile",
    "Scenario",
    "ScenarioError",
    "ScenarioIssue",
    "apply_overrides",
    "load_scenario",
    "parse_scenario",
    "scenario_schema",
    "set_path",
    "validate_data",
]


def expand_question_files(data: dict, lines: dict[PathKey, int], overridden: list[str]) -> tuple[list, list[str]]:
    """Replace each ``{from: FILE}`` in ``questions`` by the file's questions, so the run log keeps the questions
    themselves (a resumed run never reads the file again). Returns (issues, notices)."""
    items = data.get("questions")
    if isinstance(items, dict) and "from" in items:
        items = [items]
    if not isinstance(items, list) or not any(isinstance(i, dict) and "from" in i for i in items):
        return [], []
    expanded: list = []
    issues: list[ScenarioIssue] = []
    notices: list[str] = []
    for index, item in enumerate(items):
        if not (isinstance(item, dict) and "from" in item):
            expanded.append(item)
            continue
        loc: PathKey = ("questions", index) if isinstance(data["questions"], list) else ("questions",)
        try:
            spec = QuestionFile.model_validate(item)
        except ValidationError as exc:
            issues.extend(_pydantic_issues(exc, loc, QuestionFile, lines, overridden))
            continue
        try:
            instrument = read_instrument(spec.from_, spec.format)
        except InstrumentError as exc:
            issues.append(_issue_for(loc + ("from",), str(exc), lines, overridden))
            continue
        questions = instrument.questions
        if spec.only is not None:
            by_id = {q.id: q for q in questions}
            unknown = [i for i in spec.only if i not in by_id]
            if unknown:
                hint = difflib.get_close_matches(unknown[0], list(by_id), n=1)
                issues.append(
                    _issue_for(
                        loc + ("only",),
                        f"{spec.from_} has no question {unknown}" + (f"; did you mean '{hint[0]}'?" if hint else ""),
                        lines,
                        overridden,
                    )
                )
                continue
            questions = [by_id[i] for i in spec.only]
        expanded.extend(q.model_dump(exclude_none=True) for q in questions)
        if instrument.skipped:
            notices.append(
                f"{spec.from_}: {len(questions)} question(s) taken, {len(instrument.skipped)} skipped as not askable; "
                f"`simrun questions {spec.from_}` lists them and why"
            )
    data["questions"] = expanded
    return issues, notices


def _issue_for(loc: PathKey, message: str, lines: dict[PathKey, int], overridden: list[str]) -> ScenarioIssue:
    dotted = ".".join(str(p) for p in loc)
    if any(dotted == o or dotted.startswith(o + ".") for o in overridden):
        return ScenarioIssue(loc, message + f" (set by --set {dotted})")
    inside = [o for o in overridden if o.startswith(dotted + ".")]
    if inside:  # a --set of something inside the field made or changed it: the file's line, if any, and the --set
        return ScenarioIssue(loc, message + f" (set by --set {inside[0]})", lines.get(loc))
    probe = loc
    while probe and probe not in lines:
        probe = probe[:-1]
    return ScenarioIssue(loc, message, lines.get(probe))


def _describe(error: dict) -> str:
    given = error.get("input")
    msg = error["msg"]
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "extra_forbidden":
        return f"unknown field (given {given!r})"
    if isinstance(given, (dict, list)):
        return msg
    return f"{msg} (given {given!r})"


def _pydantic_issues(
    exc: ValidationError, prefix: PathKey, model: type[BaseModel], lines: dict, overridden: list[str]
) -> list[ScenarioIssue]:
    issues = []
    for loc, errors in _by_field(exc, model).items():
        error = errors[0]
        message = _describe(error)
        if len(errors) > 1:  # one per member of a union (``int | 'auto'``): what each would have taken
            wanted = [errors[0]["msg"], *(e["msg"].removeprefix("Input should be ") for e in errors[1:])]
            message = f"{' or '.join(wanted)} (given {error.get('input')!r})"
        if error["type"] == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            if parent is not None:
                fields = list(parent.model_fields) + [f.alias for f in parent.model_fields.values() if f.alias]
                close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.5)
                if close:
                    message += f"; did you mean '{close[0]}'?"
                message += f" Known fields: {', '.join(sorted(set(fields)))}" if fields else " It takes no options."
        if (prefix + loc)[:1] == ("questions",) and loc[-1:] == ("options",) and comma_separated(error.get("input")):
            message += "; options are a YAML list, e.g. options: [Yes, No, Maybe] (a text with commas is one option)"
        issues.append(_issue_for(prefix + loc, message, lines, overridden))
    return issues


def _by_field(exc: ValidationError, model: type[BaseModel]) -> dict[PathKey, list[dict]]:
    """Pydantic's errors by the path of the field they are about: a union's member names
    (``replicas.constrained-int``) and validator wrappers (``function-after[...]``) are left out."""
    grouped: dict[PathKey, list[dict]] = {}
    for error in exc.errors():
        kept: list[Any] = []
        current: Any = model
        in_union = False
        for part in error["loc"]:
            if isinstance(part, str) and part.startswith("function-"):
                continue
            fields = current.model_fields if isinstance(current, type) and issubclass(current, BaseModel) else {}
            field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
            if field is None and in_union and isinstance(part, str):
                in_union = False  # the member pydantic tried: not a field
                continue
            kept.append(part)
            if field is None:  # a list index or a dict key: the items' model, if any, stays current
                in_union = False
                continue
            args = [a for a in getattr(field.annotation, "__args__", ()) if a is not type(None)]
            in_union = get_origin(field.annotation) in (Union, UnionType) and len(args) > 1
            current = next((a for a in [field.annotation, *args] if _is_model(a)), None)
        grouped.setdefault(tuple(kept), []).append(error)
    return grouped


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_at(model: type[BaseModel], loc: PathKey) -> type[BaseModel] | None:
    """The pydantic model that holds the field at ``loc``, if one can be found."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        current = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def load_scenario(path: str | Path, registry: Registry, overrides: list[str] | None = None) -> LoadedScenario:
    source = str(path)
    file = Path(path)
    try:
        if not file.is_file():
            problem = "no such file" if not file.exists() else "not a regular file (a folder, device or pipe)"
            raise ScenarioError(source, [ScenarioIssue((), f"cannot read scenario: {problem}")])
        with file.open("rb") as f:
            raw = f.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(source, [ScenarioIssue((), f"cannot read scenario: {exc.strerror}")]) from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            source, [ScenarioIssue((), f"larger than {MAX_SCENARIO_BYTES >> 10} KiB: not a scenario file")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(
            source, [ScenarioIssue((), f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", line)]
        ) from None
    if "\x00" in text:
        raise ScenarioError(
            source, [ScenarioIssue((), "a binary file, not YAML text", text[: text.index("\x00")].count("\n") + 1)]
        )
    return parse_scenario(text, source, registry, overrides)


def parse_scenario(text: str, source: str, registry: Registry, overrides: list[str] | None = None) -> LoadedScenario:
    try:
        node = yaml.compose(text, Loader=ScenarioLoader)
        check_yaml_size(node)
        data = load_yaml(text)
    except RecursionError:
        raise ScenarioError(
            source, [ScenarioIssue((), f"YAML nested too deeply (more than {MAX_YAML_DEPTH} levels)")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
        raise ScenarioError(source, [ScenarioIssue((), message, mark.line + 1 if mark else None)]) from None
    if not isinstance(data, dict):
        raise ScenarioError(
            source, [ScenarioIssue((), "expected a mapping of fields (name, sampler, simulator, questions, ...)", 1)]
        )
    lines = line_index(node) if node is not None else {}
    overridden = apply_overrides(data, overrides or [], source)
    return validate_data(data, text, source, registry, lines, overridden)


def validate_data(
    data: dict,
    text: str,
    source: str,
    registry: Registry,
    lines: dict[PathKey, int] | None = None,
    overridden: list[str] | None = None,
) -> LoadedScenario:
    lines, overridden = lines or {}, overridden or []
    file_issues, notices = expand_question_files(data, lines, overridden)
    if file_issues:
        raise ScenarioError(source, file_issues)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, _pydantic_issues(exc, (), Scenario, lines, overridden)) from None

    issues: list[ScenarioIssue] = []
    components: list[tuple[str, PathKey, ComponentSpec]] = [
        ("sampler", ("sampler",), scenario.sampler),
        ("simulator", ("simulator",), scenario.simulator),
        ("executor", ("executor",), scenario.executor),
        *(("enricher", ("enrichers", i), spec) for i, spec in enumerate(scenario.enrichers)),
        *(("metric", ("metrics", name), spec) for name, spec in scenario.metric_specs()),
    ]
    if scenario.ablation is not None:
        components.append(("ablation", ("ablation",), scenario.ablation))
    configured: list[tuple[type, PathKey, BaseModel]] = []
    for kind, loc, spec in components:
        try:
            info = registry.get(kind, spec.use)
        except UnknownComponent as exc:
            use_loc = loc + ("use",) if kind != "metric" or ("use" in (data["metrics"][loc[1]] or {})) else loc
            issues.append(_issue_for(use_loc, str(exc), lines, overridden))
            continue
        config_loc = loc if kind == "metric" else loc + ("with",)
        try:
            config = info.cls.Config.model_validate(spec.with_)
        except ValidationError as exc:
            issues.extend(_pydantic_issues(exc, config_loc, info.cls.Config, lines, overridden))
            continue
        configured.append((info.cls, config_loc, config))
        if kind == "metric":
            issues.extend(_add_questions(scenario, info.cls(config).questions(), config_loc, lines, overridden))
    if not issues and not scenario.questions:
        issues.append(
            _issue_for(
                ("questions",),
                "no questions: list them under questions:, or use a metric that brings its own (e.g. opinion)",
                lines,
                overridden,
            )
        )
    if not issues:
        issues.extend(_component_problems(scenario, configured, lines, overridden, registry))
    if issues:
        raise ScenarioError(source, issues)
    return LoadedScenario(scenario=scenario, data=data, text=text, source=source, notices=notices)


def _component_problems(
    scenario: Scenario,
    configured: list[tuple[type, PathKey, BaseModel]],
    lines: dict,
    overridden: list[str],
    registry: Registry,
) -> list[ScenarioIssue]:
    """Every component's own ``check`` against the whole scenario, each problem placed at its field's line."""
    sampler_cls, sampler_loc, sampler_config = configured[0]
    issues = []
    try:
        strata = sampler_cls.planned_strata(sampler_config)
    except Exception as exc:  # noqa: BLE001 - a plugin's planning fails on its config: say whose, and where
        issues.append(_issue_for(sampler_loc, _failed(sampler_cls, "planned_strata", exc), lines, overridden))
        strata = None
    context = CheckContext(scenario=scenario, strata=strata, registry=registry)
    for cls, loc, config in configured:
        try:
            problems = cls.check(config, context)
        except ValueError as exc:  # a file the check reads is bad; its message names file and line
            problems = [Problem("", str(exc))]
        except Exception as exc:  # noqa: BLE001 - a check that breaks is the plugin's problem, named as such
            problems = [Problem("", _failed(cls, "check", exc))]
        for problem in problems:
            field = tuple(int(p) if p.isdigit() else p for p in problem.field.split(".")) if problem.field else ()
            issues.append(_issue_for(loc + field, problem.message, lines, overridden))
    return issues


def _failed(cls: type, method: str, exc: Exception) -> str:
    """What a component's own method raised, said with the component's name, kind and method."""
    return f"{cls.kind} '{cls.name}' failed in {method}(): {type(exc).__name__}: {exc}"


def _add_questions(
    scenario: Scenario, extra: list[Question], loc: PathKey, lines: dict, overridden: list[str]
) -> list[ScenarioIssue]:
    """Append a metric's questions; the same id twice must be the same question."""
    known = {q.id: q for q in scenario.questions}
    issues = []
    for question in extra:
        if question.id not in known:
            scenario.questions.append(question)
            known[question.id] = question
        elif known[question.id] != question:
            issues.append(
                _issue_for(
                    loc,
                    f"brings question '{question.id}', which the scenario already has with other text or options",
                    lines,
                    overridden,
                )
            )
    return issues


def scenario_schema(registry: Registry) -> dict:
    """JSON Schema for scenario files, with every installed component's Config."""
    schema = Scenario.model_json_schema()
    defs = schema.setdefault("$defs", {})
    for kind in ("sampler", "simulator", "executor", "enricher", "ablation"):
        variants = []
        for name, info in sorted(registry.components[kind].items()):
            ref = f"{kind}_{name}_config"
            defs[ref] = info.cls.Config.model_json_schema()
            properties = {"use": {"const": name}, "with": {"$ref": f"#/$defs/{ref}"}}
            if kind == "ablation":
                properties["replicates"] = AblationSpec.model_json_schema()["properties"]["replicates"]
            variants.append(
                {
                    "type": "object",
                    "properties": properties,
                    "required": ["use"],
                    "additionalProperties": False,
                    "description": (info.cls.__doc__ or "").strip(),
                }
            )
        kind_schema = {"anyOf": variants} if variants else {"$ref": "#/$defs/ComponentSpec"}
        if kind == "enricher":
            schema["properties"]["enrichers"] = {"type": "array", "items": kind_schema}
        elif kind == "ablation":
            schema["properties"]["ablation"] = {"anyOf": [kind_schema, {"type": "null"}]}
        else:
            schema["properties"][kind] = kind_schema
    metric_props = {}
    for name, info in sorted(registry.components["metric"].items()):
        metric_props[name] = {"anyOf": [info.cls.Config.model_json_schema(), {"type": "null"}]}
    schema["properties"]["metrics"] = {
        "type": "object",
        "properties": metric_props,
        "additionalProperties": {"type": ["object", "null"]},
    }
    return schema
