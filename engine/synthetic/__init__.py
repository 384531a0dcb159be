"""Synthetic multi-step tasks (made by code, not by a model): the project's embedded default data.

Each module makes items deterministically from a seed, with a `depth` that sets how many steps an item needs and
gold intermediate steps, so one can watch a small model's accuracy fall as the number of steps grows. Every
module exposes `generate(count, depth, seed=0) -> list[Example]` and `MAX_DEPTH`; sudoku is scored by the rules,
not one gold string (`engine.scoring.sudoku`). How an item is parsed and scored (its
answer type and parser) is said once, in its task file `tasks/<name>.yaml`.

A task file names a generator by its name here, or names its own function as `FILE.py:NAME`
(`engine.tasks.generators`): both are a function `(count, depth, seed)`; the built-in ones return Examples (with
the sub-questions a row cannot carry), a file's returns rows that are checked as a data file's are.
"""

from __future__ import annotations

from engine.synthetic import (arithmetic, belongings, boolean_expressions, brackets, last_letters,
                              multistep_arithmetic, navigation, orderings, shuffled_objects, sudoku, trading,
                              word_lists)
from engine.synthetic.args import check_args

GENERATORS = {
    "arithmetic": arithmetic.generate,
    "shuffled-objects": shuffled_objects.generate,
    "last-letters": last_letters.generate,
    "sudoku": sudoku.generate,
    # BIG-Bench-Hard's surface forms, in words of their own (training items for the tasks under prompts/bbh-*)
    "boolean-expressions": boolean_expressions.generate,
    "arithmetic-two": multistep_arithmetic.generate,
    "navigation": navigation.generate,
    "trading": trading.generate,
    "brackets": brackets.generate,
    "word-lists": word_lists.generate,
    "belongings": belongings.generate,
    "orderings": orderings.generate,
}
"""Generator name (a task file's `source.generator`) -> its function `(count, depth, seed) -> list[Example]`;
each function's module holds its `MAX_DEPTH` and a docstring with a real item."""

__all__ = ["GENERATORS", "arithmetic", "belongings", "boolean_expressions", "brackets", "check_args", "last_letters",
           "multistep_arithmetic", "navigation", "orderings", "shuffled_objects", "sudoku", "trading", "word_lists"]
