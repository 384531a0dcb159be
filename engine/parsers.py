"""Every parser a task file may name: the answer extractors plus the task-specific ones."""

from __future__ import annotations

import re
from collections.abc import Callable

from engine.answers import EXTRACTORS, answers_match, extract_answer_is
from engine.generated.sudoku import parse_grid

_NLI_RE = re.compile(r"\b(entailment|contradiction|neutral)\b", re.IGNORECASE)


def extract_nli(text: str | None) -> str | None:
    """The NLI label: after "the answer is" when present, else the last label word.

    >>> extract_nli("The hypothesis follows. The answer is Entailment.")
    'entailment'
    >>> extract_nli("no label here") is None
    True
    """
    if not text:
        return None
    for candidate in (extract_answer_is(text), text):
        if candidate:
            found = _NLI_RE.findall(candidate)
            if found:
                return found[-1].lower()
    return None


PARSERS: dict[str, Callable[[str | None], str | None]] = {
    **EXTRACTORS,
    "nli": extract_nli,
    "sudoku-grid": parse_grid,
}


def is_correct(pred: str | None, example, answer_type: str) -> bool:
    """Score one prediction: rules for sudoku, the gold label for everything else."""
    if answer_type == "sudoku":
        from engine.generated.sudoku import verify

        return verify(example.fields["grid"], pred)
    return answers_match(pred, example.gold, "free-text" if answer_type == "nli" else answer_type)
