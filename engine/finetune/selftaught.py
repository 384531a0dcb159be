"""Self-taught rounds (STaR, Zelikman et al. 2022): the model's own correct chains become its training data.

For each training item, k chains are sampled at temperature > 0 from the current model through the engine's
scheduler (batched across the dataset like any evaluation); chains whose final answer is right are kept. Items
with no correct chain are tried again with the gold answer shown as a hint ("rationalization"); chains that
reach it are kept too, but their prompts are trained *without* the hint, as the model will see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.chains.nodes import sampled
from engine.finetune.traces import TrainingPair, record_pairs
from engine.scoring.parsers import is_correct
from engine.chains.scheduler import ExampleRun, run_all


def hint_text(example) -> str:
    return f"Hint: the answer is {example.gold}."


def without_hint(pair: TrainingPair, hint: str) -> TrainingPair:
    """The pair as the model sees the item without a hint (templates print the hint on a line of its own, which
    a chat turn may end with, so the line break before it goes with it)."""
    return TrainingPair(pair.prompt.replace("\n" + hint, "", 1), pair.completion, pair.item, pair.step)


@dataclass
class SampledRound:
    pairs: list[TrainingPair] = field(default_factory=list)
    items: int = 0
    solved: int = 0
    """Items with at least one correct chain without a hint."""
    rationalized: int = 0
    """Items solved only with the gold answer as a hint."""
    kept_chains: int = 0
    sampled_chains: int = 0


def sample_correct(chain, examples, states: list[dict], spec, backend, k: int, temperature: float,
                   seed: int, hint: bool = False) -> dict[int, list[ExampleRun]]:
    """k sampled runs per example; returns example index -> its correct runs (distinct chains only)."""
    chain = sampled(chain, temperature, seed)
    runs, owners = [], []
    for index, state in enumerate(states):
        for j in range(k):
            run_state = dict(state, hint=hint_text(examples[index]) if hint else "")
            runs.append(ExampleRun(run_state, seed_offset=index * k + j))
            owners.append(index)
    run_all(chain, runs, backend)
    correct: dict[int, list[ExampleRun]] = {}
    seen: set[tuple] = set()
    for index, run in zip(owners, runs):
        if run.error or not is_correct(run.state.get("answer"), examples[index], spec.answer_type):
            continue
        chain_text = (index, tuple(r.outputs[0] for r in run.records if r.outputs))
        if chain_text in seen:
            continue
        seen.add(chain_text)
        correct.setdefault(index, []).append(run)
    return correct


def self_taught_pairs(chain, examples, states, spec, backend, k: int, temperature: float, seed: int) -> SampledRound:
    """Sample, keep correct chains, rationalize the rest with a hint; the training pairs of one round."""
    result = SampledRound(items=len(examples), sampled_chains=k * len(examples))
    solved = sample_correct(chain, examples, states, spec, backend, k, temperature, seed)
    result.solved = len(solved)
    unsolved = [i for i in range(len(examples)) if i not in solved]
    hinted = {}
    if unsolved:
        found = sample_correct(chain, [examples[i] for i in unsolved], [states[i] for i in unsolved], spec, backend,
                               k, temperature, seed + 1, hint=True)
        hinted = {unsolved[j]: runs for j, runs in found.items()}
        result.rationalized = len(hinted)
        result.sampled_chains += k * len(unsolved)
    for index, runs in [*solved.items(), *hinted.items()]:
        for run in runs:
            pairs = record_pairs(run, examples[index].id)
            if index in hinted:
                pairs = [without_hint(p, hint_text(examples[index])) for p in pairs]
            result.pairs.extend(pairs)
            result.kept_chains += 1
    return result
