"""Answer extraction and normalisation: turn a model's free-form completion into a comparable answer.

Scoring is only as honest as extraction. Every extractor here returns `None` when it cannot find an answer
instead of guessing or raising, so that callers can count "unparsed" separately from "wrong" (a model that
rambles and a model that answers wrongly are different failures).

Completions can be huge (a looping model may emit 100k characters) or empty, so every regex here is linear:
no nested quantifiers, and each pattern is scanned once with `finditer`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from engine.errors import EngineError

__all__ = [
    "EXTRACTORS",
    "ANSWER_TYPES",
    "answers_match",
    "extract_answer_is",
    "extract_bool",
    "extract_choice",
    "extract_free_text",
    "extract_gsm8k_flexible",
    "extract_gsm8k_strict",
    "extract_number",
    "extract_nli",
    "extract_valid_invalid",
    "extract_yes_no",
    "normalize_number",
]

# A plain number once `$`, spaces and a trailing period are gone: optional sign, integer part either without
# separators or with correctly placed thousand separators, optional decimals (".5" is allowed too).
_NUMBER_RE = re.compile(r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")

# A number inside running text. A minus sign only counts when it does not follow a word character, so the
# "-" in "3-4" or "x-2" is a hyphen, not a sign; the Unicode minus (U+2212) is a sign too, as in normalize_number.
_NUMBER_IN_TEXT_RE = re.compile(
    r"(?:(?<![\w.])[-\u2212])?\$?(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|(?<!\d)\.\d+)"
)

# "the answer is X", "So the answer is: X", "Final answer: X". Only the phrase is matched (X, the rest of the
# line, is sliced afterwards) so that two phrases on one line are both found; the final `\s*` lets the answer
# sit on the next line ("The answer is:\n42").
_ANSWER_IS_RE = re.compile(r"\banswer(?:\s+is\b\s*:?|\s*:)\s*", re.IGNORECASE)

_TRAILING_JUNK = " \t\r\n\f\v*."

_CHOICE_RE = re.compile(r"\(([A-Z])\)")
_BARE_CHOICE_RE = re.compile(r"\(?([A-Z])\)?(?![\w])")
_YES_NO_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_BOOL_RE = re.compile(r"\b(true|false)\b", re.IGNORECASE)
_VALID_RE = re.compile(r"\b(valid|invalid)\b", re.IGNORECASE)
_NLI_RE = re.compile(r"\b(entailment|contradiction|neutral)\b", re.IGNORECASE)

# lm-evaluation-harness, lm_eval/tasks/gsm8k/gsm8k.yaml (EleutherAI):
#   filter "strict-match":     regex_pattern "#### (\-?[0-9\.\,]+)", then take_first
#   filter "flexible-extract": regex_pattern "(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select -1, then take_first
#   metric exact_match:        regexes_to_ignore [",", "\$", "(?s).*#### ", "\.$"]
_GSM8K_STRICT_RE = re.compile(r"#### (\-?[0-9\.\,]+)")
_GSM8K_FLEXIBLE_RE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The last match of `pattern` in `text`; one linear scan (no reversed-string tricks that break lookarounds)."""
    match = None
    for match in pattern.finditer(text):
        pass
    return match


def _lm_eval_cleanup(raw: str) -> str:
    """lm-eval's gsm8k `regexes_to_ignore`: drop every `,` and `$`, then one final `.`."""
    cleaned = raw.replace(",", "").replace("$", "")
    return cleaned[:-1] if cleaned.endswith(".") else cleaned


def normalize_number(text: str | None) -> str | None:
    """Canonical string for a number, so that "$1,234.50", "1234.5" and "1234.50" all compare equal as text.

    Strips surrounding spaces, `$`, thousand separators and one trailing period; drops trailing decimal zeros
    and leading integer zeros. Only plain integers and decimals are numbers here (no fractions, no "1e5").

    >>> normalize_number(" $1,234.50 ")
    '1234.5'
    >>> normalize_number("18.00"), normalize_number("-3"), normalize_number("1/2")
    ('18', '-3', None)
    """
    if text is None:
        return None
    s = text.strip().replace("\u2212", "-")  # the Unicode minus sign some models emit
    if s.endswith("."):
        s = s[:-1]
    s = s.replace("$", "").strip()  # "$ 5" -> "5"; inner spaces stay, so "18 20" is not a number
    if len(s) > 1000 or not _NUMBER_RE.fullmatch(s):
        return None
    sign = ""
    if s[0] in "+-":
        sign, s = ("-" if s[0] == "-" else ""), s[1:]
    s = s.replace(",", "")
    whole, _, frac = s.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    result = f"{whole}.{frac}" if frac else whole
    if result == "0":
        sign = ""  # "-0" and "-0.00" are zero
    return sign + result


def extract_number(text: str | None) -> str | None:
    """The last number in the text, normalised; the usual convention for "the final answer of a worked solution".

    >>> extract_number("She pays $1,234.50 in total.")
    '1234.5'
    >>> extract_number("3 - 10 = -7, so 18.")
    '18'
    """
    if not text:
        return None
    match = _last(_NUMBER_IN_TEXT_RE, text)
    return normalize_number(match.group(0)) if match else None


def _trim_answer(raw: str) -> str:
    """Strip whitespace, markdown bold and trailing periods around an answer ("**42**." -> "42").

    One pass each side (no strip-until-stable loop, which is quadratic on ". . . . ."); leading periods are
    kept so that ".5" survives.
    """
    return raw.lstrip().lstrip("*").lstrip().rstrip(_TRAILING_JUNK)


def extract_answer_is(text: str | None) -> str | None:
    """The X of the last "the answer is X" (or "answer: X"): the phrase few-shot CoT prompts teach models to end with.

    X runs to the end of its line, with trailing periods, spaces and `**` removed.

    >>> extract_answer_is("2 + 2 = 4. So the answer is 4.")
    '4'
    >>> extract_answer_is("Final Answer: (B)"), extract_answer_is("no verdict here")
    ('(B)', None)
    """
    if not text:
        return None
    ends = [match.end() for match in _ANSWER_IS_RE.finditer(text)]
    # Walk back from the last phrase; an empty one ("Final answer:" at the very end) does not hide an earlier
    # real answer. Only a phrase with nothing after it is skipped, so this slices at most a couple of lines.
    for end in reversed(ends):
        newline = text.find("\n", end)
        answer = _trim_answer(text[end : newline if newline != -1 else len(text)])
        if answer:
            return answer
    return None


def extract_gsm8k_strict(text: str | None) -> str | None:
    """lm-evaluation-harness GSM8K "strict-match": the number after the FIRST "#### ", cleaned, normalised.

    Kept byte-for-byte compatible with lm-eval's regex so that our numbers are comparable with published ones.

    >>> extract_gsm8k_strict("Half of 36 is 18.\\n#### 18")
    '18'
    >>> extract_gsm8k_strict("The answer is 18.") is None
    True
    """
    if not text:
        return None
    match = _GSM8K_STRICT_RE.search(text)
    if match is None:
        return None
    return normalize_number(_lm_eval_cleanup(match.group(1)))


def extract_gsm8k_flexible(text: str | None) -> str | None:
    """lm-evaluation-harness GSM8K "flexible-extract": the LAST number-looking run in the text, cleaned, normalised.

    Faithful to lm-eval: if the last run is not a number (for example a trailing "..."), the answer is unparsed
    (None) rather than falling back to an earlier number, exactly as lm-eval would score it wrong.

    >>> extract_gsm8k_flexible("Natalia sold 48 + 24 = 72 clips. The answer is $72.")
    '72'
    >>> extract_gsm8k_flexible("It costs 1,250 dollars")
    '1250'
    """
    if not text:
        return None
    match = _last(_GSM8K_FLEXIBLE_RE, text)
    if match is None:
        return None
    raw = match.group(1) or match.group(2)
    return normalize_number(_lm_eval_cleanup(raw))


def extract_choice(text: str | None) -> str | None:
    """A multiple-choice letter as "(B)" (BBH's gold format): after "the answer is" if present, else the last "(X)".

    >>> extract_choice("(A) is wrong because ... So the answer is (C).")
    '(C)'
    >>> extract_choice("the answer is B")
    '(B)'
    """
    if not text:
        return None
    answer = extract_answer_is(text)
    if answer:
        match = _CHOICE_RE.search(answer) or _BARE_CHOICE_RE.match(answer)
        if match:
            return f"({match.group(1)})"
    match = _last(_CHOICE_RE, text)
    return f"({match.group(1)})" if match else None


def _extract_word(text: str | None, pattern: re.Pattern[str]) -> str | None:
    """First matching word after "the answer is", else the last matching word anywhere; lowercased."""
    if not text:
        return None
    answer = extract_answer_is(text)
    if answer:
        match = pattern.search(answer)
        if match:
            return match.group(1).lower()
    match = _last(pattern, text)
    return match.group(1).lower() if match else None


def extract_yes_no(text: str | None) -> str | None:
    """"yes" or "no" (lowercase): after "the answer is" if present, else the last standalone yes/no word.

    >>> extract_yes_no("No wait, yes it does. So the answer is Yes.")
    'yes'
    >>> extract_yes_no("Nobody knows.") is None
    True
    """
    return _extract_word(text, _YES_NO_RE)


def extract_bool(text: str | None) -> str | None:
    """"True" or "False" (capitalised, as BBH boolean_expressions gold is): same preference as `extract_yes_no`.

    >>> extract_bool("not ( True ) and False is False. So the answer is False.")
    'False'
    """
    word = _extract_word(text, _BOOL_RE)
    return word.capitalize() if word else None


def extract_valid_invalid(text: str | None) -> str | None:
    """"valid" or "invalid" (BBH formal_fallacies gold): after "the answer is" if present, else the last one.

    >>> extract_valid_invalid("The argument is deductively valid? No. So the answer is invalid.")
    'invalid'
    """
    return _extract_word(text, _VALID_RE)


def extract_nli(text: str | None) -> str | None:
    """The NLI label (lowercase): after "the answer is" if present, else the last label word.

    >>> extract_nli("The hypothesis follows. The answer is Entailment.")
    'entailment'
    >>> extract_nli("no label here") is None
    True
    """
    return _extract_word(text, _NLI_RE)


def extract_free_text(text: str | None) -> str | None:
    """Free-form answer: the "the answer is X" phrase if present, else the last non-empty line.

    Trailing periods and surrounding whitespace are removed; None for empty or whitespace-only text.

    >>> extract_free_text("Sorting the words:\\napple banana cherry.\\n")
    'apple banana cherry'
    >>> extract_free_text("so the answer is ) ] }.")
    ') ] }'
    """
    if not text:
        return None
    answer = extract_answer_is(text)
    if answer:
        return answer
    stripped = text.rstrip()
    last_line = stripped[stripped.rfind("\n") + 1 :]
    answer = _trim_answer(last_line)
    return answer or None


EXTRACTORS: dict[str, Callable[[str | None], str | None]] = {
    "number": extract_number,
    "gsm8k-strict": extract_gsm8k_strict,
    "gsm8k-flexible": extract_gsm8k_flexible,
    "choice": extract_choice,
    "yes-no": extract_yes_no,
    "bool": extract_bool,
    "free-text": extract_free_text,
    "answer-is": extract_answer_is,
    "valid-invalid": extract_valid_invalid,
    "nli": extract_nli,
}
"""Extractor by the name task files use for it."""

ANSWER_TYPES = ("number", "choice", "yes-no", "bool", "free-text", "valid-invalid")
"""The `answer_type` values `answers_match` understands."""

_NUMBER_TOLERANCE = Decimal("1e-6")


def _collapse(text: str) -> str:
    """Casefold and collapse runs of whitespace, so "Yes" == "yes " and "a  b" == "a b"."""
    return " ".join(text.split()).casefold()


def _math_verify(pred: str, gold: str) -> bool:
    """Symbolic equality via math-verify ("1/2" vs "0.5"), when it is installed; False if absent or it fails."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return False
    try:
        return bool(verify(parse(gold), parse(pred)))
    except Exception:  # math-verify can fail on odd input or outside the main thread (it uses signals)
        return False


def answers_match(pred: str | None, gold: str, answer_type: str) -> bool:
    """Whether an extracted prediction equals the gold answer, under the comparison that suits `answer_type`.

    Numbers compare by value (18 == 18.0 == "$18", tolerance 1e-6); if either side is not a plain number
    (a fraction, LaTeX), math-verify decides when it is installed. Choices ignore parentheses ("B" == "(B)").
    Everything else is a case-insensitive, whitespace-collapsed exact match. An unparsed (None) prediction
    never matches.

    >>> answers_match("18.00", "18", "number"), answers_match("(b)", "(B)", "choice")
    (True, True)
    """
    if answer_type not in ANSWER_TYPES:
        raise EngineError(f"unknown answer_type {answer_type!r}; use one of {', '.join(ANSWER_TYPES)}")
    if pred is None or gold is None:
        return False
    if answer_type == "number":
        p, g = normalize_number(pred), normalize_number(gold)
        if p is not None and g is not None:
            try:
                return abs(Decimal(p) - Decimal(g)) <= _NUMBER_TOLERANCE
            except InvalidOperation:  # pragma: no cover - normalize_number only returns valid decimals
                return False
        return _math_verify(pred, gold)
    if answer_type == "choice":
        return _collapse(pred).strip("()") == _collapse(gold).strip("()")
    return _collapse(pred) == _collapse(gold)
