"""Training pairs taken from the strategy's own chain, so that training text is evaluation text.

`gold_pairs` runs the chain of the strategy for each training item with the gold writer (`gold.py`) answering
every request in place of a model: the chain renders each step's prompt exactly as it does in an evaluation
(templates, state, chat template), a calculator step stops at "=" and continues as it does with a model, and
each model step yields one pair (the exact prompt text, the gold output). `record_pairs` takes the same pairs
from the records of real runs (self-taught rounds keep those of correct chains).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.backends.formatting import cut_at_stop, prompt_text, prompt_token_ids
from engine.errors import EngineError
from engine.generation import Completion, GenerationRequest, GenerationResult
from engine.chains.scheduler import ExampleRun

MODEL_KINDS = ("model", "model+calculator")


@dataclass(frozen=True)
class TrainingPair:
    """One model turn to learn: the exact prompt the step renders, and what the model should write."""

    prompt: str
    completion: str
    item: str
    step: str


def reply_from(full: str, request: GenerationRequest) -> Completion:
    """Answer `request` with the part of `full` after its continuation, cut at its stop strings."""
    written = request.continuation or ""
    if not full.startswith(written):
        raise EngineError(f"the gold text does not continue what was written so far ({written[-40:]!r}): "
                          "the calculator's result format differs from the gold chain's")
    text, stop = cut_at_stop(full[len(written):], request.sampling.stop)
    return Completion(text=text, completion_tokens=len(text.split()), finish_reason="stop", stop_string=stop)


def teacher_forced(chain, state: dict, answer: Callable[[GenerationRequest, dict], str], tokenizer) -> ExampleRun:
    """Run `chain` on one example with `answer(request, state)` in place of the model; return the finished run."""
    run = ExampleRun(dict(state))
    program = chain.run(run)
    try:
        requests = next(program)
        while True:
            results = []
            for request in requests:
                completion = reply_from(answer(request, run.state), request)
                results.append(GenerationResult(request.key, prompt_text(request, tokenizer),
                                                len(prompt_token_ids(request, tokenizer)), (completion,)))
            requests = program.send(results)
    except StopIteration:
        return run


def record_pairs(run: ExampleRun, item: str) -> list[TrainingPair]:
    """One pair per model step of a finished run (its first prompt and its whole answer)."""
    return [TrainingPair(r.prompt, r.outputs[0], item, r.step)
            for r in run.records if r.kind in MODEL_KINDS and r.prompt is not None and r.outputs]


def gold_pairs(chain, strategy: str, examples, states: list[dict], tokenizer, writer=None,
               answer_type: str | None = None) -> list[TrainingPair]:
    """Teacher-forced pairs for every example; the run must end with the gold answer, or the gold is broken.

    `writer(step, example, state)` is a custom chain's gold writer (`engine.finetune.gold.chain_writer`); without
    one, the built-in strategy's. With `answer_type` the end is scored as an evaluation scores it ("yes" is
    "Yes"), else it must equal the gold text."""
    from engine.scoring.answers import answers_match
    from engine.finetune.gold import strategy_writer

    own = writer is not None
    writer = writer or strategy_writer(strategy)
    pairs = []
    for example, state in zip(examples, states):
        run = teacher_forced(chain, state, lambda request, now: writer(request.step, example, now), tokenizer)
        answer = run.state.get("answer")
        right = answers_match(answer, example.gold, answer_type) if answer_type else str(answer) == str(example.gold)
        if not right:
            fix = "fix the chain file's gold writer" if own else "report this as a bug"
            raise EngineError(f"the gold chain of {strategy} for item {example.id} ends with "
                              f"{run.state.get('answer')!r}, not its gold {example.gold!r}: {fix}")
        pairs.extend(record_pairs(run, example.id))
    return pairs
