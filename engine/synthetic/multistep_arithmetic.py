"""Two-group arithmetic in BIG-Bench-Hard's surface form ("((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) ="),
with `depth` one-digit numbers in each group.

The gold steps are one calculation at a time (`rewrite`): in the first group that holds no other group, the
leftmost `*`, else the leftmost `+` or `-`; a group left with one number loses its parentheses. Each step is
written as the calculator annotation of that calculation and the whole expression after it, so that the
calculator, not the model, does the arithmetic; the last step ends with the answer line.

One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='arith-two-d3-s0-0',
            question='((0 * -4 - 3) - (-8 + -3 + 6)) =',
            gold='2',
            fields={'expression': '((0 * -4 - 3) - (-8 + -3 + 6))'},
            gold_steps=('<<0*-4=0>> ((0 - 3) - (-8 + -3 + 6))',
                        '<<0-3=-3>> (-3 - (-8 + -3 + 6))',
                        '<<-8+-3=-11>> (-3 - (-11 + 6))',
                        '<<-11+6=-5>> (-3 - -5)',
                        '<<-3--5=2>> The answer is 2.'),
            sub_questions=None)
"""

from __future__ import annotations

import random
import re

from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 12
PREFIX = "arith-two"
OPERATORS = ("+", "-", "*")
_GROUP = re.compile(r"\(([^()]*)\)")
_TOKEN = re.compile(r"[()]|[^\s()]+")


def _calc(left: int, op: str, right: int) -> int:
    return left + right if op == "+" else left - right if op == "-" else left * right


def _text(tokens: list[str]) -> str:
    return " ".join(tokens).replace("( ", "(").replace(" )", ")")


def put_result(expression: str, calculation: tuple[str, str, str], value: str) -> str:
    """`expression` with the first place where the calculation's three tokens stand side by side (`-2`, `*`,
    `6`) replaced by `value`; a group left with one number loses its parentheses. This is layout, not
    arithmetic: the calculation is whatever was written, right or wrong, and it is placed where it stands.
    Raises ValueError when the calculation stands nowhere in `expression`.

    >>> put_result("((8 - 2 + -2 * 6) * (3 - 1))", ("-2", "*", "6"), "-12")
    '((8 - 2 + -12) * (3 - 1))'
    >>> put_result("((8 - 2) * -4)", ("8", "-", "2"), "6")
    '(6 * -4)'
    """
    tokens, wanted = _TOKEN.findall(expression), list(calculation)
    at = next((i for i in range(len(tokens) - 2) if tokens[i: i + 3] == wanted), None)
    if at is None:
        raise ValueError(f"the calculation {' '.join(calculation)!r} is not in {expression!r}")
    tokens[at: at + 3] = [value]
    if 0 < at < len(tokens) - 1 and tokens[at - 1] == "(" and tokens[at + 1] == ")":
        tokens[at - 1: at + 2] = [value]
    return _text(tokens)


def first_group(expression: str) -> str:
    """The first group that holds no other group, without its parentheses (all of `expression` if none)."""
    match = _GROUP.search(expression)
    return match.group(1) if match else expression


def next_calculation(expression: str) -> tuple[str, str, str]:
    """(left, operator, right) of the calculation the rules do next: in the first group that holds no other
    group, the leftmost `*`, else the leftmost `+` or `-`."""
    inner = first_group(expression).split()
    ops = range(1, len(inner), 2)  # the operators' positions
    at = next((i for i in ops if inner[i] == "*"), ops[0])
    left, op, right = inner[at - 1: at + 2]
    return left, op, right


def rewrite(expression: str) -> tuple[str, str]:
    """(the annotation of the next calculation, the expression after it) for an expression in this form."""
    left, op, right = next_calculation(expression)
    value = str(_calc(int(left), op, int(right)))
    return f"<<{left}{op}{right}={value}>>", put_result(expression, (left, op, right), value)


def solve(expression: str) -> list[str]:
    """Every step's text for `expression` (without its trailing "="), the last one ending with the answer."""
    steps = []
    while True:
        note, expression = rewrite(expression)
        if " " not in expression.strip("()"):
            steps.append(f"{note} The answer is {expression.strip('()')}.")
            return steps
        steps.append(f"{note} {expression}")


def _group(rng: random.Random, size: int) -> str:
    numbers = [str(rng.randint(-9, 9)) for _ in range(size)]
    ops = [rng.choice(OPERATORS) for _ in range(size - 1)]
    return " ".join(x for pair in zip(numbers, ops + [""]) for x in pair if x)


def _item(rng: random.Random, depth: int, item_id: str):
    from engine.examples import Example

    left, right = _group(rng, depth), _group(rng, depth)
    left, right = (left if depth == 1 else f"({left})"), (right if depth == 1 else f"({right})")
    expression = f"({left} {rng.choice(OPERATORS)} {right})"
    steps = solve(expression)
    gold = steps[-1].rsplit(" ", 1)[1].rstrip(".")
    assert int(gold) == eval(expression), expression  # noqa: S307 - our own digits and operators only
    return Example(id=item_id, question=f"{expression} =", gold=gold, fields={"expression": expression},
                   gold_steps=tuple(steps))


def generate(count: int, depth: int, seed: int = 0) -> list:
    """`count` expressions of two groups of `depth` numbers (BIG-Bench-Hard's have 4); same arguments, same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
