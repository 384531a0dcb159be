"""The 3-step chain eval/bench_dspy.py runs beside DSPy: decompose, solve, answer (128 tokens a step, greedy).

`python -m engine eval --task arithmetic --depth 3 --chain eval/chains/decompose_solve_answer.py:decompose_solve_answer`
The same three steps as the benchmark's DSPy program (its signatures carry the same instructions): list the
sub-questions, answer them in order (a step named `working`, so per-step accuracy reads it), then give the
final answer, parsed with the task's own parser. Templates: the `dsa_*.jinja` files beside this one.
"""

from engine import SamplingSettings, Sequence, Step

TOKENS = 128
"""Most new tokens in each step (DSPy's side uses the same `max_tokens`)."""


def decompose_solve_answer(spec, tokens: int = TOKENS):
    greedy = SamplingSettings(max_tokens=tokens, temperature=0.0)
    return Sequence(
        Step("subquestions", "dsa_decompose.jinja", greedy),
        Step("working", "dsa_solve.jinja", greedy),
        Step("answer", "dsa_answer.jinja", greedy, parse=spec.parser),
    )
