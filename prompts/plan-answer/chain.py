"""An example of your own chain, used by README's "Write your own chain": work it out, then answer.

`python -m engine eval --task arithmetic --chain prompts/plan-answer/chain.py:work_then_answer --depth 3`
The templates beside this file are found by bare name. `work_then_answer` is a function of the task spec, so
the answer step uses each task's own parser; a chain can also be a plain top-level value (see `fixed`).
Per-step accuracy reads the text of a step named `working` when the chain has one (gold steps from a
generator, or from a data file's `steps_field`).
"""

from engine import SamplingSettings, Sequence, Step


def work_then_answer(spec):
    return Sequence(
        Step("working", "working.jinja", SamplingSettings(max_tokens=192)),
        Step("answer", "answer.jinja", SamplingSettings(max_tokens=24), parse=spec.parser),
    )


fixed = Sequence(
    Step("working", "working.jinja", SamplingSettings(max_tokens=192)),
    Step("answer", "answer.jinja", SamplingSettings(max_tokens=24), parse="number"),
)
