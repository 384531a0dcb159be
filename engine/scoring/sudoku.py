"""Scoring 4x4 sudoku by the rules: the grid a model wrote (`parse_grid`), and whether it solves the puzzle
(`verify`), since a puzzle with many blanks may have several solutions. Grids are 16-character strings read row
by row, "." for a blank; the puzzles themselves come from `engine.synthetic.sudoku`.
"""

from __future__ import annotations

import re

from engine.errors import EngineError

# every row, column and 2x2 box, as lists of cell indexes 0..15
UNITS: tuple[tuple[int, ...], ...] = (
    tuple(tuple(4 * r + c for c in range(4)) for r in range(4))
    + tuple(tuple(4 * r + c for r in range(4)) for c in range(4))
    + tuple(tuple(4 * (br + r) + bc + c for r in range(2) for c in range(2)) for br in (0, 2) for bc in (0, 2))
)

# characters allowed between the digits of one written grid: spaces, line breaks, table and list punctuation
_RUN = re.compile(r"[1-4](?:[\s|,;/\-+*\[\]()'\"`_]*[1-4])*")
# "Row 1:", "line 2 =", "3)" or "4. " at the start of a line, dropped so the label's digit is not read as a cell
_ROW_LABEL = re.compile(r"(?im)^[ \t>*#-]*(?:(?:row|line)\s*\d+\s*[:.)=-]?|\d+\s*[:.)](?=\s))")


def _last_16(run: str) -> str:
    """The last 16 digits of a run, aligned to whole lines when some consecutive lines hold exactly 16."""
    counts = [len(re.sub(r"[^1-4]", "", line)) for line in run.split("\n")]
    digits = re.sub(r"[^1-4]", "", run)
    for end in range(len(counts), 0, -1):
        total = 0
        for start in range(end - 1, -1, -1):
            total += counts[start]
            if total == 16:
                skip = sum(counts[:start])
                return digits[skip : skip + 16]
            if total > 16:
                break
    return digits[-16:]


def parse_grid(text: str | None) -> str | None:
    """The last 16 digits 1-4 written as one grid in model text, as a 16-character string; None if none.

    Digits may be separated by spaces, line breaks, "|", ",", "-", brackets and the like, and rows may carry
    "Row 1:" or "1)" labels; a ".", a letter or any other digit ends a grid, so an echoed puzzle (with its "."
    blanks) is not read as one. When a run holds more than 16 digits, whole lines that hold 16 are preferred
    (so a "1." list marker after the grid is not taken as a cell), else its last 16 digits.
    """
    if not isinstance(text, str):
        return None
    text = _ROW_LABEL.sub(" ", text)
    found = None
    for match in _RUN.finditer(text):
        if len(re.sub(r"[^1-4]", "", match.group())) >= 16:
            found = _last_16(match.group())
    return found


def verify(puzzle: str, answer: str | None) -> bool:
    """True when `answer` (16 digits 1-4) keeps every clue of `puzzle` and obeys the sudoku rules."""
    if not isinstance(puzzle, str) or len(puzzle) != 16 or any(ch not in "1234." for ch in puzzle):
        raise EngineError(f"a sudoku puzzle must be 16 characters of 1-4 or '.', got {puzzle!r}")
    if not isinstance(answer, str) or len(answer) != 16 or any(ch not in "1234" for ch in answer):
        return False
    if any(clue != "." and clue != digit for clue, digit in zip(puzzle, answer)):
        return False
    return all({answer[i] for i in unit} == set("1234") for unit in UNITS)
