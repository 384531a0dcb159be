"""Synthetic multi-step tasks (made by code, not by a model): the project's embedded default data.

Each module makes items deterministically from a seed, with a `depth` that sets how many steps an item needs and
gold intermediate steps, so one can watch a small model's accuracy fall as the number of steps grows. Every
module exposes `generate(count, depth, seed=0) -> list[Example]` and `MAX_DEPTH`; sudoku is scored by the rules,
not one gold string (`engine.scoring.sudoku`). How an item is parsed and scored (its
answer type and parser) is said once, in its task file `tasks/<name>.yaml`.
"""

from __future__ import annotations

from engine.synthetic import arithmetic, last_letters, shuffled_objects, sudoku
from engine.synthetic.args import check_args

GENERATORS = {
    "arithmetic": arithmetic,
    "shuffled-objects": shuffled_objects,
    "last-letters": last_letters,
    "sudoku": sudoku,
}
"""Task name -> generator module."""

__all__ = ["GENERATORS", "arithmetic", "check_args", "last_letters", "shuffled_objects", "sudoku"]
