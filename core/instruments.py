"""Survey instruments in: a Qualtrics ``.qsf`` export, Pew ATP / OpinionQA question files, a CSV question bank.

A fielded survey is the natural source of questions, and retyping it into YAML
loses options and order. Each reader returns the questions simrun can ask (one
answer from a list of options) and names every question it left out, with its
type and why, so nothing is dropped silently. A broken file is named with the
element (``.qsf``) or the line (CSV) at fault.
"""

from __future__ import annotations

import ast
import csv
import html
import io
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .models import OPTION_LABELS, Question

Format = Literal["qualtrics", "pew", "csv"]
FORMATS: tuple[str, ...] = ("qualtrics", "pew", "csv")
MAX_INSTRUMENT_BYTES = 64 * 1024 * 1024
REFUSED = "Refused"  # Pew's refusal: never offered to the model, as OpinionQA does

# Qualtrics selectors that take exactly one answer (vertical, horizontal, columns, dropdown, select box)
SINGLE_ANSWER = {"SAVR", "SAHR", "SACOL", "DL", "SB"}
QUALTRICS_TYPES = {
    "DB": "descriptive text",
    "TE": "text entry",
    "Slider": "slider",
    "RO": "rank order",
    "CS": "constant sum",
    "SBS": "side by side",
    "Timing": "timing",
    "Meta": "browser meta info",
    "FileUpload": "file upload",
    "Draw": "signature",
    "HeatMap": "heat map",
    "HL": "hot spot",
    "PGR": "pick, group and rank",
    "Captcha": "captcha",
    "DD": "drill down",
    "GAP": "gap analysis",
    "NPS": "net promoter score",
}
# Options such as these at the end of a scale have no place on it (Question.ordinal stops before them).
OFF_SCALE = re.compile(
    r"^\s*(don'?t know|do not know|not sure|unsure|no opinion|refused?\b|prefer not|rather not|"
    r"declined? to (answer|say|state|respond)|n/?a\b|not applicable|none of (the|these))",
    re.IGNORECASE,
)


class Skipped(BaseModel):
    """A question of the instrument that simrun does not ask, and why."""

    id: str
    type: str
    reason: str


class Instrument(BaseModel):
    """What a survey file gives: the questions to ask and the ones left out."""

    source: str
    format: Format
    questions: list[Question]
    skipped: list[Skipped] = []


class InstrumentError(ValueError):
    """A survey file that cannot be read; the message names the file and the element or line."""


def read_instrument(path: str | Path, format: Format | None = None) -> Instrument:
    """Read the questions of a survey file; ``format`` is guessed from the name and header when not given."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InstrumentError(f"{file}: {'no such file' if not file.exists() else 'not a regular file'}")
    if file.stat().st_size > MAX_INSTRUMENT_BYTES:
        raise InstrumentError(f"{file}: larger than {MAX_INSTRUMENT_BYTES // 2**20} MB; not a survey instrument")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InstrumentError(f"{file}: not UTF-8 text (byte {exc.start}); expected a .qsf or .csv file") from None
    format = format or _guess_format(file, text)
    if format == "qualtrics":
        questions, skipped = _read_qsf(text, str(file))
    else:
        questions, skipped = _read_csv(text, str(file), format)
    if not questions:
        listed = f" ({len(skipped)} skipped: {_kinds(skipped)})" if skipped else ""
        raise InstrumentError(f"{file}: no question simrun can ask{listed}")
    return Instrument(source=str(file), format=format, questions=questions, skipped=skipped)


def _kinds(skipped: list[Skipped]) -> str:
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s.type] = counts.get(s.type, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def _guess_format(file: Path, text: str) -> Format:
    if file.suffix.lower() == ".qsf" or text.lstrip().startswith("{"):
        return "qualtrics"
    header = {h.strip().lower() for h in next(csv.reader([text.partition("\n")[0]]), [])}
    if {"key", "question"} <= header and header & {"references", "options"}:
        return "pew"
    if {"id", "text", "options"} <= header:
        return "csv"
    raise InstrumentError(
        f"{file}:1: cannot tell the format: expected a Qualtrics .qsf (JSON), a Pew/OpinionQA question file "
        "(columns key, question, references or options, option_ordinal) or a question bank "
        f"(columns id, text, options); the header has {sorted(header)}"
    )


def plain_text(markup: str) -> str:
    """Qualtrics HTML as the words a respondent reads: tags dropped, entities decoded, spaces collapsed."""
    text = re.sub(r"<br\s*/?>|</(p|div|li)>", " ", markup, flags=re.IGNORECASE)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\s+", " ", text.replace("\xa0", " ")).strip()


def _id(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", raw.strip()) or "_"


def scale_positions(options: list[str]) -> list[float]:
    """Ordinals from the order of the options: 1, 2, ...; trailing 'Don't know', 'Refused' and alike have none."""
    end = len(options)
    while end > 0 and OFF_SCALE.match(options[end - 1]):
        end -= 1
    return [float(i + 1) for i in range(end)]


# ---- Qualtrics .qsf -------------------------------------------------------------------------------------------


def _read_qsf(text: str, source: str) -> tuple[list[Question], list[Skipped]]:
    try:
        survey = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstrumentError(f"{source}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise InstrumentError(f"{source}: JSON nested too deeply: not a Qualtrics survey export") from None
    elements = survey.get("SurveyElements") if isinstance(survey, dict) else None
    if not isinstance(elements, list):
        raise InstrumentError(f"{source}: no SurveyElements list: not a Qualtrics survey export (.qsf)")
    payloads: dict[str, dict] = {}
    order: list[str] = []
    trash: set[str] = set()
    for index, element in enumerate(elements):
        where = f"{source}: SurveyElements[{index}]"
        if not isinstance(element, dict) or "Element" not in element:
            raise InstrumentError(f"{where}: expected an object with an Element field")
        if element["Element"] == "SQ":
            payload = element.get("Payload")
            if not isinstance(payload, dict) or not isinstance(payload.get("QuestionID"), str):
                raise InstrumentError(f"{where} ({element.get('PrimaryAttribute')}): question without a QuestionID")
            if payload["QuestionID"] in payloads:
                raise InstrumentError(f"{where}: a second question {payload['QuestionID']}; each needs its own id")
            payloads[payload["QuestionID"]] = payload
        elif element["Element"] == "BL":
            for block in _blocks(element.get("Payload"), where):
                ids = [e.get("QuestionID") for e in block.get("BlockElements") or [] if isinstance(e, dict)]
                ids = [i for i in ids if isinstance(i, str)]
                (trash.update if block.get("Type") == "Trash" else order.extend)(ids)
    # Questions in the blocks' order; any no block holds (exports without a BL element) after them.
    trash -= set(order)  # a question a live block lists too is asked
    order = list(dict.fromkeys([*order, *(q for q in payloads if q not in trash and q not in order)]))
    questions: list[Question] = []
    skipped = [Skipped(id=_export_tag(payloads[q]), type="in trash", reason="deleted") for q in payloads if q in trash]
    for qid in order:
        if qid not in payloads:
            raise InstrumentError(f"{source}: a block lists {qid}, which no SurveyElements question defines")
        try:
            asked, left = _qsf_question(payloads[qid])
        except ValidationError as exc:  # well-formed but not askable: duplicate options, no text
            asked, left = [], [Skipped(id=_export_tag(payloads[qid]), type="choice", reason=_reason(exc))]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InstrumentError(f"{source}: question {qid} ({_export_tag(payloads[qid])}): {_reason(exc)}") from None
        questions.extend(asked)
        skipped.extend(left)
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise InstrumentError(f"{source}: two questions export as '{q.id}'; give them distinct export tags")
        seen.add(q.id)
    return questions, skipped


def _blocks(payload: Any, where: str) -> list[dict]:
    if isinstance(payload, dict):  # older exports key the blocks "0", "1", ...
        payload = list(payload.values())
    if not isinstance(payload, list) or not all(isinstance(b, dict) for b in payload):
        raise InstrumentError(f"{where} (Survey Blocks): expected a list of blocks")
    return payload


def _export_tag(payload: dict) -> str:
    return _id(str(payload.get("DataExportTag") or payload.get("QuestionID") or "?"))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]}"
    return str(exc)


def _ordered(items: Any, order: Any, field: str) -> list[tuple[str, str]]:
    """(key, plain text) of Choices or Answers in the given order (keys come as ints or strings); none when the
    export leaves them empty (``[]``: carried forward from another question)."""
    if items == []:
        return []
    if not isinstance(items, dict):
        raise ValueError(f"{field} is not an object")
    keys = [str(k) for k in (order if isinstance(order, list) and order else items)]
    missing = [k for k in keys if k not in items]
    if missing:
        raise ValueError(f"{field} order names {missing}, which {field} lacks")
    return [(k, plain_text(str(items[k].get("Display") or ""))) for k in keys]


def _qsf_question(payload: dict) -> tuple[list[Question], list[Skipped]]:
    tag, kind = _export_tag(payload), str(payload.get("QuestionType"))
    selector, sub = payload.get("Selector"), payload.get("SubSelector")
    text = plain_text(str(payload.get("QuestionText") or ""))

    def skip(reason: str, what: str = "") -> tuple[list[Question], list[Skipped]]:
        return [], [Skipped(id=tag, type=what or f"{kind}/{selector}", reason=reason)]

    if kind in QUALTRICS_TYPES:
        return skip(f"{QUALTRICS_TYPES[kind]}: not a choice among options", kind)
    if kind == "MC":
        if selector not in SINGLE_ANSWER:
            return skip("more than one answer allowed" if str(selector).startswith("MA") else "not single answer")
        if payload.get("DynamicChoices") or payload.get("Choices") in ([], {}, None):
            return skip("choices carried forward from another question: each respondent's own, not fixed options")
        options = [label for _, label in _ordered(payload["Choices"], payload.get("ChoiceOrder"), "Choices")]
        rows = [(tag, text)]
    elif kind == "Matrix":
        if sub != "SingleAnswer" or selector not in ("Likert", "Bipolar"):
            return skip("a matrix that is not one answer per row", f"Matrix/{selector}/{sub}")
        options = [label for _, label in _ordered(payload["Answers"], payload.get("AnswerOrder"), "Answers")]
        statements = _ordered(payload["Choices"], payload.get("ChoiceOrder"), "Choices")
        rows = [(f"{tag}_{_id(key)}", f"{text} {statement}".strip()) for key, statement in statements]
        if not rows:
            return skip("no rows of its own (carried forward from another question?)", f"Matrix/{selector}/{sub}")
    else:
        return skip("a question type simrun does not know", kind)
    if any("${" in t for t in [*options, *(row_text for _, row_text in rows)]):
        return skip("piped text (${...}) is filled in per respondent", f"{kind}/{selector}")
    if any(not option for option in options):
        return skip("an option with no text (an image?)")
    if len(options) > len(OPTION_LABELS):
        return skip(f"{len(options)} options; at most {len(OPTION_LABELS)} can be asked")
    if len(options) < 2:
        return skip(f"{len(options)} option(s); a question needs 2")
    ordinal = scale_positions(options) or None
    return [Question(id=row_id, text=row_text, options=options, ordinal=ordinal) for row_id, row_text in rows], []


# ---- CSV: Pew ATP / OpinionQA question files, question banks ---------------------------------------------------


def _read_csv(text: str, source: str, format: Format) -> tuple[list[Question], list[Skipped]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {f.strip().lower(): f for f in reader.fieldnames or []}
    repeated = [f for f, n in Counter(f.strip().lower() for f in reader.fieldnames or []).items() if n > 1]
    if repeated:
        raise InstrumentError(f"{source}:1: column {repeated[0]!r} appears twice in the header")
    need = ("key", "question") if format == "pew" else ("id", "text", "options")
    lacking = [n for n in need if n not in fields]
    if format == "pew" and not ({"references", "options"} & set(fields)):
        lacking.append("references or options")
    if lacking:
        raise InstrumentError(f"{source}:1: header lacks {', '.join(lacking)}; it has {list(fields)}")
    questions: list[Question] = []
    skipped: list[Skipped] = []
    lines: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if format == "csv" and row.get(None):  # csv.DictReader keeps the cells past the header's under None
            raise InstrumentError(
                f"{source}:{line}: {len(row[None])} more cell(s) than the header has columns ({row[None]!r} are "
                f"past the end): a comma inside a cell needs the cell in double quotes; {OPTIONS_HINT}"
            )
        row = {k.strip().lower(): (v or "") for k, v in row.items() if k is not None}
        if not any(v.strip() for v in row.values()):
            continue  # a blank line, or a spreadsheet's row of empty cells
        try:
            question = _pew_row(row) if format == "pew" else _bank_row(row)
        except ValidationError as exc:
            if format == "csv":  # a bank is the user's own: every row should be askable
                raise InstrumentError(f"{source}:{line}: {_reason(exc)}") from None
            question = Skipped(id=row["key"], type="choice", reason=_reason(exc))
        except (ValueError, SyntaxError, TypeError, RecursionError) as exc:
            raise InstrumentError(f"{source}:{line}: {_reason(exc)}") from None
        if isinstance(question, Skipped):
            skipped.append(question)
            continue
        if question.id in lines and format == "csv":
            raise InstrumentError(f"{source}:{line}: id '{question.id}' was already used on line {lines[question.id]}")
        lines.setdefault(question.id, line)
        questions.append(question)
    if format == "pew":  # Pew reuses a key for a question's versions asked of different respondents
        shared = {key for key, n in Counter(q.id for q in questions).items() if n > 1}
        skipped.extend(
            Skipped(id=key, type="choice", reason="the key names several questions, versions for different people")
            for key in sorted(shared)
        )
        questions = [q for q in questions if q.id not in shared]
    return questions, skipped


OPTIONS_HINT = 'options are separated by "|" (e.g. "Yes | No | Maybe") or given as a JSON list'


def comma_separated(options: Any) -> bool:
    """Options written as one text with commas ("Yes, No"), which reads as a single option."""
    if isinstance(options, str):
        options = [options]
    return isinstance(options, list) and len(options) < 2 and any(isinstance(o, str) and "," in o for o in options)


def _listed(value: str, field: str) -> list[str | float]:
    """A list cell: JSON (``["a", "b"]``), a Python literal as OpinionQA's raw files have, or ``a | b``."""
    value = value.strip()
    if not value.startswith("["):
        return [part.strip() for part in value.split("|")] if value else []
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = ast.literal_eval(value)
    if not isinstance(parsed, list) or not all(isinstance(x, (str, int, float)) for x in parsed):
        raise ValueError(f"{field}: expected a list of texts or numbers")
    return parsed


def _numbers(value: str, field: str) -> list[float]:
    numbers = [float(x) for x in _listed(value, field)]
    if not all(math.isfinite(x) for x in numbers):
        raise ValueError(f"{field}: NaN or infinity is no place on a scale")
    return numbers


def _pew_row(row: dict[str, str]) -> Question | Skipped:
    options = [str(o) for o in _listed(row.get("options") or row.get("references", ""), "options")]
    options = [o for o in options if o != REFUSED]
    ordinal = _numbers(row.get("option_ordinal", ""), "option_ordinal") or None
    if len(options) > len(OPTION_LABELS):
        return Skipped(id=row["key"], type="choice", reason=f"{len(options)} options")
    return Question(id=_id(row["key"]), text=row["question"].strip(), options=options, ordinal=ordinal)


def _bank_row(row: dict[str, str]) -> Question:
    options = [str(o) for o in _listed(row["options"], "options")]
    if comma_separated(options):
        raise ValueError(f"column options: {row['options'].strip()!r} is one option; {OPTIONS_HINT}")
    ordinal_cell = row.get("ordinal", "").strip()
    ordinal = scale_positions(options) if ordinal_cell.lower() == "auto" else _numbers(ordinal_cell, "ordinal")
    return Question(
        id=row["id"].strip(),
        text=row["text"].strip(),
        options=options,
        ordinal=ordinal or None,
        truth=_truth(row.get("truth", ""), len(options)),
    )


def _truth(cell: str, options: int) -> list[float] | None:
    """A bank's ``truth`` cell: the real answer distribution over the options, as shares or counts."""
    if not cell.strip():
        return None
    try:
        truth: list[float] | None = _numbers(cell, "truth")
    except (ValueError, SyntaxError, TypeError, RecursionError):
        truth = None
    if truth is None:
        problem = "is not a list of numbers"
    elif len(truth) != options:
        problem = f"has {len(truth)} value(s) for {options} options"
    elif min(truth) < 0:
        problem = "has a negative value"
    elif sum(truth) <= 0:
        problem = "is all zeros"
    else:
        return truth
    raise ValueError(
        f"column truth: {cell.strip()!r} {problem}; expected the real answer shares or counts, one per option "
        'in the order of options, non-negative and not all zero, as "0.3 | 0.5 | 0.2" or a JSON list'
    )
