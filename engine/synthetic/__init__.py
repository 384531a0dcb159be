"""Synthetic multi-step tasks (made by code, not by a model): the project's embedded default data.

Each module makes items deterministically from a seed, with a `depth` that sets how many steps an item needs and
gold intermediate steps, so one can watch a small model's accuracy fall as the number of steps grows. Every
module exposes `generate(count, depth, seed=0) -> list[Example]` and `MAX_DEPTH`; `sudoku` also has `parse_grid`
and `verify`, since it is scored by the rules, not one gold string. How an item is parsed and scored (its
answer type and parser) is said once, in its task file `tasks/<name>.yaml`.
"""

from __future__ import annotations

from engine.errors import EngineError


def check_args(count: object, depth: object, seed: object, max_depth: int) -> None:
    """Raise EngineError naming the bad value when count, depth or seed is unusable."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise EngineError(f"count must be a whole number of at least 1, got {count!r}")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= max_depth:
        raise EngineError(f"depth must be between 1 and {max_depth}, got {depth!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise EngineError(f"seed must be a whole number, got {seed!r}")


# the modules import check_args from here, so they come after it
from engine.synthetic import arithmetic, last_letters, shuffled_objects, sudoku  # noqa: E402

GENERATORS = {
    "arithmetic": arithmetic,
    "shuffled-objects": shuffled_objects,
    "last-letters": last_letters,
    "sudoku": sudoku,
}
"""Task name -> generator module."""

__all__ = ["GENERATORS", "arithmetic", "check_args", "last_letters", "shuffled_objects", "sudoku"]
