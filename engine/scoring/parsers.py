"""Every parser a task file may name: the answer extractors plus the sudoku grid reader."""

from __future__ import annotations

from collections.abc import Callable

from engine.scoring.answers import EXTRACTORS, answers_match
from engine.scoring.sudoku import parse_grid, verify

PARSERS: dict[str, Callable[[str | None], str | None]] = {
    **EXTRACTORS,
    "sudoku-grid": parse_grid,
}


def is_correct(pred: str | None, example, answer_type: str) -> bool:
    """Score one prediction: rules for sudoku, the gold label for everything else."""
    if answer_type == "sudoku":
        return verify(example.fields["grid"], pred)
    return answers_match(pred, example.gold, "free-text" if answer_type == "nli" else answer_type)
