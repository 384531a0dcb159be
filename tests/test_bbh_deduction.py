"""logical_deduction as a program the model writes line by line: a generator in the benchmark's form with scenes
and things of its own, a chain that only lays out and assembles the model's lines into a fixed search the sandbox
runs, gold chains that end at the gold, a floor of zero, and model programs that misbehave stopped and counted.

The scripted "model" that writes every line right translates each sentence of BBH's own items into its
condition (the translation below is this test's, reading only the prompt it is shown).
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import gold_chain_steps

from engine.backends import ScriptedBackend
from engine.chains.follow import first_sentence
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.synthetic import orderings
from engine.tasks.spec import load_examples, load_spec

FILES = ("bbh-logical_deduction_three_objects", "bbh-logical_deduction_five_objects",
         "bbh-logical_deduction_seven_objects")
ORDINALS = {word: i + 1 for i, word in enumerate(orderings.ORDINALS)}
BEFORE = ("to the left of", "older than", "less expensive than", "above")
AFTER = ("to the right of", "newer than", "more expensive than", "below")
FIRST = ("the leftmost", "the oldest", "the cheapest", "first")
LAST = ("the rightmost", "the newest", "the most expensive", "last")


def _names(naming: str) -> list[str]:
    listed = naming.split(": ", 1)[1].rstrip(".").replace(", and ", ", ").replace(" and ", ", ").split(", ")
    return [re.sub(r"^(a|an) ", "", thing) for thing in listed]


def condition(sentence: str, things: list[str]) -> str:
    """A clue or an option of BBH's, as its condition on pos and N."""
    text = re.sub(r"^\([A-G]\) ", "", sentence.rstrip("."))
    text = re.sub(r"^The ", "", text)
    subject = max((t for t in things if text.startswith(t + " ")), key=len)
    rest = re.sub(r"^(is|are|finished) ", "", text[len(subject) + 1:])
    for relation in BEFORE + AFTER:
        if rest.startswith(relation + " "):
            other = re.sub(r"^the ", "", rest[len(relation) + 1:])
            return f'pos["{subject}"] {"<" if relation in BEFORE else ">"} pos["{other}"]'
    if rest in FIRST:
        return f'pos["{subject}"] == 1'
    if rest in LAST:
        return f'pos["{subject}"] == N'
    match = re.fullmatch(r"(?:the )?(\w+)(?: from the (left|right)|-(oldest|newest|cheapest|most expensive|to-last))?",
                         rest)
    place, side, superlative = match.groups()
    if side == "right" or superlative in ("newest", "most expensive", "to-last"):
        return f'pos["{subject}"] == N - {ORDINALS[place] - 1}'
    return f'pos["{subject}"] == {ORDINALS[place]}'


def perfect_line(request, misbehave: str | None = None) -> str:
    user = request.messages[-1][1]
    if "Python list of their names" in request.messages[0][1]:
        return "[" + ", ".join(f'"{name}"' for name in _names(user.strip())) + "]"
    things = [thing.strip() for thing in json.loads(re.search(r"Things: (.*)", user).group(1))]
    sentence = first_sentence(re.search(r"Left:\s(.*)", user, re.DOTALL).group(1))
    if misbehave and sentence.startswith("(A)"):
        return f"{sentence} {misbehave}"
    return f"{sentence} {condition(sentence, things)}"


@pytest.mark.parametrize("task", FILES)
def test_a_model_that_writes_every_line_right_scores_every_real_item(task, tmp_path):
    summary = run_eval(EvalSettings(task=task, out=str(tmp_path / "run"), floor=True),
                       backend=ScriptedBackend(perfect_line), progress=False)
    assert summary["strategy"] == "program" and summary["n"] == 250 and summary["accuracy"] == 1.0
    assert summary["floor"]["accuracy"] == 0.0


def test_a_name_quoted_with_the_space_it_had_in_the_sentence_is_the_same_name(tmp_path):
    """`[" tractor", ...]` and `pos[" tractor"]`: in the sentence " tractor" is one token, and the model copies
    it, space and all (seen on the real file); only that space is forgiven, a misspelt name still fails."""
    def spaced(request):  # as on the real file: the list spaced, some conditions not
        text = perfect_line(request)
        listing = "Python list of their names" in request.messages[0][1]
        return re.sub(r'"([^"]+)"', r'" \1"', text) if listing or len(text) % 2 else text

    def misspelt(request):
        text = perfect_line(request)
        return text.replace('pos["', 'pos["x', 1)

    task = FILES[0]
    assert run_eval(EvalSettings(task=task, limit=20, out=str(tmp_path / "spaced")),
                    backend=ScriptedBackend(spaced), progress=False)["accuracy"] == 1.0
    assert run_eval(EvalSettings(task=task, limit=20, out=str(tmp_path / "misspelt")),
                    backend=ScriptedBackend(misspelt), progress=False)["accuracy"] == 0.0


def test_a_wrong_condition_gives_the_answer_it_implies(tmp_path):
    """Every clue written the wrong way round: the program finds the order those lines allow (or none), and the
    answer is what the model's own lines say, not the benchmark's."""
    def reversed_clues(request):
        text = perfect_line(request)
        return text.replace(" < pos", " > pos") if " < pos" in text else text.replace(" > pos", " < pos")

    summary = run_eval(EvalSettings(task=FILES[0], limit=60, out=str(tmp_path / "run")),
                       backend=ScriptedBackend(reversed_clues), progress=False)
    assert summary["accuracy"] < 0.6


@pytest.mark.parametrize("bad, error", [("[0 for _ in iter(int, 1)] == 1", "time"),
                                        ('open("/etc/hostname").read() == ""', "file access")])
def test_a_program_that_loops_or_reads_files_is_stopped_and_counted(bad, error, tmp_path):
    summary = run_eval(EvalSettings(task=FILES[0], limit=2, out=str(tmp_path / "run")),
                       backend=ScriptedBackend(lambda r: perfect_line(r, misbehave=bad)), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert summary["accuracy"] == 0.0 and summary["step_errors"].get("program") == 2
    for row in rows:
        (run,) = [step for step in row["steps"] if step["kind"] == "program"]
        assert run["error"] and error in run["error"].lower()


@pytest.mark.parametrize("depth", [3, 5])
def test_gold_chains_of_generated_items_end_at_their_gold(depth, default_model_dir):
    completions, steps = gold_chain_steps(FILES[0], "deduction-gen", depth, default_model_dir, count=8)
    assert completions == steps


def test_generated_items_take_the_benchmarks_form_and_have_one_answer():
    for item in orderings.generate(30, 5, 1):
        assert item.question.startswith("The following paragraphs each describe a set of five objects")
        assert item.question.count("\n(") == 5 and re.fullmatch(r"\([A-E]\)", item.gold)
        things = json.loads(item.gold_steps[0])
        conditions = [step.rsplit(". ", 1)[1] for step in item.gold_steps[1:]]
        options = conditions[-5:]
        fits = [pos for pos in ({t: i + 1 for i, t in enumerate(o)} for o in __import__("itertools").permutations(things))
                if all(orderings.holds(c, pos) for c in conditions[:-5])]
        assert len(fits) == 1 and [orderings.holds(c, fits[0]) for c in options].count(True) == 1
        assert "ABCDE"[[orderings.holds(c, fits[0]) for c in options].index(True)] == item.gold[1]


def test_the_generator_uses_no_thing_of_the_benchmark():
    words = set()
    for task in FILES:
        spec, base = load_spec(task)
        for item in load_examples(spec, base, 250):
            naming = next(s for s in re.findall(r"[^.]*\.", item.question) if ":" in s)
            words |= set(_names(naming.strip()))
    ours = {thing for scene in orderings.SCENES for thing in scene.things}
    assert not ours & words, sorted(ours & words)
