"""Property-based tests for every answer parser and the number normaliser: they never raise, never hang on
input built to make a regex backtrack, and give a parsed answer back unchanged when parsed again."""

import re
import signal
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from engine.scoring.answers import normalize_number
from engine.scoring.parsers import PARSERS

FUNCTIONS = {**PARSERS, "normalize_number": normalize_number}
"""Every function that reads model text or a gold answer: the parsers task files may name, plus the normaliser."""

# Pieces that regexes with nested or overlapping quantifiers choke on when repeated thousands of times.
PIECES = ["1", "12,", "1,234", ",", " ", "-", ".", "-.", "1.", "1 ", "$", "$1,", "#### ", "#### 1,", "The answer is ",
          "answer: ", "answer is\n", "answer", "(A", "(", ")", "yes", "1\n", "1 |", "Row 1: ", "1-", "1)", "\n",
          "*", ". ", "12345678901234567890", "\t", "1e", "+", "\u2212", "4 1 3 2 ", "[1,"]

FAST = settings(deadline=timedelta(seconds=1), max_examples=100, suppress_health_check=[HealthCheck.too_slow])
"""Each example must finish within a second: a parser that backtracks catastrophically fails here."""

NAMES = sorted(FUNCTIONS)


@contextmanager
def time_limit(seconds: float = 1.0):
    """Interrupt the block after `seconds` (the regex engine checks for signals, so a backtracking match is
    stopped and fails the test instead of hanging it; hypothesis's deadline only judges examples that end)."""

    def stop(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(text=st.one_of(st.none(), st.text(), st.text(alphabet="0123456789,.-+$ \n#()ABanswerisThe:*|"),
                      st.integers().map(str), st.decimals(allow_nan=False, allow_infinity=False).map(str)))
@example(text="")
@example(text="The answer is")
@example(text="#### ")
def test_never_raises_and_returns_text_or_none(name, text):
    with time_limit():
        result = FUNCTIONS[name](text)
    assert result is None or (isinstance(result, str) and result)


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=timedelta(seconds=1), max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=3),
       times=st.one_of(st.integers(10, 600), st.integers(1_000, 20_000)),
       tail=st.sampled_from(["", "x", "5", " 5.", "\nThe answer is 7."]))
def test_never_hangs_on_long_repeated_runs(name, pieces, times, tail):
    with time_limit():
        FUNCTIONS[name]("".join(pieces) * times + tail)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", [
    "The answer is " * 10_000,
    "The answer is" * 10_000 + " 42",
    "answer:\n" * 10_000,
    "9" * 200_000,
    "9" * 40 + "x",
    "1," * 40 + "x",
    "1 " * 40 + "x",
    "1." * 40 + "x",
    "1," * 100_000 + "1",
    "1,234" * 50_000,
    " " * 200_000 + "5",
    "-" * 200_000,
    "." * 200_000,
    "-." * 100_000,
    "#### " * 50_000,
    "(" * 200_000,
    "1 2 3 4 " * 50_000 + "|",
])
def test_known_worst_cases_finish_quickly(name, text):
    with time_limit():
        FUNCTIONS[name](text)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("free-text", "answer-is")])
@FAST
@given(text=st.text(alphabet="0123456789,.-$ ()ABCyesnoTrueFalsvalidntmcohrdu\n#:*|", max_size=80))
@example(text="The answer is (B).")
@example(text="so the answer is yes")
@example(text="-0.50")
@example(text="4132\n2341\n1423\n3214")
def test_parsing_a_parsed_answer_gives_it_back(name, text):
    first = FUNCTIONS[name](text)
    if first is not None:
        assert FUNCTIONS[name](first) == first


@pytest.mark.parametrize("name", ["free-text", "answer-is"])
@FAST
@given(text=st.text(max_size=80))
@example(text=":")
def test_free_text_answers_are_one_trimmed_line(name, text):
    answer = FUNCTIONS[name](text)
    if answer is not None:
        assert "\n" not in answer and answer == answer.strip() and not answer.endswith(".")
        # said after "the answer is", it comes back, except a leading ":" which the phrase itself takes
        # ("The answer is :" reads as an empty answer, so the whole line is returned)
        assume(not answer.startswith(":"))
        assert FUNCTIONS[name](f"The answer is {answer}.") == answer


CANONICAL = re.compile(r"-?(0|[1-9]\d*)(\.\d*[1-9])?")


@FAST
@given(text=st.text(alphabet="0123456789,.-+$ \u2212", max_size=30))
def test_normalised_numbers_are_canonical_and_a_fixed_point(text):
    number = normalize_number(text)
    if number is not None:
        assert CANONICAL.fullmatch(number) and number != "-0"
        assert normalize_number(number) == number
        assert PARSERS["number"](number) == number


@FAST
@given(value=st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10**12, max_value=10**12))
def test_normalising_keeps_the_value_whatever_the_notation(value):
    plain = f"{value:f}"
    spellings = [plain, f"{value:,f}", f"{value:,.4f}", f" {plain}. ", plain + "0"]
    if value >= 0:
        spellings += [f"${value:,f}", f"+{plain}"]
    for spelling in spellings:
        number = normalize_number(spelling)
        assert number is not None and Decimal(number) == value, spelling


@FAST
@given(value=st.integers(min_value=-10**15, max_value=10**15))
def test_extractors_read_a_worked_solution_ending_in_a_number(value):
    text = f"First 3 + 4 = 7, then more steps.\nThe answer is {value:,}.\n#### {value}"
    assert PARSERS["number"](text) == str(value)
    assert PARSERS["gsm8k-strict"](text) == str(value)
    assert PARSERS["gsm8k-flexible"](text) == str(value)
