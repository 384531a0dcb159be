"""Safe arithmetic without `eval`: a calculator tool for chains and a checker for a model's sums.

`calculate("3 + 4 * 2")` returns ``"11"``. The expression is parsed with ``ast.parse(mode="eval")`` and only
number literals, ``+ - * / // % **``, unary ``-``/``+`` and parentheses are evaluated; a name, call, attribute,
subscript or anything else makes the whole expression unanswerable (``None``), and nothing in it ever runs.

Arithmetic is exact where it can be: numbers become `fractions.Fraction`, so ``0.1 + 0.2`` is ``"0.3"`` and
``1/3*3`` is ``"1"``. Only a non-integer power (``2 ** 0.5``) falls back to float.

Before parsing, the text is normalised: thousands separators in numbers are dropped (``1,000`` -> ``1000``),
``x``/``X``/``×``/``·``/``∙`` mean multiply, ``÷`` and ``∕`` mean divide, ``−``/``–`` mean minus,
``^`` means power, ``$`` is dropped, and a trailing ``=`` (as in ``"3 + 4 * 2 ="``) is ignored.

Results are strings: integers without ``.0`` (``"24"``), other numbers rounded to 6 decimal places with
trailing zeros stripped (``"0.333333"``, ``"2.5"``); a nonzero value smaller than 1e-6 keeps 6 significant
digits (``"1e-07"``).

``None`` comes back for: syntax errors, disallowed syntax, division by zero, complex or non-finite results,
an integer exponent beyond ±100, a non-integer exponent on a base beyond 1e15, any intermediate value beyond
1e100, a final result with magnitude ≥ 1e15, and expressions longer than 500 characters. These guards keep
``2**10**10`` and friends from hanging the caller.
"""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction

from engine.errors import EngineError

MAX_EXPRESSION_CHARS = 500
"""Longer expressions are not evaluated (``calculate`` returns None)."""

MAX_EXPONENT = 100
"""Largest allowed absolute value of an integer exponent."""

MAX_POW_BASE = 1e15
"""Largest allowed absolute base for a non-integer exponent."""

MAX_INTERMEDIATE = 10**100
"""Any value computed along the way with a larger magnitude makes the expression unanswerable."""

MAX_RESULT = 10**15
"""Final results must have a magnitude below this."""

_DECIMALS = 6

_Number = Fraction | float

_BINARY_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)

# 1,000 or 12,345,678.5 -> drop the commas (only between a digit and a group of exactly three digits).
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")

_REPLACEMENTS = {
    "×": "*",
    "·": "*",
    "∙": "*",
    "x": "*",
    "X": "*",
    "÷": "/",
    "∕": "/",
    "−": "-",
    "–": "-",
    "^": "**",
    "$": "",
}
_REPLACE_RE = re.compile("|".join(re.escape(k) for k in _REPLACEMENTS))


class _Unanswerable(Exception):
    """Raised inside the evaluator when the expression is outside what `calculate` will evaluate."""


def calculate(expression: str) -> str | None:
    """Evaluate an arithmetic expression safely; the normalised result, or None when it can't or shouldn't be.

    >>> calculate("48/2")
    '24'
    >>> calculate("(1,000 - 250) x 2")
    '1500'
    >>> calculate("__import__('os')") is None
    True
    """
    if not isinstance(expression, str):
        raise EngineError(
            f"calculate() needs the arithmetic as a str, got {type(expression).__name__}; pass text like '3 + 4 * 2'"
        )
    if len(expression) > MAX_EXPRESSION_CHARS:
        return None
    text = _normalise(expression)
    if not text:
        return None
    try:
        tree = ast.parse(text, mode="eval")
        value = _eval(tree.body)
    except (_Unanswerable, SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError,
            MemoryError):
        return None
    return _format(value)


def _normalise(expression: str) -> str:
    text = _THOUSANDS.sub("", expression.strip())
    text = _REPLACE_RE.sub(lambda m: _REPLACEMENTS[m.group(0)], text)
    text = text.strip()
    while text.endswith("="):
        text = text[:-1].rstrip()
    return text


def _check(value: _Number) -> _Number:
    if isinstance(value, complex):
        raise _Unanswerable("complex")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unanswerable("not finite")
        if abs(value) > MAX_INTERMEDIATE:
            raise _Unanswerable("too big")
        return value
    if abs(value) > MAX_INTERMEDIATE:
        raise _Unanswerable("too big")
    return value


def _eval(node: ast.AST) -> _Number:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Unanswerable("not a number")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _Unanswerable("not finite")
            return _check(Fraction(repr(value)))  # repr is the shortest round-trip text: 0.1 -> 1/10 exactly
        return _check(Fraction(value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _eval(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY_OPS):
        left = _eval(node.left)
        right = _eval(node.right)
        op = node.op
        if isinstance(op, ast.Add):
            result = left + right
        elif isinstance(op, ast.Sub):
            result = left - right
        elif isinstance(op, ast.Mult):
            result = left * right
        elif isinstance(op, ast.Div):
            result = left / right
        elif isinstance(op, ast.FloorDiv):
            result = left // right
        elif isinstance(op, ast.Mod):
            result = left % right
        else:
            result = _power(left, right)
        return _check(result)
    raise _Unanswerable(type(node).__name__)


def _power(base: _Number, exponent: _Number) -> _Number:
    if isinstance(exponent, Fraction) and exponent.denominator == 1:
        if abs(exponent) > MAX_EXPONENT:
            raise _Unanswerable("exponent too big")
        if isinstance(base, float) and abs(base) > MAX_POW_BASE:
            raise _Unanswerable("base too big")
        return base ** int(exponent)
    if abs(exponent) > MAX_EXPONENT or abs(base) > MAX_POW_BASE:
        raise _Unanswerable("power too big")
    return float(base) ** float(exponent)  # complex for a negative base: rejected by _check


def _format(value: _Number) -> str | None:
    if abs(value) >= MAX_RESULT:
        return None
    if isinstance(value, Fraction) and value.denominator == 1:
        return str(int(value))
    number = float(value)
    if number != 0 and abs(number) < 10**-_DECIMALS:
        return format(number, f".{_DECIMALS}g")
    text = f"{round(number, _DECIMALS):.{_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- finding expressions in text ---------------------------------------------------------------------------

_NOTE_RE = re.compile(r"<<([^<>=]+)=[^<>]*>>")
_NUM = r"(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"
_OPERAND = rf"[-(\s]*{_NUM}[\s)]*"
_OPERATOR = r"(?:\*\*|//|[-+*/%^x×÷])"
# A run of at least two numbers joined by operators, ending in '=' (as in "3 + 4 * 2 = 11").
_EQUATION_RE = re.compile(rf"(?<![\w.]){_OPERAND}(?:{_OPERATOR}{_OPERAND})+(?==)")


def find_expressions(text: str) -> list[str]:
    """Arithmetic expressions written in `text`, in order of appearance, keeping only ones `calculate` can do.

    Two forms are recognised:

    * GSM8K calculator notes ``<<48/2=24>>``: the part before ``=`` (``"48/2"``);
    * an equation ``3 + 4 * 2 = 11``: numbers joined by operators (``+ - * / // % ** ^ x × ÷``, parentheses,
      thousands commas) directly before an ``=`` sign (``"3 + 4 * 2"``).

    An expression inside a note is not reported a second time as an equation. Results are stripped of
    surrounding whitespace.

    >>> find_expressions("She has <<48/2=24>>24 apples, then 24 + 6 = 30.")
    ['48/2', '24 + 6']
    """
    if not isinstance(text, str):
        raise EngineError(f"find_expressions() needs a str, got {type(text).__name__}; pass the model's answer text")
    found: list[tuple[int, str]] = []
    for match in _NOTE_RE.finditer(text):
        found.append((match.start(), match.group(1).strip()))
    # Blank the notes out (keeping offsets) so their insides are not matched again as equations.
    blanked = _NOTE_RE.sub(lambda m: " " * len(m.group(0)), text)
    for match in _EQUATION_RE.finditer(blanked):
        found.append((match.start(), match.group(0).strip()))
    found.sort(key=lambda item: item[0])
    return [expression for _, expression in found if expression and calculate(expression) is not None]
