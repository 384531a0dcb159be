"""The `place` chain of multistep_arithmetic_two: the model names each calculation, the calculator computes it,
and the chain's code only puts the result where the model's calculation stands.

Scripted "models" read only the prompt: one that names every calculation right scores every real item; one
that ignores `*` first, or one that drops a sign, is followed faithfully, to a wrong answer or to none: the
chain's code never repairs a calculation the model wrote.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import gold_chain_steps

from engine.backends import ScriptedBackend
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.synthetic.multistep_arithmetic import next_calculation, put_result

TASK = "bbh-multistep_arithmetic_two"


def _expression(request) -> str:
    assert "name its next calculation" in request.messages[0][1]
    shown = re.fullmatch(r"Expression: (.*)", request.messages[-1][1]).group(1)
    return shown.replace("( ", "(").replace(" )", ")")


def _named(request, mistake: str | None = None) -> str:
    expression = _expression(request)
    if " " not in expression:
        return f"The answer is {expression}."
    left, op, right = next_calculation(expression)
    if mistake == "left to right":  # always the first operator of the group, * or not
        inner = re.search(r"\(([^()]*)\)", expression)
        left, op, right = (inner.group(1) if inner else expression).split()[:3]
    if mistake == "drops a sign":
        left = left.lstrip("-")
    group = re.search(r"\(([^()]*)\)", expression).group(1)
    return f"Bracket: ( {group} ) << {left} {op} {right} = whatever the model writes here, the calculator overwrites"


def _run(tmp_path, model, **settings) -> tuple[dict, list[dict]]:
    summary = run_eval(EvalSettings(task=TASK, strategy="place", out=str(tmp_path / "run"), **settings),
                       backend=ScriptedBackend(model), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    return summary, rows


def test_a_model_that_names_each_calculation_right_scores_every_real_item(tmp_path):
    summary, rows = _run(tmp_path, _named, floor=True)
    assert summary["n"] == 250 and summary["accuracy"] == 1.0
    assert summary["floor"]["accuracy"] == 0.0
    steps = [s for s in rows[0]["steps"] if s["step"] == "step"]
    assert steps[0]["outputs"][0].startswith("Bracket: ( ") and steps[0]["tool_calls"]  # the calculator computed it
    assert steps[-1]["outputs"] == [f"The answer is {rows[0]['gold']}."]


def test_a_wrong_order_of_calculations_is_followed_to_its_own_answer(tmp_path):
    summary, rows = _run(tmp_path, lambda request: _named(request, "left to right"))
    assert summary["unparsed_rate"] == 0.0 and summary["accuracy"] < 0.5
    for row in rows[:20]:  # the answer is the expression read left to right inside each group, not the gold
        groups = re.sub(r"\(([^()]*)\)", lambda m: str(_left_to_right(m.group(1))), row["question"].removesuffix(" ="))
        assert row["answer"] == str(_left_to_right(groups.strip("()")) if " " in groups else groups)


def _left_to_right(group: str) -> int:
    tokens = group.split()
    value = int(tokens[0])
    for op, number in zip(tokens[1::2], tokens[2::2]):
        value = value + int(number) if op == "+" else value - int(number) if op == "-" else value * int(number)
    return value


def test_a_calculation_that_stands_nowhere_ends_the_item_unanswered(tmp_path):
    _, rows = _run(tmp_path, lambda request: _named(request, "drops a sign"), limit=40)
    signed = [row for row in rows if next_calculation(row["question"].removesuffix(" ="))[0].startswith("-")]
    assert signed  # "-2 * 6" named as "2 * 6": no such calculation stands in the expression
    for row in signed:
        assert row["answer"] is None and any("is not in" in str(step.get("error")) for step in row["steps"])


def test_put_result_places_only_what_stands_there():
    assert put_result("((3 - 2 * 4) + 1)", ("2", "*", "4"), "8") == "((3 - 8) + 1)"
    assert put_result("((3 - 8) + 1)", ("3", "-", "8"), "-5") == "(-5 + 1)"
    with pytest.raises(ValueError, match="is not in"):
        put_result("((3 - -2 * 4) + 1)", ("3", "-", "2"), "1")  # -2 is one token: "3 - 2" stands nowhere


def test_gold_chains_of_generated_items_end_at_their_gold(default_model_dir):
    completions, _ = gold_chain_steps(TASK, "arithmetic-two-gen", 4, default_model_dir, strategy="place")
    assert re.fullmatch(r"Bracket: \( [^()]* \) << -?\d+ [-+*] -?\d+ =-?\d+>>", completions[0])
    assert sum(c.startswith("The answer is ") for c in completions) == 12  # one answer per item, at its end
