"""Generated tasks: deterministic from a seed, gold recomputable from fields, sudoku scored by the rules."""

from __future__ import annotations

import itertools
import operator
import re
import sys

import pytest

from engine.errors import EngineError
from engine.examples import Example
from engine.scoring.parsers import PARSERS, is_correct
from engine.scoring import sudoku as sudoku_rules
from engine.synthetic import GENERATORS, arithmetic, last_letters, shuffled_objects, sudoku
from engine.tasks.spec import load_examples, load_spec, task_names

PREFIXES = {"arithmetic": "arith", "shuffled-objects": "shuffle", "last-letters": "letters", "sudoku": "sudoku",
            "boolean-expressions": "boolean", "arithmetic-two": "arith-two", "navigation": "navigate",
            "trading": "trading", "brackets": "brackets", "word-lists": "wordlist", "belongings": "belongings", "orderings": "orderings"}
CHAIN_STEPS = {"boolean-expressions", "arithmetic-two", "navigation", "trading", "brackets", "word-lists", "belongings", "orderings"}
"""Generators whose gold steps are the texts a chain's model steps write (BIG-Bench-Hard's forms, one state at a
time, ending with the answer line), not one intermediate result per depth."""
MODULES = {name: sys.modules[function.__module__] for name, function in GENERATORS.items()}
"""Each built-in generator's module: its MAX_DEPTH and the real item its docstring shows."""


# ---------------------------------------------------------------- every generator


def task_of(name: str):
    """The task file that serves generator `name`: the one place its answer type and parser are said."""
    specs = [load_spec(task) for task in task_names()]
    (found,) = [(spec, base) for spec, base in specs if spec.source.generator == name]
    return found


def wrong_answer(item: Example, answer_type: str) -> str:
    if answer_type == "number":
        return str(int(item.gold) + 1)
    if answer_type == "sudoku":
        return item.gold.translate(str.maketrans("12", "21"))  # keeps the rules, breaks a clue
    if answer_type == "choice":
        return "(A)" if item.gold != "(A)" else "(B)"
    flipped = {"True": "False", "False": "True", "Yes": "No", "No": "Yes"}
    return flipped.get(item.gold, item.gold + "x")


def written(answer: str, answer_type: str) -> str:
    """An answer as a model would write it at the end of its reasoning."""
    if answer_type == "sudoku":
        return f"Filling the blanks:\n{sudoku.show(answer)}\n"
    return f"Let me work through it step by step.\nSo the answer is {answer}."


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_task_file_scores_generated_gold_right_and_wrong_answers_wrong(name):
    spec, base = task_of(name)
    parse = PARSERS[spec.parser]
    for depth in (1, 3):
        for item in load_examples(spec, base, limit=8, depth=depth, seed=1):
            assert is_correct(parse(written(item.gold, spec.answer_type)), item, spec.answer_type)
            assert not is_correct(parse(written(wrong_answer(item, spec.answer_type), spec.answer_type)), item,
                                  spec.answer_type)
            assert not is_correct(parse("I am not sure."), item, spec.answer_type)


def test_sudoku_task_accepts_any_solution_not_only_the_grid_it_was_cut_from():
    spec, base = task_of("sudoku")
    for item in load_examples(spec, base, limit=50, depth=12, seed=0):
        for digits in itertools.permutations("1234"):
            other = item.gold.translate(str.maketrans("1234", "".join(digits)))
            if other != item.gold and sudoku_rules.verify(item.fields["grid"], other):
                assert is_correct(PARSERS[spec.parser](written(other, spec.answer_type)), item, spec.answer_type)
                return
    pytest.fail("no depth-12 puzzle with a second solution among 50 items")


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_item_each_module_docstring_shows_is_what_it_generates(name):
    module = MODULES[name]
    call = re.search(r"`generate\(([^`]*)\)\[0\]`", module.__doc__).group(1)
    shown = module.__doc__[module.__doc__.index("Example("):]
    shown = shown[: shown.rindex(")") + 1]
    assert eval(shown, {"Example": Example}) == eval(f"generate({call})[0]", {"generate": module.generate})


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_items_and_other_seed_differs(name):
    module = MODULES[name]
    first = module.generate(6, 3, seed=5)
    assert first == module.generate(6, 3, seed=5)
    assert repr(first) == repr(module.generate(6, 3, seed=5))  # byte for byte, dict order included
    assert [e.question for e in first] != [e.question for e in module.generate(6, 3, seed=6)]
    assert [e.question for e in first] != [e.question for e in module.generate(6, 4, seed=5)]
    assert module.generate(3, 3, seed=5) == first[:3]  # asking for more items keeps the first ones
    assert len({e.question for e in first}) > 1


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_ids_and_shapes(name):
    module = MODULES[name]
    for depth in (1, 2, 5, module.MAX_DEPTH):
        items = module.generate(4, depth, seed=2)
        assert [e.id for e in items] == [f"{PREFIXES[name]}-d{depth}-s2-{i}" for i in range(4)]
        for e in items:
            assert isinstance(e, Example) and e.question and e.gold
            if name == "sudoku":
                assert e.gold_steps is None and e.sub_questions is None
            elif name == "orderings":  # the lines of a program the sandbox runs: the things, then conditions
                assert e.gold_steps[0].startswith("[") and all("pos[" in s for s in e.gold_steps[1:])
                assert e.gold_steps[-1].startswith(f"({'ABCDEFG'[depth - 1]}) ") and e.sub_questions is None
            elif name in CHAIN_STEPS:
                assert e.gold_steps[-1].endswith(f"The answer is {e.gold}.") and e.sub_questions is None
                assert all(isinstance(s, str) and s for s in e.gold_steps)
            else:
                assert len(e.gold_steps) == depth and len(e.sub_questions) == depth
                assert e.gold_steps[-1] == e.gold
                assert all(isinstance(s, str) for s in e.gold_steps + e.sub_questions)


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"count": 3, "depth": 0}, r"depth must be between 1 and \d+, got 0"),
        ({"count": 3, "depth": 999}, r"depth must be between 1 and \d+, got 999"),
        ({"count": 3, "depth": "3"}, r"depth must be between 1 and \d+, got '3'"),
        ({"count": 3, "depth": True}, r"depth must be .*got True"),
        ({"count": 0, "depth": 2}, r"count must be a whole number of at least 1, got 0"),
        ({"count": -4, "depth": 2}, r"count must be .*got -4"),
        ({"count": 2.5, "depth": 2}, r"count must be .*got 2.5"),
        ({"count": 3, "depth": 2, "seed": "x"}, r"seed must be a whole number, got 'x'"),
    ],
)
def test_bad_arguments_raise_engine_error(name, kwargs, pattern):
    with pytest.raises(EngineError, match=pattern) as info:
        GENERATORS[name](**kwargs)
    assert "\n" not in str(info.value)


def test_depth_limits():
    assert len(sudoku.generate(1, 12)[0].fields["grid"].replace(".", "")) == 4
    with pytest.raises(EngineError, match="depth must be between 1 and 12, got 13"):
        sudoku.generate(1, 13)
    for module in (arithmetic, shuffled_objects, last_letters):
        assert len(module.generate(1, module.MAX_DEPTH)[0].gold_steps) == module.MAX_DEPTH


# ---------------------------------------------------------------- arithmetic

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
WORDS = {"+": "Add {}.", "-": "Subtract {}.", "*": "Multiply by {}.", "/": "Divide by {}."}


def test_arithmetic_hand_worked_item():
    # start 2; 2 / 2 = 1; 1 * 7 = 7; 7 * 3 = 21
    item = arithmetic.generate(1, 3, seed=0)[0]
    assert item.question == "Start with 2. Divide by 2. Multiply by 7. Multiply by 3. What is the result?"
    assert item.fields == {"start": 2, "ops": [["/", 2], ["*", 7], ["*", 3]]}
    assert item.gold == "21"
    assert item.gold_steps == ("1", "7", "21")
    assert item.sub_questions == ("What is 2 / 2?", "What is 1 * 7?", "What is 7 * 3?")


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_arithmetic_gold_recomputed_from_fields(seed):
    for depth in (1, 4, 9):
        for item in arithmetic.generate(20, depth, seed=seed):
            value = item.fields["start"]
            assert 1 <= value <= 9
            steps, subs = [], []
            for op, x in item.fields["ops"]:
                assert 1 <= x <= 9
                subs.append(f"What is {value} {op} {x}?")
                result = OPS[op](value, x)
                assert result == int(result) and 0 <= result <= 99  # whole, non-negative, modest
                value = int(result)
                steps.append(str(value))
            assert tuple(steps) == item.gold_steps and tuple(subs) == item.sub_questions
            assert item.gold == str(value)
            words = [f"Start with {item.fields['start']}."] + [WORDS[op].format(x) for op, x in item.fields["ops"]]
            assert item.question == " ".join(words + ["What is the result?"])


def test_arithmetic_uses_every_operation():
    ops = {op for item in arithmetic.generate(30, 4) for op, _ in item.fields["ops"]}
    assert ops == {"+", "-", "*", "/"}


# ---------------------------------------------------------------- shuffled objects


def test_shuffled_objects_hand_worked_item():
    # Alice yellow, Bob purple, Claire orange.
    # swap Alice-Bob: Claire orange; swap Bob-Claire: Claire gets Bob's yellow; swap Alice-Bob: Claire yellow
    item = shuffled_objects.generate(1, 3, seed=0)[0]
    assert item.fields["initial"] == {"Alice": "yellow", "Bob": "purple", "Claire": "orange"}
    assert item.fields["swaps"] == [["Alice", "Bob"], ["Bob", "Claire"], ["Alice", "Bob"]]
    assert item.fields["target"] == "Claire"
    assert item.gold_steps == ("orange", "yellow", "yellow")
    assert item.gold == "yellow"
    assert item.question.startswith("Alice, Bob and Claire each hold one ball.")
    assert "Claire has an orange ball" in item.question
    assert "Swap 2: Bob and Claire swap their balls." in item.question
    assert item.question.endswith("what color ball does Claire have? Answer with the color.")
    assert item.sub_questions[1] == "After swap 2, what color ball does Claire have?"


@pytest.mark.parametrize("people", [2, 3, 5, 7])
def test_shuffled_objects_gold_recomputed_from_fields(people):
    for depth in (1, 3, 7):
        for item in shuffled_objects.generate(15, depth, seed=3, people=people):
            names, initial = item.fields["people"], item.fields["initial"]
            assert len(names) == people and list(initial) == names
            assert len(set(initial.values())) == people  # distinct colors
            holding = dict(initial)
            steps = []
            for n, (a, b) in enumerate(item.fields["swaps"], 1):
                assert a != b and a in names and b in names
                assert f"Swap {n}: {a} and {b} swap their balls." in item.question
                holding[a], holding[b] = holding[b], holding[a]
                steps.append(holding[item.fields["target"]])
            assert tuple(steps) == item.gold_steps and item.gold == steps[-1]
            assert len(item.fields["swaps"]) == depth


def test_shuffled_objects_people_argument():
    assert shuffled_objects.generate(1, 2, people=5)[0].id == "shuffle5-d2-s0-0"
    for bad in (1, 8, "3"):
        with pytest.raises(EngineError, match=f"people must be between 2 and 7, got {bad!r}"):
            shuffled_objects.generate(1, 2, people=bad)


# ---------------------------------------------------------------- last letters


def test_last_letters_hand_worked_item():
    item = last_letters.generate(1, 3, seed=0)[0]
    assert item.question == 'Take the last letters of the words in "James Samantha William" and concatenate them.'
    assert item.gold == "sam"
    assert item.gold_steps == ("s", "sa", "sam")
    assert item.sub_questions == (
        'What is the last letter of "James"?',
        'What is the last letter of "Samantha"?',
        'What is the last letter of "William"?',
    )


def test_last_letters_gold_recomputed_from_fields():
    assert len(last_letters.NAMES) == len(set(last_letters.NAMES)) >= 90
    for depth in (1, 5, 12):
        for item in last_letters.generate(20, depth, seed=9):
            words = item.fields["words"]
            assert len(words) == len(set(words)) == depth
            assert f'"{" ".join(words)}"' in item.question
            assert item.gold == "".join(w[-1] for w in words).lower()
            assert item.gold_steps == tuple(item.gold[: k + 1] for k in range(depth))


# ---------------------------------------------------------------- sudoku

GOLD = "4132234114233214"  # generate(1, 4, seed=0)[0], worked by hand below
PUZZLE = "4..2234114.3321."


def test_sudoku_hand_worked_item():
    item = sudoku.generate(1, 4, seed=0)[0]
    assert item.fields == {"grid": PUZZLE}
    assert item.gold == GOLD
    assert "\n4..2\n2341\n14.3\n321.\n" in item.question
    assert item.question.endswith("Write the completed grid as 4 lines of 4 digits.")
    # row 1 "4..2" lacks 1 and 3; column 2 holds 3 (row 2) so cell (1,2) is 1, (1,3) is 3
    # row 3 "14.3" lacks 2; row 4 "321." lacks 4
    assert sudoku_rules.verify(PUZZLE, "4132" "2341" "1423" "3214")


@pytest.mark.parametrize("depth", range(1, 13))
def test_sudoku_puzzles_cut_from_a_valid_grid(depth):
    for item in sudoku.generate(10, depth, seed=4):
        grid = item.fields["grid"]
        assert len(grid) == 16 and grid.count(".") == depth
        assert all(g in (".", s) for g, s in zip(grid, item.gold))
        assert sudoku_rules.verify(grid, item.gold)
        assert sudoku_rules.parse_grid(sudoku.show(item.gold)) == item.gold


def test_sudoku_verify_rejects_rule_breaks():
    blank = "." * 16
    # swapping all 1s and 2s keeps the rules but breaks the clues
    relabelled = GOLD.translate(str.maketrans("12", "21"))
    assert sudoku_rules.verify(blank, relabelled) and not sudoku_rules.verify(PUZZLE, relabelled)
    # changing one clue cell
    assert not sudoku_rules.verify(PUZZLE, "3" + GOLD[1:])
    # swap two cells of one column: columns still fine, rows 1 and 2 now hold a duplicate
    rows = GOLD[:4].replace("4", "2", 1), GOLD[4:8].replace("2", "4", 1)
    row_dup = rows[0] + rows[1] + GOLD[8:]
    assert row_dup[:8] == "2132" "4341"
    assert not sudoku_rules.verify(blank, row_dup)
    # a cyclic Latin square: every row and column is fine, the top-left box holds 1, 2, 2, 3
    assert not sudoku_rules.verify(blank, "1234" "2341" "3412" "4123")
    for bad in (None, "", GOLD[:15], GOLD + "1", GOLD[:15] + "5", GOLD[:15] + ".", 4132234114233214):
        assert not sudoku_rules.verify(PUZZLE, bad)
    with pytest.raises(EngineError, match="sudoku puzzle must be 16 characters"):
        sudoku_rules.verify("4..2", GOLD)


@pytest.mark.parametrize(
    "text",
    [
        "4132\n2341\n1423\n3214",
        "Sure! Here is the solution:\n\n4 1 3 2\n2 3 4 1\n1 4 2 3\n3 2 1 4\n\nHope this helps.",
        "Row 1: 4 1 3 2\nRow 2: 2 3 4 1\nRow 3: 1 4 2 3\nRow 4: 3 2 1 4",
        "**Row 1:** 4132\n**Row 2:** 2341\n**Row 3:** 1423\n**Row 4:** 3214\n",
        "1) 4132\n2) 2341\n3) 1423\n4) 3214",
        "| 4 | 1 | 3 | 2 |\n|---|---|---|---|\n| 2 | 3 | 4 | 1 |\n| 1 | 4 | 2 | 3 |\n| 3 | 2 | 1 | 4 |",
        "[[4,1,3,2],[2,3,4,1],[1,4,2,3],[3,2,1,4]]",
        "The answer is: 4132 2341 1423 3214.",
        "4132234114233214",
        "The puzzle:\n4..2\n2341\n14.3\n321.\nFilled in:\n4132\n2341\n1423\n3214",
        "First try:\n1234\n3412\n2143\n4321\nNo, wrong. Final:\n4132\n2341\n1423\n3214\n",
        "4132\n2341\n1423\n3214\n\n1. Every row has 1-4.\n2. Every column too.",
        "In step 4\n4132\n2341\n1423\n3214",
        "```\n41 32\n23 41\n-----\n14 23\n32 14\n```",
    ],
)
def test_parse_grid_messy_text(text):
    assert sudoku_rules.parse_grid(text) == GOLD


@pytest.mark.parametrize(
    "text",
    [None, "", "I don't know.", "4..2\n2341\n14.3\n321.", "4132\n2341\n1423\n321", "4132 2341 1423 3254", 12],
)
def test_parse_grid_finds_nothing(text):
    assert sudoku_rules.parse_grid(text) is None


def test_synthetic_text_is_plain():
    for generate in GENERATORS.values():
        for item in generate(5, 2):
            assert not re.search(r"[^\x20-\x7e\n]", item.question)
