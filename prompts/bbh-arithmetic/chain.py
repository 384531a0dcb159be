"""BIG-Bench-Hard multistep_arithmetic_two, one calculation at a time: `--strategy calculate`.

What the model writes at each step: the next calculation as a calculator annotation (in the first bracket that
holds no other bracket, the first `*`, else the first `+` or `-`), `<<9*5=`, then, after the calculator has
written the result (`45>>`), the whole expression again with that result in place; once one number is left,
"The answer is N." What the chain's code does: it takes the question without its trailing "=" as the first
expression, runs the calculator on the annotation the model wrote, and shows each step the expression the
model wrote last. Trained on items of `tasks/arithmetic-two-gen.yaml` (`engine.synthetic.multistep_arithmetic`).
"""

from engine import CalcStep, SamplingSettings, gold_from_steps, state_loop

MAX_STEPS = 12
"""Calculations of BIG-Bench-Hard's items (two groups of four numbers: 7), with slack."""


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


gold = gold_from_steps
