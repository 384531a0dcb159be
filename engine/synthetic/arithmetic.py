"""Multi-step arithmetic: a start number and `depth` operations, each applied to the running result.

Operands are 1..9 and every running result stays a whole number in 0..99 (division only when exact).
One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='arith-d3-s0-0',
            question='Start with 2. Divide by 2. Multiply by 7. Multiply by 3. What is the result?',
            gold='21',
            fields={'ops': [['/', 2], ['*', 7], ['*', 3]], 'start': 2},
            gold_steps=('1', '7', '21'),
            sub_questions=('What is 2 / 2?', 'What is 1 * 7?', 'What is 7 * 3?'))
"""

from __future__ import annotations

import random

from engine.examples import Example
from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 20
PREFIX = "arith"
MAX_VALUE = 99

_WORDS = {"+": "Add {x}.", "-": "Subtract {x}.", "*": "Multiply by {x}.", "/": "Divide by {x}."}


def apply(value: int, op: str, operand: int) -> int:
    """One operation on the running value ("/" must divide exactly)."""
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand
    if op == "*":
        return value * operand
    if op == "/":
        return value // operand
    raise ValueError(f"unknown operation {op!r}")


def _allowed(value: int, op: str) -> list[int]:
    """Operands that keep the result whole and within 0..MAX_VALUE (and skip trivial * 1, / 1, 0 * x, 0 / x)."""
    if op == "+":
        return [x for x in range(1, 10) if value + x <= MAX_VALUE]
    if op == "-":
        return [x for x in range(1, 10) if value - x >= 0]
    if op == "*":
        return [x for x in range(2, 10) if value > 0 and value * x <= MAX_VALUE]
    return [x for x in range(2, 10) if value > 0 and value % x == 0]


def _item(rng: random.Random, depth: int, item_id: str) -> Example:
    start = rng.randint(1, 9)
    value = start
    ops: list[list] = []
    steps: list[str] = []
    subs: list[str] = []
    for _ in range(depth):
        choices = [op for op in "+-*/" if _allowed(value, op)]
        op = rng.choice(choices)
        operand = rng.choice(_allowed(value, op))
        subs.append(f"What is {value} {op} {operand}?")
        value = apply(value, op, operand)
        ops.append([op, operand])
        steps.append(str(value))
    question = " ".join([f"Start with {start}."] + [_WORDS[op].format(x=x) for op, x in ops] + ["What is the result?"])
    return Example(
        id=item_id,
        question=question,
        gold=steps[-1],
        fields={"start": start, "ops": ops},
        gold_steps=tuple(steps),
        sub_questions=tuple(subs),
    )


def generate(count: int, depth: int, seed: int = 0) -> list[Example]:
    """`count` items of `depth` operations each; the same arguments always give the same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
