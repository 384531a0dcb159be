"""Unfinished bracket sequences in BIG-Bench-Hard's dyck_languages form, `depth` symbols long.

The question asks for the rest of a sequence of the four bracket kinds `( ) [ ] { } < >` so that every bracket
is closed properly; the answer is the closing brackets, innermost first. One to three brackets are left open at
the end, as in the benchmark. The gold steps are what a careful reader writes, one symbol at a time: the symbol,
then the brackets still open after it (`[ -> ( [`, or `empty`); with no symbol left, one closing bracket at a
time, the partner of the last one open, then those still open after it (`} -> (`); then the answer line. The
sequences are drawn by this module's own random walk, never from the benchmark.

One real item, `generate(1, 4, seed=0)[0]`:

    Example(id='brackets-d4-s0-0',
            question='Complete the rest of the sequence, making sure that the parentheses are closed properly. '
                     'Input: ( { < >',
            gold='} )',
            fields={'sequence': '( { < >'},
            gold_steps=('( -> (', '{ -> ( {', '< -> ( { <', '> -> ( {', '} -> (', ') -> empty', 'The answer is } ).'),
            sub_questions=None)
"""

from __future__ import annotations

import random

from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 120
PREFIX = "brackets"
PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
QUESTION = "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: "
EMPTY = "empty"


def open_after(symbols: list[str]) -> list[str]:
    """The brackets still open after `symbols`, outermost first; ValueError at a bracket that closes nothing."""
    stack: list[str] = []
    for symbol in symbols:
        if symbol in PAIRS:
            stack.append(symbol)
        elif not stack or PAIRS[stack.pop()] != symbol:
            raise ValueError(f"{symbol!r} closes no open bracket in {' '.join(symbols)!r}")
    return stack


def closing(stack: list[str]) -> str:
    """The closing brackets of `stack`, innermost first: the task's answer."""
    return " ".join(PAIRS[symbol] for symbol in reversed(stack))


def _sequence(rng: random.Random, length: int) -> list[str]:
    """`length` symbols that leave one to three brackets open (as many as the length's parity allows)."""
    left_open = rng.choice([k for k in (1, 2, 3) if k <= length and (length - k) % 2 == 0])
    symbols: list[str] = []
    stack: list[str] = []
    for position in range(length):
        remaining = length - position
        can_close = bool(stack) and len(stack) - 1 + (remaining - 1) >= left_open
        must_close = len(stack) - left_open >= remaining
        if must_close or (can_close and rng.random() < min(0.8, 0.3 + 0.04 * len(stack))):  # deeper, likelier
            symbols.append(PAIRS[stack.pop()])
        else:
            stack.append(rng.choice(tuple(PAIRS)))
            symbols.append(stack[-1])
    return symbols


def _item(rng: random.Random, depth: int, item_id: str):
    from engine.examples import Example

    symbols = _sequence(rng, depth)
    steps = []
    for end in range(1, depth + 1):
        stack = open_after(symbols[:end])
        steps.append(f"{symbols[end - 1]} -> {' '.join(stack) if stack else EMPTY}")
    stack = open_after(symbols)
    for end in range(len(stack) - 1, -1, -1):  # close the last one open, one a step
        steps.append(f"{PAIRS[stack[end]]} -> {' '.join(stack[:end]) if end else EMPTY}")
    gold = closing(stack)
    sequence = " ".join(symbols)
    return Example(id=item_id, question=QUESTION + sequence, gold=gold, fields={"sequence": sequence},
                   gold_steps=(*steps, f"The answer is {gold}."))


def generate(count: int, depth: int, seed: int = 0) -> list:
    """`count` sequences of exactly `depth` symbols (BIG-Bench-Hard's have 2 to 99, median 13)."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
