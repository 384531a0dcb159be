"""The four BIG-Bench-Hard families of part 1: generators in the benchmark's form with words of their own, chains
whose every state is the model's, gold chains that end at the gold, and floors at chance or below.

The chains run here on all of each real BBH file's items with scripted "models": one that writes every step
right (reading only the prompt it is shown) must score 100%, one that writes nothing scores the floor, and one
that writes the right form but never changes the state gets what its state says, not the gold: the answer comes
from what the model wrote, never from the chain's own code.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import gold_chain_steps

from engine.backends import ScriptedBackend
from engine.chains.follow import first_sentence, follow_first
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.synthetic import boolean_expressions, multistep_arithmetic, navigation, trading
from engine.tasks.spec import load_examples, load_spec

FILES = {  # BBH task -> (its training task, a depth of that task's generator)
    "bbh-boolean_expressions": ("boolean-gen", 9),
    "bbh-multistep_arithmetic_two": ("arithmetic-two-gen", 4),
    "bbh-navigate": ("navigate-gen", 6),
    "bbh-tracking_shuffled_objects_three_objects": ("tracking-gen", 3),
    "bbh-tracking_shuffled_objects_five_objects": ("tracking-gen", 5),
    "bbh-tracking_shuffled_objects_seven_objects": ("tracking-gen", 7),
}
_HEADINGS = ("north", "east", "south", "west")


def _user(request) -> str:
    return request.messages[-1][1]


def _system(request) -> str:
    return request.messages[0][1]


def perfect_step(request, stuck: bool = False) -> str:
    """What a model that does each step right writes, from the prompt alone (`stuck`: it never changes the state)."""
    user = _user(request)
    if "Rewrite the expression" in _system(request):  # stuck: it answers with the first value it sees
        done = boolean_expressions.rewrite(user.split())
        if stuck:
            return f"The answer is {re.search('True|False', user).group(0)}."
        return f"The answer is {done[0]}." if len(done) == 1 else " ".join(done)
    if "Do one calculation" in _system(request):
        note, after = multistep_arithmetic.rewrite(user)
        if stuck:
            after = re.search(r"-?\d+", user).group(0)
        full = f"{note} The answer is {after.strip('()')}." if " " not in after.strip("()") else f"{note} {after}"
        return full[len(request.continuation or ""):]
    if user.startswith("Now: x "):
        now, left = re.match(r"Now: (.*)\nLeft: (.*)", user, re.DOTALL).groups()
        x, y, facing = re.match(r"x (-?\d+), y (-?\d+), facing (\w+)", now).groups()
        x, y, heading = int(x), int(y), _HEADINGS.index(facing)
        if left == "nothing":
            return f"The answer is {'Yes' if (x, y) == (0, 0) else 'No'}."
        sentence = first_sentence(left)
        note = ""
        if sentence.startswith("Turn"):
            heading = (heading + {"Turn right.": 1, "Turn around.": 2, "Turn left.": 3}[sentence]) % 4
        elif sentence.startswith("Take"):
            count, way = re.match(r"Take (\d+) steps?(?: (\w+))?\.", sentence).groups()
            offset = {"forward": 0, "right": 1, "backward": 2, "left": 3}[way or "forward"]
            dx, dy = {0: (0, 1), 1: (1, 0), 2: (0, -1), 3: (-1, 0)}[(heading + offset) % 4]
            old = x if dx else y
            new = old + (dx or dy) * int(count)
            note = f" <<{old}{'+' if (dx or dy) > 0 else '-'}{count}={new}>>"
            if not stuck:
                x, y = (new, y) if dx else (x, new)
        full = f"{sentence}{note} x {x}, y {y}, facing {_HEADINGS[heading]}"
        return full[len(request.continuation or ""):]
    now, left, options = re.match(r"Now: (.*)\nLeft:\s(.*)\nOptions: (.*)", user, re.DOTALL).groups()
    holding = {} if now == "(nobody yet)" else dict(pair.rsplit(" ", 1) for pair in now.split(", "))
    sentence = first_sentence(left)
    if sentence.startswith(("First,", "Then,", "Finally,")):
        a, b = re.match(r"\w+, (\w+) and (\w+) ", sentence).groups()
        x, y = (holding[a], holding[b]) if stuck else (holding[b], holding[a])
        return f"{sentence} {a} had {holding[a]}, {b} had {holding[b]}, so {a} {x}, {b} {y}."
    letters = dict((thing.strip(), letter) for letter, thing in re.findall(r"\(([A-G])\) ([^\n]*)", options))
    person = sentence.split()[0]
    thing = [t for t in sorted(letters, key=len, reverse=True) if sentence.rstrip(".").endswith(" " + t)]
    if thing and person not in holding:  # who has what: the letter of the option it is
        return f"{sentence} {person} {letters[thing[0]]}."
    person = re.search(r", (\w+) (?:has|is|plays|owns|grows|holds)", left).group(1)
    return f"So {person} {holding[person]}. The answer is ({holding[person]})."


CALCULATE = {"bbh-multistep_arithmetic_two": "calculate"}
"""The scripted model here writes multistep's `calculate` steps (the generator's gold steps); `place`, its
default chain, has its own scripted model in test_bbh_arithmetic_place.py."""


@pytest.mark.parametrize("task", FILES)
def test_a_model_that_does_each_step_right_scores_every_real_item(task, tmp_path):
    summary = run_eval(EvalSettings(task=task, strategy=CALCULATE.get(task), out=str(tmp_path / "run"), floor=True),
                       backend=ScriptedBackend(perfect_step), progress=False)
    assert summary["n"] == 250 and summary["accuracy"] == 1.0, summary["strategy"]
    spec, _ = load_spec(task)
    assert summary["strategy"] == CALCULATE.get(task, spec.default_strategy)  # else each file's own chain
    assert summary["floor"]["accuracy"] <= (spec.chance or 0.0) + 0.05 and summary["floor"]["accuracy"] == 0.0


@pytest.mark.parametrize("task", FILES)
def test_the_answer_is_the_models_own_state_not_the_chains(task, tmp_path):
    """A model that writes each step in form but never changes the state: the chain follows it to its answer."""
    summary = run_eval(EvalSettings(task=task, strategy=CALCULATE.get(task), out=str(tmp_path / "run")),
                       backend=ScriptedBackend(lambda request: perfect_step(request, stuck=True)), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert summary["accuracy"] < 0.75 and summary["unparsed_rate"] < 0.05
    if task.startswith("bbh-tracking"):  # nobody ever swapped: every answer is the asked person's first letter
        for row in rows:
            people = re.match(r"(.*?) are ", row["question"]).group(1).replace(", and ", ", ").split(", ")
            asked = re.search(r"At the end of [^,]*, (\w+)", row["question"]).group(1)
            assert row["answer"] == f"({'ABCDEFG'[people.index(asked)]})"


@pytest.mark.parametrize("task", FILES)
def test_gold_chains_of_generated_items_end_at_their_gold(task, default_model_dir):
    completions, steps = gold_chain_steps(task, *FILES[task], default_model_dir, strategy=CALCULATE.get(task))
    assert completions == steps  # one pair per gold step, each prompt the eval's


def _bbh(task: str) -> list[dict]:
    spec, base = load_spec(task)
    return [{"input": e.question, "target": e.gold} for e in load_examples(spec, base, 250)]


def test_the_generators_rules_reach_every_bbh_answer():
    """The rules the gold steps follow are the benchmark's: applied to BBH's own items they give its targets."""
    for row in _bbh("bbh-boolean_expressions"):
        assert boolean_expressions.solve(row["input"].removesuffix(" is"))[-1] == row["target"]
    for row in _bbh("bbh-multistep_arithmetic_two"):
        assert multistep_arithmetic.solve(row["input"].removesuffix(" ="))[-1].endswith(f" {row['target']}.")


def test_generated_items_take_the_benchmarks_form():
    booleans = boolean_expressions.generate(50, 9, 1)
    assert all(len(e.question.split()) == 10 and e.question.endswith(" is") for e in booleans)
    assert {e.gold for e in booleans} == {"True", "False"}
    sums = multistep_arithmetic.generate(30, 4, 1)
    assert all(re.fullmatch(r"\(\((-?\d [-+*] ){3}-?\d\) [-+*] \((-?\d [-+*] ){3}-?\d\)\) =", e.question) for e in sums)
    walks = navigation.generate(200, 6, 1)
    assert 0.35 < sum(e.gold == "Yes" for e in walks) / 200 < 0.65  # both answers, about equally often
    assert all(e.question.endswith("\nOptions:\n- Yes\n- No") for e in walks)
    trades = trading.generate(20, 5, 1)
    assert all(e.question.count("(") == 5 and re.search(r"\nOptions:\n\(A\) ", e.question) for e in trades)
    assert all(" First, " in e.question and " Finally, " in e.question for e in trades)


def test_the_trading_generator_uses_no_name_or_thing_of_the_benchmark():
    words = set()
    for task in [t for t in FILES if "tracking" in t]:
        for row in _bbh(task):
            words |= set(re.findall(r"\(\w\) (.+)", row["input"]))
            words |= set(re.findall(r"[A-Z][a-z]+", row["input"].split(" are ")[0]))
    ours = set(trading.PEOPLE) | {thing for scene in trading.SCENES for thing in scene.things}
    assert not ours & words, sorted(ours & words)


def test_follow_first_names_what_was_expected():
    assert follow_first("take 2 steps. <<0+2=2>> x 0, y 2, facing north", "Take 2 steps. Turn left.") == \
        ("x 0, y 2, facing north", "Turn left.")
    with pytest.raises(ValueError, match="did not start with the first instruction left"):
        follow_first("Turn left. x 0, y 0, facing west", "Take 2 steps. Turn left.")
    with pytest.raises(ValueError, match="wrote no state"):
        follow_first("Take 2 steps.", "Take 2 steps. Turn left.")


def test_a_trading_item_of_depth_one_is_two_people_and_one_swap():
    item = trading.generate(1, 1)[0]
    assert item.question.count("\n(") == 2 and " First, " in item.question and " Then, " not in item.question
    assert len(item.gold_steps) == 4  # who has what (two people), the swap, the answer


def _wrong_answer(request) -> str:
    """Every state right, then the answer names a letter other than the asked person's."""
    text = perfect_step(request)
    if "The answer is (" not in text:
        return text
    letter = text[-3]
    other = "B" if letter == "A" else "A"
    return text.replace(f"({letter})", f"({other})").replace(f" {letter}.", f" {other}.", 1)


@pytest.mark.parametrize("model, where", [(perfect_step, ("right",)), (_wrong_answer, ("answer",)),
                                          (lambda request: perfect_step(request, stuck=True), ("swap 1", "right"))])
def test_tracking_failures_names_the_first_wrong_state(model, where, tmp_path):
    """eval/tracking_failures.py reads where a run went wrong from the states its steps were shown."""
    from test_bench_tables import load

    failures = load("tracking_failures")
    run_eval(EvalSettings(task="bbh-tracking_shuffled_objects_five_objects", limit=12, out=str(tmp_path / "run")),
             backend=ScriptedBackend(model), progress=False)
    counts = failures.count(tmp_path / "run")
    assert counts["n"] == 12 and set(counts["first_wrong"]) <= set(where) and counts["first_wrong"].get(where[0], 0) > 0
