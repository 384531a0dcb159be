"""A task's generator: a built-in one by name, or the task file's own `FILE.py:NAME`.

Both are a function `(count, depth, seed)`. A built-in one (`engine.synthetic.GENERATORS`) returns Examples; a
file's returns rows, the same fields a data file has (question, answer, gold steps under the task's
`steps_field`, anything else its templates read), and those rows go through the data file's checks, so a row
without a question or an answer is one line naming the file, NAME and the row. This is how the engine writes new
items in the surface form of a task someone else wrote (a BIG-Bench-Hard task, say), with gold intermediate steps.

FILE is looked for beside the task file, then at the project root (as the chains a task file lists are). The
file generator gets `depth` as given (only it knows its range) and `count` as `--limit` or the task's
`source.count`; it should return at most `count` rows (more are cut), the same rows for the same arguments,
and ids of its own or none: a row without an id is named `TASK-dDEPTH-sSEED-I`, as built-in items are.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from engine.errors import EngineError, TaskError
from engine.examples import Example
from engine.tasks.user_code import find_in, functions_of, import_file, is_reference, line_in, parse_reference

SHAPE = "a function (count, depth, seed) returning rows"


def generate_examples(spec, base: Path, count: int, depth: int, seed: int) -> list[Example]:
    """`count` items of the task's generator at `depth` from `seed`."""
    from engine.synthetic import GENERATORS

    name = spec.source.generator
    if not is_reference(name):
        if name not in GENERATORS:
            raise TaskError(f"unknown generator {name!r}: use one of {', '.join(GENERATORS)}, or your own as "
                            "FILE.py:NAME (a function (count, depth, seed) returning rows)")
        return GENERATORS[name](count, depth, seed)
    function, path, label = load_generator(name, base)
    rows = _call(function, path, label.rpartition(":")[2], count, depth, seed)
    if not rows:
        raise TaskError(f"{label} wrote no items at depth {depth} (seed {seed}): a generator must return at least "
                        "one row, with the task's question and answer fields")
    from engine.tasks.datasets import examples_from_rows

    examples = examples_from_rows(list(enumerate(rows, 1)), spec, label, unit="row",
                                  default_id=lambda number: f"{spec.name}-d{depth}-s{seed}-{number - 1}")
    return examples[:count]


def load_generator(reference: str, base: Path):
    """(function, file, "FILE.py:NAME" as found) for a task file's `generator: FILE.py:NAME`."""
    from engine.tasks import user_code

    label = f"generator {reference!r}"
    path, name = parse_reference(reference, label, SHAPE, TaskError)
    path = find_in(path, [base, user_code.PROJECT_ROOT], label, TaskError)
    module = import_file(path, "generator file", TaskError)
    if not hasattr(module, name):
        found = functions_of(module)
        raise TaskError(f"{path} defines no {name!r}: name one of {', '.join(found) or '(no function)'} "
                        f"as the task's generator")
    function = getattr(module, name)
    if not callable(function) or inspect.isclass(function):
        raise TaskError(f"{path}: {name} is a {type(function).__name__}, not a function: bind {name} to {SHAPE}")
    return function, path, f"{path}:{name}"


def _call(function, path: Path, name: str, count: int, depth: int, seed: int) -> list:
    """The rows the user's function returns (or yields), every failure one line naming its file and line."""
    call = f"{name}({count}, {depth}, {seed})"
    try:
        rows = function(count, depth, seed)
        if isinstance(rows, (str, bytes, dict)) or not hasattr(rows, "__iter__"):
            raise TaskError(f"{path}: {call} returned a {type(rows).__name__}, not a list of rows: return a list "
                            "of dicts, each with the task's question and answer fields")
        return list(rows)  # inside the try: a generator function fails only while it is iterated
    except TaskError:
        raise
    except TypeError as exc:
        if line_in(exc, path) == "?":  # the call itself failed: wrong signature
            raise TaskError(f"{path}: {name} must take three arguments, as in `def {name}(count, depth, seed):`, "
                            f"and return rows ({exc})") from exc
        raise TaskError(f"{path}:{line_in(exc, path)}: TypeError: {exc} (in {call})") from exc
    except EngineError as exc:
        raise TaskError(f"{path}:{line_in(exc, path)}: {exc} (in {call})") from exc
    except Exception as exc:  # noqa: BLE001 - the user's generator failed: one line, with its line
        raise TaskError(f"{path}:{line_in(exc, path)}: {type(exc).__name__}: {exc} (in {call})") from exc
