"""BIG-Bench-Hard boolean_expressions, one rewrite at a time: `eval --task bbh-boolean_expressions --strategy simplify`.

What the model writes at each step: the whole expression again with one thing done (a value alone in brackets
loses them, else the first `not` of a value, else the first `and`, else the first `or`), and once one operation
is left, "The answer is True." (or False). What the chain's code does: it takes the question without its
trailing "is" as the first expression and shows each step the expression the model wrote last; it computes
nothing. Trained on items of `tasks/boolean-gen.yaml` (`engine.synthetic.boolean_expressions`).
"""

from engine import SamplingSettings, Step, gold_from_steps, state_loop

MAX_STEPS = 16
"""Rewrites of the longest expression (BIG-Bench-Hard's have 9 tokens: at most 7 rewrites), with slack."""


def _start(state: dict) -> None:
    question = state["question"].strip()
    state["now"] = question[:-2].strip() if question.endswith(" is") else question


def _advance(state: dict, text: str) -> None:
    written = " ".join(text.split())
    if not written:
        raise ValueError("the step wrote no expression")
    state["now"] = written


def simplify(spec):
    step = Step("step", "step.jinja", SamplingSettings(max_tokens=40, stop=("\n",)))
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_advance)


gold = gold_from_steps
