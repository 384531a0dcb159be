"""The safe calculator: expected values worked out by hand."""

import doctest
import time

import pytest

import engine.sandbox.calculator as calculator
from engine.sandbox.calculator import calculate, find_expressions
from engine.errors import EngineError


def test_doctests_pass():
    result = doctest.testmod(calculator)
    assert result.failed == 0 and result.attempted >= 4


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("3 + 4 * 2", "11"),  # precedence
        ("(3 + 4) * 2", "14"),  # parentheses
        ("2 * (3 + (4 - 1)) / 3", "4"),
        ("10 - 2 - 3", "5"),  # left associative
        ("2 ** 3 ** 2", "512"),  # power is right associative
        ("-2 ** 2", "-4"),  # unary minus binds looser than **
        ("-(3 - 5)", "2"),
        ("+7", "7"),
        ("48/2", "24"),  # integral division result has no ".0"
        ("10/4", "2.5"),
        ("1/3", "0.333333"),
        ("2/3", "0.666667"),
        ("1/3*3", "1"),  # exact fractions, not floats
        ("0.1 + 0.2", "0.3"),
        ("2.50 * 2", "5"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("2 ** -2", "0.25"),
        ("2 ** 0.5", "1.414214"),
        ("1/3000000", "3.33333e-07"),
        ("1,000 + 2,500", "3500"),  # thousands separators
        ("1,234,567.5 * 2", "2469135"),
        ("6 x 7", "42"),
        ("6 × 7", "42"),
        ("12 ÷ 4", "3"),
        ("2^10", "1024"),
        ("$15 * 4", "60"),
        ("3 + 4 * 2 =", "11"),  # a trailing '=' is ignored
        ("10**14", "100000000000000"),
    ],
)
def test_calculate(expression, expected):
    assert calculate(expression) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "1/0",
        "5 // 0",
        "5 % 0",
        "0 ** -1",
        "__import__('os')",
        "__import__('os').system('echo hacked')",
        "(1).__class__",
        "abs(-3)",
        "x",  # 'x' alone becomes '*': a syntax error
        "a + 1",
        "[1, 2]",
        "'a' * 3",
        "True + 1",
        "2j",
        "1 if 1 else 2",
        "3 +",
        "",
        "   ",
        "10**15",  # result magnitude guard
        "2 ** 101",  # exponent guard
        "(-8) ** (1/3)",  # complex result
        "9" * 120,  # a literal beyond the intermediate guard
        "1 + " * 200 + "1",  # longer than 500 characters
        "(" * 300 + "1" + ")" * 300,
    ],
)
def test_calculate_refuses(expression):
    assert calculate(expression) is None


def test_huge_power_is_refused_quickly():
    start = time.monotonic()
    assert calculate("2**10**10") is None
    assert calculate("9**9**9**9") is None
    assert calculate("(10**99)**100**100") is None
    assert time.monotonic() - start < 1.0


def test_names_and_calls_are_never_evaluated(monkeypatch):
    called = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: called.append(a))
    assert calculate("print(1)") is None
    assert called == []


def test_calculate_needs_a_string():
    with pytest.raises(EngineError, match="calculate"):
        calculate(12)  # type: ignore[arg-type]


def test_find_expressions_gsm8k_notes_and_equations():
    text = "She has <<48/2=24>>24 apples, then 24 + 6 = 30. So (2+3) x 4 = 20 and 1,000 - 1 = 999. Step 2 = done"
    assert find_expressions(text) == ["48/2", "24 + 6", "(2+3) x 4", "1,000 - 1"]


def test_find_expressions_skips_what_calculate_cannot_do():
    text = "<<a*2=4>> then <<3/0=0>> and 5 + 5 = 10 and x = 4"
    assert find_expressions(text) == ["5 + 5"]


def test_find_expressions_does_not_repeat_note_insides():
    assert find_expressions("<<3*4=12>>12") == ["3*4"]


def test_find_expressions_none():
    assert find_expressions("No arithmetic here, only 42.") == []
    with pytest.raises(EngineError):
        find_expressions(None)  # type: ignore[arg-type]
