"""Tracking shuffled objects: people each hold a ball of a different color, then swap balls `depth` times.

The question asks what color one named person holds at the end; the gold is the plain color word. With more
than two people no swap repeats the one just before it (which would simply undo it).
One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='shuffle-d3-s0-0',
            question='Alice, Bob and Claire each hold one ball. At the start, Alice has a yellow ball, Bob has a '
                     'purple ball and Claire has an orange ball. Then they swap balls, one pair at a time. Swap '
                     '1: Alice and Bob swap their balls. Swap 2: Bob and Claire swap their balls. Swap 3: Alice '
                     'and Bob swap their balls. After all the swaps, what color ball does Claire have? Answer '
                     'with the color.',
            gold='yellow',
            fields={'initial': {'Alice': 'yellow', 'Bob': 'purple', 'Claire': 'orange'},
                    'people': ['Alice', 'Bob', 'Claire'],
                    'swaps': [['Alice', 'Bob'], ['Bob', 'Claire'], ['Alice', 'Bob']],
                    'target': 'Claire'},
            gold_steps=('orange', 'yellow', 'yellow'),
            sub_questions=('After swap 1, what color ball does Claire have?',
                           'After swap 2, what color ball does Claire have?',
                           'After swap 3, what color ball does Claire have?'))
"""

from __future__ import annotations

import random

from engine.errors import EngineError
from engine.examples import Example
from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 20
PREFIX = "shuffle"

PEOPLE = ("Alice", "Bob", "Claire", "Dave", "Eve", "Fred", "Gertrude")
COLORS = ("red", "blue", "green", "yellow", "purple", "orange", "white")


def _names(items: list[str]) -> str:
    """'Alice, Bob and Claire'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _item(rng: random.Random, depth: int, people: int, item_id: str) -> Example:
    names = list(PEOPLE[:people])
    colors = rng.sample(COLORS, people)
    initial = dict(zip(names, colors))
    swaps: list[list[str]] = []
    while len(swaps) < depth:
        pair = sorted(rng.sample(range(people), 2))
        swap = [names[pair[0]], names[pair[1]]]
        if people > 2 and swaps and swaps[-1] == swap:
            continue
        swaps.append(swap)
    target = rng.choice(names)
    holding = dict(initial)
    steps: list[str] = []
    for first, second in swaps:
        holding[first], holding[second] = holding[second], holding[first]
        steps.append(holding[target])
    start = _names([f"{name} has {_article(color)} {color} ball" for name, color in initial.items()])
    moves = " ".join(f"Swap {n}: {a} and {b} swap their balls." for n, (a, b) in enumerate(swaps, 1))
    question = (
        f"{_names(names)} each hold one ball. At the start, {start}. Then they swap balls, one pair at a time. "
        f"{moves} After all the swaps, what color ball does {target} have? Answer with the color."
    )
    return Example(
        id=item_id,
        question=question,
        gold=steps[-1],
        fields={"people": names, "initial": initial, "swaps": swaps, "target": target},
        gold_steps=tuple(steps),
        sub_questions=tuple(f"After swap {n}, what color ball does {target} have?" for n in range(1, depth + 1)),
    )


def generate(count: int, depth: int, seed: int = 0, people: int = 3) -> list[Example]:
    """`count` items of `depth` swaps among `people` people (2..7); the same arguments give the same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    if not isinstance(people, int) or isinstance(people, bool) or not 2 <= people <= len(PEOPLE):
        raise EngineError(f"people must be between 2 and {len(PEOPLE)}, got {people!r}")
    prefix = PREFIX if people == 3 else f"{PREFIX}{people}"
    return seeded_items(prefix, count, depth, seed, lambda rng, item_id: _item(rng, depth, people, item_id))
