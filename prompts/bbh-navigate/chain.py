"""BIG-Bench-Hard navigate, one instruction at a time: `eval --task bbh-navigate --strategy walk`.

What the model writes at each step: the first instruction left, word for word; for a step, the calculator
annotation of the coordinate it changes (`<<3-5=`, the calculator writes `-2>>`); then where it stands and
which way it faces (`x 0, y -2, facing south`). With no instruction left it answers: "The answer is Yes." if it
stands at x 0, y 0, else No. What the chain's code does: it starts every walk at `x 0, y 0, facing north` (the
same for every item), cuts the instruction the model repeated from those left, keeps the position the model
wrote, and runs the calculator on the annotation the model wrote; it computes no position itself. Trained on
items of `tasks/navigate-gen.yaml` (`engine.synthetic.navigation`).
"""

from engine import CalcStep, SamplingSettings, gold_from_steps, state_loop

MAX_STEPS = 20
"""Instructions of the longest BIG-Bench-Hard item (10), the answer, and slack."""
START = "x 0, y 0, facing north"


def _start(state: dict) -> None:
    instructions = state["question"].split("?", 1)[-1].split("\nOptions", 1)[0]
    state.update(now=START, left=" ".join(instructions.split()))


def walk(spec):
    step = CalcStep("step", "step.jinja", SamplingSettings(max_tokens=48, stop=("\n",)), max_calls=2)
    return state_loop(step, _start, spec.parser, MAX_STEPS)  # each step follows the first instruction left


gold = gold_from_steps
