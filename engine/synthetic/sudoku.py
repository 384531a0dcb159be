"""4x4 sudoku (2x2 boxes) with `depth` empty cells, scored by the rules rather than one gold string.

Puzzles are cut from a seeded random valid full grid; with many blanks a puzzle may have more than one
solution, so `verify` accepts any grid that keeps the clues and obeys the rules. `gold` is the grid the
puzzle was cut from, for reference. Grids are 16-character strings read row by row, "." for a blank.
One real item, `generate(1, 4, seed=0)[0]`:

    Example(id='sudoku-d4-s0-0',
            question='Solve this 4x4 sudoku. Fill each empty cell (shown as .) with a digit from 1 to 4 so that '
                     'every row, every column and every 2x2 box contains 1, 2, 3 and 4 exactly once.\\n'
                     '\\n'
                     '4..2\\n'
                     '2341\\n'
                     '14.3\\n'
                     '321.\\n'
                     '\\n'
                     'Write the completed grid as 4 lines of 4 digits.',
            gold='4132234114233214',
            fields={'grid': '4..2234114.3321.'},
            gold_steps=None,
            sub_questions=None)
"""

from __future__ import annotations

import random
import re

from engine.errors import EngineError
from engine.examples import Example
from engine.synthetic import check_args

MAX_DEPTH = 12
PREFIX = "sudoku"

# every row, column and 2x2 box, as lists of cell indexes 0..15
UNITS: tuple[tuple[int, ...], ...] = (
    tuple(tuple(4 * r + c for c in range(4)) for r in range(4))
    + tuple(tuple(4 * r + c for r in range(4)) for c in range(4))
    + tuple(tuple(4 * (br + r) + bc + c for r in range(2) for c in range(2)) for br in (0, 2) for bc in (0, 2))
)
_PEERS = tuple(frozenset(i for unit in UNITS if cell in unit for i in unit) - {cell} for cell in range(16))


def _fill(cells: list[str], rng: random.Random) -> bool:
    """Fill the "." cells of `cells` in place by randomised backtracking."""
    try:
        cell = cells.index(".")
    except ValueError:
        return True
    digits = ["1", "2", "3", "4"]
    rng.shuffle(digits)
    for digit in digits:
        if all(cells[p] != digit for p in _PEERS[cell]):
            cells[cell] = digit
            if _fill(cells, rng):
                return True
    cells[cell] = "."
    return False


def _item(rng: random.Random, depth: int, item_id: str) -> Example:
    cells = ["."] * 16
    _fill(cells, rng)
    solution = "".join(cells)
    blanks = set(rng.sample(range(16), depth))
    puzzle = "".join("." if i in blanks else d for i, d in enumerate(solution))
    question = (
        "Solve this 4x4 sudoku. Fill each empty cell (shown as .) with a digit from 1 to 4 so that every row, "
        "every column and every 2x2 box contains 1, 2, 3 and 4 exactly once.\n\n"
        + show(puzzle)
        + "\n\nWrite the completed grid as 4 lines of 4 digits."
    )
    return Example(id=item_id, question=question, gold=solution, fields={"grid": puzzle})


def show(grid: str) -> str:
    """A 16-character grid as 4 lines of 4 characters."""
    return "\n".join(grid[i : i + 4] for i in range(0, 16, 4))


def generate(count: int, depth: int, seed: int = 0) -> list[Example]:
    """`count` puzzles with `depth` empty cells each; the same arguments always give the same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    return [
        _item(random.Random(f"{PREFIX}:d{depth}:s{seed}:{i}"), depth, f"{PREFIX}-d{depth}-s{seed}-{i}")
        for i in range(count)
    ]


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
