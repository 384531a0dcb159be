"""`stepwise`: a loop that carries out the next unprocessed instruction each time, calculator in the loop.

For questions that are a list of instructions ("Start with 2. Divide by 2. Multiply by 7. What is the
result?"). Each step's prompt shows the value so far and the instructions left; the model repeats the first
instruction left and writes its calculation (`Divide by 2. <<2/2=1>>`), the calculator fills in the result, and
the chain (plain Python, not the model) removes the repeated instruction from what is left and keeps the
result as the new value. When only the question is left the model answers it.

Why: a model that writes a whole chain in one pass writes as many steps as it saw in training and then
answers (measured: 0.96 at depth 4 but 0.25 at depth 6 after training on depths 1-4). Here every step looks
the same at any depth, so the length of the problem is carried by the loop, not by the model.

A step that does not repeat the first instruction left, or writes no calculation, ends the item: its answer is
unparsed and the step's record says why.
"""

from __future__ import annotations

from engine.chains.calc_step import CalcStep, annotation_results
from engine.chains.follow import ANSWER
from engine.chains.nodes import Compute, Loop, Sequence
from engine.sampling import SamplingSettings

MAX_STEPS = 24
"""Most loop iterations: the deepest synthetic item (20 operations), its start, its answer, and slack."""
START_VALUE = "none yet"


def _words(text: str) -> list[str]:
    return text.lower().split()


def advance(state: dict) -> None:
    """Apply one step's text to the state: done at an answer, else drop the repeated instruction, keep the value."""
    text = state.get("step_text") or ""
    if ANSWER.search(text):
        state["finished"] = True
        return None
    repeated = text.split("<<", 1)[0]
    remaining = state["remaining"]
    words, left = _words(repeated), remaining.split()
    if not words or _words(" ".join(left[: len(words)])) != words:
        state["finished"] = True
        raise ValueError(f"the step did not start with the first instruction left ({remaining[:60]!r}): got {text[:60]!r}")
    results = annotation_results(text)
    if not results or results[-1] in ("", "None"):
        state["finished"] = True
        raise ValueError(f"the step wrote no calculation the calculator could do: {text[:60]!r}")
    state["remaining"] = " ".join(left[len(words):])
    state["value"] = results[-1]
    return None


def _start(state: dict) -> None:
    state.update(remaining=state["question"], value=START_VALUE, finished=False)


def build_stepwise(parse, max_tokens: int | None = None):
    """The stepwise chain; the final answer is parsed from the step that answered, else unparsed."""
    # one call per step: the calculation closes it (the calculator's result is all that would follow)
    step = CalcStep("step", "stepwise/step.jinja", SamplingSettings(max_tokens=max_tokens or 48), max_calls=1)
    body = Sequence(step, Compute("advance", advance, reads={"step", "remaining", "value"}))
    return Sequence(
        Compute("start", _start, reads={"question"}, writes={"remaining", "value", "finished"}),
        # each step's prompt holds the value and the instructions left, never earlier steps' text
        Loop(body, until=lambda state: state["finished"], max_iterations=MAX_STEPS, carries_outputs=False),
        Compute("answer", lambda state: parse(state["step_text"]) if ANSWER.search(state.get("step_text") or "") else None,
                reads={"step"}, text_from="step_text"),
    )
