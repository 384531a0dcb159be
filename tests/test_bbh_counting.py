"""object_counting: a generator in the benchmark's form with words of its own, a chain whose every total is the
model's (the calculator adds what the model wrote), gold chains that end at the gold, and a floor of zero.

Which thing is a fruit or an instrument is the model's own knowledge, so the scripted "model" that does every
step right needs to know BBH's nouns: it learns their kinds from the benchmark's items whose answer is everything
listed (all of one kind), and the test holds it to every item whose nouns it knows that way.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import gold_chain_steps

from engine.backends import ScriptedBackend
from engine.errors import EngineError
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.synthetic import belongings
from engine.tasks.spec import load_examples, load_spec

NUMBER_WORDS = {"a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def _kind_table() -> dict[str, str]:
    """Each noun of BBH's object_counting items -> the kind it counts as, read off the questions that ask about
    one kind and list only that kind's things (an answer equal to everything listed)."""
    spec, base = load_spec("bbh-object_counting")
    table: dict[str, str] = {}
    for item in load_examples(spec, base, 250):
        kind = re.search(r"How many (.+?) do I have", item.question).group(1)
        things = _things(item.question)
        if sum(count for count, _ in things) == int(item.gold):
            for _, noun in things:
                table.setdefault(noun, kind)
    return table


def _things(question: str) -> list[tuple[int, str]]:
    listed = question.split("I have ", 1)[1].split(". How many", 1)[0].replace(", and ", ", ").split(", ")
    return [(NUMBER_WORDS[t.split(" ", 1)[0]], t.split(" ", 1)[1]) for t in listed]


def perfect_step(request, kinds: dict[str, str], stuck: bool = False) -> str:
    kind = re.search(r"how many of it are (.+?) \(0", request.messages[0][1]).group(1)
    now, left = re.match(r"Now: (.*)\nLeft: (.*)", request.messages[-1][1], re.DOTALL).groups()
    total = int(now.split()[1])
    if left == "(none)":
        return f"The answer is {total}."
    first = left.split(", ")[0]
    count, noun = NUMBER_WORDS[first.split(" ", 1)[0]], first.split(" ", 1)[1]
    counts = count if kind == "objects" or kinds.get(noun) == kind else 0
    if stuck or not counts:
        text = f"{first}: {counts}. Total {total}"
    else:
        text = f"{first}: {counts}. <<{total}+{counts}={total + counts}>> Total {total + counts}"
    return text[len(request.continuation or ""):]


def test_the_chain_counts_every_real_item_when_each_step_is_right(tmp_path):
    kinds = _kind_table()
    summary = run_eval(EvalSettings(task="bbh-object_counting", out=str(tmp_path / "run"), floor=True),
                       backend=ScriptedBackend(lambda r: perfect_step(r, kinds)), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    known = [row for row in rows if all(noun in kinds for _, noun in _things(row["question"]))]
    assert summary["strategy"] == "tally" and summary["n"] == 250 and len(known) > 150
    assert all(row["correct"] for row in known)  # every item whose nouns the scripted model knows
    assert summary["floor"]["accuracy"] == 0.0


def test_a_total_the_model_never_raises_is_the_answer(tmp_path):
    kinds = _kind_table()
    summary = run_eval(EvalSettings(task="bbh-object_counting", out=str(tmp_path / "run")),
                       backend=ScriptedBackend(lambda r: perfect_step(r, kinds, stuck=True)), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert summary["accuracy"] == 0.0 and all(row["answer"] == "0" for row in rows)


def test_gold_chains_of_generated_items_end_at_their_gold(default_model_dir):
    completions, steps = gold_chain_steps("bbh-object_counting", "counting-gen", 6, default_model_dir)
    assert completions == steps


def test_generated_items_take_the_benchmarks_form():
    for item in belongings.generate(60, 7, 1):
        things = _things(item.question)
        kind = item.fields["kind"]
        assert len(things) == 7 and ", and " in item.question
        own = belongings.KINDS[kind]
        expected = sum(count for count, noun in things if kind == "objects" or noun in own or noun in own.values())
        assert int(item.gold) == expected


def test_an_unknown_kind_is_refused_with_its_name():
    with pytest.raises(EngineError, match="knows no kind 'tools': it knows animals, fruits, musical instruments"):
        belongings.generate(3, 4, kind="tools")
    assert {e.fields["kind"] for e in belongings.generate(10, 4, kind="animals")} == {"animals"}


def test_the_share_of_bbh_nouns_the_generator_also_uses():
    """The generator's words are its own; the README reports this share (nouns of BBH's 250 items, singular or
    plural as they appear, that the generator's lists also hold)."""
    spec, base = load_spec("bbh-object_counting")
    theirs = {noun for item in load_examples(spec, base, 250) for _, noun in _things(item.question)}
    ours = {word for words in belongings.KINDS.values() for pair in words.items() for word in pair}
    shared = theirs & ours
    assert len(shared) / len(theirs) < 0.2, sorted(shared)
