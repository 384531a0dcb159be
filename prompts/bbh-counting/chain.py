"""BIG-Bench-Hard object_counting, one listed thing at a time: `eval --task bbh-object_counting --strategy tally`.

What the model writes at each step: the first thing left, word for word, a colon, and how many of it are of the
asked kind (`two kettles: 0.` or `three geese: 3.`, its own knowledge of what is an animal and what "three" is);
when some are, the calculator annotation of the new total (`<<2+3=`, the calculator writes `5>>`); then the
total (`Total 5`). With nothing left it answers: "The answer is 5." What the chain's code does: it cuts the
question into the listed things and the asked kind (the layout), starts every tally at `Total 0` (the same for
every item), checks that the model repeated the first thing left, cuts it, keeps the total the model wrote, and
runs the calculator on the annotation the model wrote; it never decides what counts, so a model that writes
nothing gets nothing. Trained on items of `tasks/counting-gen.yaml` (`engine.synthetic.belongings`).
"""

import re

from engine import CalcStep, SamplingSettings, gold_from_steps, state_loop

MAX_STEPS = 18
"""Things of the longest BIG-Bench-Hard item (12), the answer, and slack."""
START = "Total 0"
NONE = "(none)"
_QUESTION = re.compile(r"I have (?P<things>.*)\. How many (?P<kind>.+?) do I have\?", re.DOTALL)


def _start(state: dict) -> None:
    match = _QUESTION.search(" ".join(state["question"].split()))
    things = match.group("things").replace(", and ", ", ").split(", ") if match else []
    state.update(now=START, left=", ".join(things) if things else NONE, kind=match.group("kind") if match else "")


def _advance(state: dict, text: str) -> None:
    first = state["left"].split(", ")[0]
    said, colon, rest = text.strip().partition(":")
    if not colon or " ".join(said.split()).lower() != first.lower():
        raise ValueError(f"the step did not start with the first thing left ({first!r}) and a colon: got {text[:60]!r}")
    total = re.search(r"Total -?\d+", rest.rsplit(">>", 1)[-1])  # after the calculator's note, if any
    if total is None:
        raise ValueError(f"the step wrote no total after {first!r} (as in 'Total 3'): got {text[:60]!r}")
    left = state["left"].split(", ")[1:]
    state.update(now=total.group(0), left=", ".join(left) if left else NONE)


def tally(spec):
    step = CalcStep("step", "step.jinja", SamplingSettings(max_tokens=48, stop=("\n",)), max_calls=2)
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_advance, lays_out={"kind"})


gold = gold_from_steps
