"""Reading rows from data files and turning them into examples, with errors that name file and line."""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine.scoring.answers import normalize_number
from engine.errors import TaskError
from engine.examples import Example

CHOICE = re.compile(r"^\([A-Z]\)$")

MAX_LINE_CHARS = 1_000_000
"""Characters one JSONL line, or one question, may have: more than a prompt may hold (see
`engine.chains.templates.MAX_OUTPUT_CHARS`), so such a line is a broken file, not an example."""


def read_text(path: Path, what: str = "data file") -> str:
    """The file's text, or a TaskError naming the file (and line, for bad UTF-8) instead of a traceback."""
    if not path.exists():
        raise TaskError(f"{what} {path} does not exist: check the path (or pass --data FILE)")
    if path.is_dir():
        raise TaskError(f"{what} {path} is a folder: pass the file inside it")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TaskError(f"{what} {path} could not be read ({exc.strerror}): check its permissions") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TaskError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}): "
                        "save the file as UTF-8") from exc


def _parse_json(text: str):
    """json.loads, with every way it fails (bad syntax, absurd nesting, a 5,000-digit number) as ValueError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise ValueError(str(exc).split(";")[0]) from exc


def read_rows(path: Path, fmt: str) -> list[tuple[int, dict]]:
    """(line number, row) pairs from a JSONL file, a JSON list, or a BIG-Bench-Hard task file.

    For JSON and BIG-Bench-Hard files the number is the example's position in the list, counted from 1.
    """
    text = read_text(path)
    if not text.strip():
        raise TaskError(f"data file {path} is empty: it needs at least one example")
    if fmt == "jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_CHARS:
                raise TaskError(f"{path}:{number}: line of {len(line):,} characters, more than MAX_LINE_CHARS "
                                f"({MAX_LINE_CHARS:,}): is the file really one JSON object per line?")
            try:
                row = _parse_json(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}:{number}: not valid JSON ({exc.msg}): fix or remove that line") from exc
            except ValueError as exc:
                raise TaskError(f"{path}:{number}: not usable JSON ({exc}): fix or remove that line") from exc
            if not isinstance(row, dict):
                raise TaskError(f"{path}:{number}: each line must be a JSON object")
            rows.append((number, row))
        return rows
    try:
        data = _parse_json(text)
    except json.JSONDecodeError as exc:
        raise TaskError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    except ValueError as exc:
        raise TaskError(f"{path}: not usable JSON ({exc})") from exc
    if fmt == "bbh":
        if not isinstance(data, dict) or "examples" not in data:
            raise TaskError(f"{path}: a BIG-Bench-Hard file needs an 'examples' list")
        data = data["examples"]
    if not isinstance(data, list) or not data:
        raise TaskError(f"{path}: expected a non-empty list of examples")
    return [(i + 1, row) for i, row in enumerate(data)]


def examples_from_rows(rows: list[tuple[int, dict]], spec, where: str, unit: str = "line",
                       default_id=None) -> list[Example]:
    """Examples from (number, row) pairs; a row's own `id` (text or a whole number) names it, and must be unique.

    Errors name `where` and the row's number: `where:N` for a file's line (`unit` "line"), `where row N` for rows
    a generator returned (`unit` "row"). A row without an id gets `default_id(N)`, by default `TASK-N`.
    """
    examples = []
    first: dict[str, int] = {}
    locate = (lambda n: f"{where}:{n}") if unit == "line" else (lambda n: f"{where} {unit} {n}")
    for number, row in rows:
        example = _example(number, row, spec, locate(number),
                           default_id(number) if default_id else f"{spec.name}-{number}")
        if example.id in first:
            raise TaskError(f"{locate(number)}: id {example.id!r} was already used on {unit} {first[example.id]}: "
                            "give every example its own id")
        first[example.id] = number
        examples.append(example)
    if not examples:
        raise TaskError(f"{where}: no examples found")
    return examples


def _example(number: int, row: dict, spec, at: str, fallback_id: str) -> Example:
    if not isinstance(row, dict):
        raise TaskError(f"{at}: each example must be an object")
    if spec.question_format:
        try:
            question = spec.question_format.format(**row)
        except KeyError as exc:
            raise TaskError(f"{at}: missing field {exc.args[0]!r} used by question_format") from exc
    else:
        question = row.get(spec.question_field)
        if not isinstance(question, str) or not question.strip():
            raise TaskError(f"{at}: missing or empty question field {spec.question_field!r}")
    if len(question) > MAX_LINE_CHARS:
        raise TaskError(f"{at}: question of {len(question):,} characters, more than MAX_LINE_CHARS "
                        f"({MAX_LINE_CHARS:,})")
    if spec.answer_field not in row or row[spec.answer_field] in (None, ""):
        raise TaskError(f"{at}: missing gold field {spec.answer_field!r}")
    gold = gold_label(row[spec.answer_field], spec, at)
    hidden = (spec.question_field, spec.answer_field, spec.steps_field, "canary")
    fields = {k: v for k, v in row.items() if k not in hidden}
    steps = gold_steps(row, spec, at) if spec.steps_field else None
    return Example(id=_row_id(row, spec, at) or fallback_id, question=question.strip(),
                   gold=gold, fields=fields, gold_steps=steps)


def gold_steps(row: dict, spec, where: str) -> tuple[str, ...]:
    """The row's gold intermediate results (the task's `steps_field`), each in canonical text form."""
    name = spec.steps_field
    if name not in row:
        raise TaskError(f"{where}: missing gold steps field {name!r} (the task's steps_field): give every row its "
                        "list of intermediate results, or remove steps_field")
    raw = row[name]
    if not isinstance(raw, list) or not raw:
        raise TaskError(f"{where}: gold steps {name!r} must be a non-empty list of intermediate results, as in "
                        f"[12, 36, 30]; got {type(raw).__name__}")
    steps = []
    for index, value in enumerate(raw, 1):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
            raise TaskError(f"{where}: gold step {index} of {name!r} is {value!r}: each step must be text or a number")
        text = str(value).strip()
        if spec.answer_type == "number":
            number = normalize_number(text)
            if number is None:
                raise TaskError(f"{where}: gold step {index} of {name!r} is {text!r}, not a number, but the task's "
                                "answer_type is number")
            text = number
        steps.append(text)
    return tuple(steps)


def _row_id(row: dict, spec, where: str) -> str | None:
    if "id" not in row:
        return None
    raw = row["id"]
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or not str(raw).strip():
        raise TaskError(f"{where}: id {raw!r} must be non-empty text or a whole number")
    return str(raw).strip()


def gold_label(raw, spec, where: str) -> str:
    """The gold answer in canonical text form, checked against the task's answer type."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise TaskError(f"{where}: gold {raw!r} must be text or a number, got {type(raw).__name__}")
    text = str(raw).strip()
    if spec.gold_pattern:
        match = re.search(spec.gold_pattern, text, flags=re.MULTILINE)
        if not match:
            raise TaskError(f"{where}: gold {text[-60:]!r} does not match gold_pattern {spec.gold_pattern!r}")
        text = match.group(1).strip()
    kind = spec.answer_type
    if kind == "number":
        number = normalize_number(text)
        if number is None:
            raise TaskError(f"{where}: gold {text!r} is not a number, but the task's answer_type is number")
        return number
    if kind == "choice" and not CHOICE.match(text):
        raise TaskError(f"{where}: gold {text!r} is not an option letter like (A), but the answer_type is choice")
    if kind == "yes-no":
        if text.lower() not in ("yes", "no"):
            raise TaskError(f"{where}: gold {text!r} is not yes or no, but the answer_type is yes-no")
        return text.lower()
    if kind == "bool" and text not in ("True", "False"):
        raise TaskError(f"{where}: gold {text!r} is not True or False, but the answer_type is bool")
    if kind == "nli" and text.lower() not in [c.lower() for c in spec.classes]:
        raise TaskError(f"{where}: gold {text!r} is not one of the classes {', '.join(spec.classes)}")
    return text.lower() if kind == "nli" else text


def load_exemplars(path: Path, fmt: str, count: int) -> list[dict]:
    """Few-shot exemplars as [{"question", "answer"}] (answer = the worked solution ending in the answer)."""
    if not path.exists():
        raise TaskError(f"exemplar file {path} does not exist: check the task's exemplars.path")
    if fmt == "gsm8k":
        return [_gsm8k_exemplar(row, f"{path}:{number}") for number, row in read_rows(path, "jsonl")[:count]]
    text = read_text(path, "exemplar file")
    # BIG-Bench-Hard cot-prompts: canary line, "-----", a task description, then "Q: ... A: ..." blocks.
    blocks = re.split(r"\n\s*\n(?=Q: )", text.strip())
    exemplars = []
    for block in blocks:
        if not block.startswith("Q: ") or "\nA: " not in block:
            continue
        question, answer = block[3:].split("\nA: ", 1)
        exemplars.append({"question": question.strip(), "answer": answer.strip()})
    if not exemplars:
        raise TaskError(f"{path}: found no 'Q: ... A: ...' exemplars")
    return exemplars[:count]


def _gsm8k_exemplar(row: dict, where: str) -> dict:
    for key in ("question", "answer"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise TaskError(f"{where}: exemplar has no {key!r} text: each line needs \"question\" and \"answer\"")
    if "####" not in row["answer"]:
        raise TaskError(f"{where}: exemplar answer has no final '#### N' line: end the worked solution with one")
    return {"question": row["question"], "answer": _gsm8k_solution(row["answer"])}


def _gsm8k_solution(answer: str) -> str:
    """GSM8K's worked solution without calculator notes, ending "#### N" as lm-evaluation-harness shows it
    (so that its strict extraction has the format to copy)."""
    body, _, final = answer.rpartition("####")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f"{body}\n#### {final.strip()}"
