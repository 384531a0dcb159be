"""The 3-step chain the benchmarks time (restate, work, answer), each step with a small token limit so that a
thousand items fit in minutes on a CPU. Also a --chain: `--chain eval/chains/three_steps.py:three_steps`."""

from engine import SamplingSettings, Sequence, Step

TOKENS = 24


def build(tokens: int = TOKENS):
    return Sequence(
        Step("restate", "restate.jinja", SamplingSettings(max_tokens=tokens)),
        Step("working", "working.jinja", SamplingSettings(max_tokens=tokens)),
        Step("answer", "answer.jinja", SamplingSettings(max_tokens=tokens), parse="number"),
    )


three_steps = build()
