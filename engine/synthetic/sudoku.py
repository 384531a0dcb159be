"""4x4 sudoku (2x2 boxes) with `depth` empty cells, scored by the rules rather than one gold string.

Puzzles are cut from a seeded random valid full grid; with many blanks a puzzle may have more than one
solution, so `engine.scoring.sudoku.verify` accepts any grid that keeps the clues and obeys the rules. `gold` is
the grid the puzzle was cut from, for reference. Grids are 16-character strings read row by row, "." for a blank.
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

from engine.scoring.sudoku import UNITS
from engine.synthetic.args import check_args, seeded_items
from engine.examples import Example

MAX_DEPTH = 12
PREFIX = "sudoku"

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
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
