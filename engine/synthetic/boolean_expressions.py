"""Boolean expressions in BIG-Bench-Hard's surface form ("not ( True ) and ( True ) is"), `depth` tokens long.

The gold steps are the rewrites a careful person makes, one at a time, until one value is left (`rewrite`):
first a value standing alone in parentheses loses them, then the leftmost `not` of a value, then the leftmost
`and` of two values, then the leftmost `or` (Python's precedence: `not` > `and` > `or`), all inside the first
bracket that holds no other bracket while there is one. The last
step is the answer line. The expressions come from a small grammar of this module's own; every gold chain is
checked against Python's own evaluation of the expression.

One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='boolean-d3-s0-0',
            question='True and False is',
            gold='False',
            fields={'expression': 'True and False'},
            gold_steps=('The answer is False.',),
            sub_questions=None)
"""

from __future__ import annotations

import random

from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 15
PREFIX = "boolean"
VALUES = ("True", "False")
_NOT = {"True": "False", "False": "True"}


def rewrite(tokens: list[str]) -> list[str]:
    """One step of simplification (see the module's docstring); `tokens` must hold more than one value."""
    for i in range(len(tokens) - 2):  # a value alone in parentheses
        if tokens[i] == "(" and tokens[i + 1] in VALUES and tokens[i + 2] == ")":
            return tokens[:i] + [tokens[i + 1]] + tokens[i + 3:]
    start, end = 0, len(tokens)  # the first bracket with no bracket inside, else the whole expression
    for i, token in enumerate(tokens):
        if token == "(":
            start = i + 1
        elif token == ")":
            end = i
            break
    if end == len(tokens):
        start = 0
    for i in range(start, end - 1):
        if tokens[i] == "not" and tokens[i + 1] in VALUES:
            return tokens[:i] + [_NOT[tokens[i + 1]]] + tokens[i + 2:]
    for op in ("and", "or"):
        for i in range(start + 1, end - 1):
            if tokens[i] == op and tokens[i - 1] in VALUES and tokens[i + 1] in VALUES:
                left, right = tokens[i - 1] == "True", tokens[i + 1] == "True"
                value = (left and right) if op == "and" else (left or right)
                return tokens[: i - 1] + [str(value)] + tokens[i + 2:]
    raise ValueError(f"nothing to simplify in {' '.join(tokens)!r}")


def solve(expression: str) -> list[str]:
    """Every rewrite of `expression` (without its trailing "is"), in order, ending at one value."""
    tokens, steps = expression.split(), []
    while len(tokens) > 1:
        tokens = rewrite(tokens)
        steps.append(" ".join(tokens))
    return steps


def _expression(rng: random.Random, size: int) -> list[str]:
    """A random expression of about `size` tokens: values joined by and/or, some negated, some bracketed."""
    if size <= 1:
        return [rng.choice(VALUES)]
    roll = rng.random()
    if roll < 0.25:
        return ["not", *_expression(rng, size - 1)]
    if roll < 0.4 and size >= 3:
        return ["(", *_expression(rng, size - 2), ")"]
    left = rng.randint(1, max(1, size - 2))
    return [*_expression(rng, left), rng.choice(("and", "or")), *_expression(rng, size - 1 - left)]


def _item(rng: random.Random, depth: int, item_id: str):
    from engine.examples import Example

    while True:
        tokens = _expression(rng, depth)
        if len(tokens) == depth and (depth == 1 or any(t in ("and", "or", "not") for t in tokens)):
            break
    expression = " ".join(tokens)
    steps = solve(expression) if len(tokens) > 1 else []
    gold = steps[-1] if steps else tokens[0]
    assert gold == str(eval(expression)), expression  # noqa: S307 - our own grammar's tokens only
    texts = steps[:-1] + [f"The answer is {gold}."]
    return Example(id=item_id, question=f"{expression} is", gold=gold, fields={"expression": expression},
                   gold_steps=tuple(texts))


def generate(count: int, depth: int, seed: int = 0) -> list:
    """`count` expressions of exactly `depth` tokens (BIG-Bench-Hard's are 9); the same arguments, the same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
