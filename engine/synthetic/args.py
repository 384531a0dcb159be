"""The checks every generator makes on its arguments, so each bad value fails with the same one line."""

from __future__ import annotations

import random
from collections.abc import Callable

from engine.errors import EngineError


def check_args(count: object, depth: object, seed: object, max_depth: int) -> None:
    """Raise EngineError naming the bad value when count, depth or seed is unusable."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise EngineError(f"count must be a whole number of at least 1, got {count!r}")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= max_depth:
        raise EngineError(f"depth must be between 1 and {max_depth}, got {depth!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise EngineError(f"seed must be a whole number, got {seed!r}")


def seeded_items(prefix: str, count: int, depth: int, seed: int, make: Callable) -> list:
    """A generator's `count` items: item i is `make(rng, item_id)` with a Random of its own, seeded from the prefix,
    depth, seed and i, so the same arguments give the same items and asking for more keeps the first ones."""
    return [make(random.Random(f"{prefix}:d{depth}:s{seed}:{i}"), f"{prefix}-d{depth}-s{seed}-{i}")
            for i in range(count)]
