"""BIG-Bench-Hard multistep_arithmetic_two, one calculation at a time: `--strategy calculate` and `place`.

What the model writes at each step: the next calculation as a calculator annotation (in the first bracket that
holds no other bracket, the first `*`, else the first `+` or `-`), `<<9*5=`, then, after the calculator has
written the result (`45>>`), the whole expression again with that result in place; once one number is left,
"The answer is N." What the chain's code does: it takes the question without its trailing "=" as the first
expression, runs the calculator on the annotation the model wrote, and shows each step the expression the
model wrote last. Trained on items of `tasks/arithmetic-two-gen.yaml` (`engine.synthetic.multistep_arithmetic`).

`place` asks less of the model: it copies the first bracket with no bracket inside, then names that bracket's
next calculation, `Bracket: ( -9 - 1 * 5 * -5 ) << 1 * 5 =`. The template shows the expression with a space
around every token, so that what the model copies is the same tokens in the prompt as in its answer. The
calculator writes `5>>`; the chain's code lays the next expression out by putting the result where the
model's calculation stands (`put_result`: the first place where the three tokens it wrote stand side by
side; a calculation that stands nowhere ends the item unanswered). The bracket the model copied is its own
working and is not used. Which calculation comes next, with which signs, is the model's choice alone, and a
wrong choice is laid out as faithfully as a right one. Once one number is left, the model writes "The answer
is N.". With `calculate`, a model that writes a wrong calculation can still rewrite the expression into the
right one; with `place` it cannot, so `place` measures the calculations themselves.
"""

import re

from engine import CalcStep, SamplingSettings, first_group, gold_from_steps, put_result, state_loop

MAX_STEPS = 12
"""Calculations of BIG-Bench-Hard's items (two groups of four numbers: 7) and the answer, with slack."""

_CALCULATION = re.compile(r"<<\s*(-?\d+)\s*([-+*])\s*(-?\d+)\s*=\s*(-?\d+)\s*>>")


def _start(state: dict) -> None:
    question = state["question"].strip()
    state["now"] = question[:-1].strip() if question.endswith("=") else question


def _advance(state: dict, text: str) -> None:
    if ">>" not in text:
        raise ValueError(f"the step wrote no calculation: {text[:60]!r}")
    written = " ".join(text.rsplit(">>", 1)[1].split())
    if not written:
        raise ValueError(f"the step wrote no expression after its calculation: {text[:60]!r}")
    state["now"] = written


def calculate(spec):
    # two requests per step: up to the annotation's "=", then the rest of the line after the calculator's result
    step = CalcStep("step", "step.jinja", SamplingSettings(max_tokens=64, stop=("\n",)), max_calls=2)
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_advance)


def _put_calculation(state: dict, text: str) -> None:
    match = _CALCULATION.search(text)
    if match is None:
        raise ValueError(f"the step wrote no calculation of two numbers: {text[:60]!r}")
    left, op, right, value = match.groups()
    state["now"] = put_result(state["now"], (left, op, right), value)


def _place_gold(example, state: dict) -> str:
    """What a perfect model writes at a `place` step: the first innermost bracket, then its next calculation (with
    the calculator's result, as the step's record holds it), taken from the item's gold steps; or the answer once
    one number is left."""
    now = state["now"]
    if " " not in now.strip("()"):
        return f"The answer is {now.strip('()')}."
    left, op, right, value = _CALCULATION.match(gold_from_steps("step", example, state)).groups()
    return f"Bracket: ( {first_group(now)} ) << {left} {op} {right} ={value}>>"


def place(spec):
    # one request per step: up to the annotation's "=", after which the calculator writes the result
    step = CalcStep("step", "place.jinja", SamplingSettings(max_tokens=32, stop=("\n",)), max_calls=1,
                    gold=_place_gold)
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_put_calculation)


gold = gold_from_steps
