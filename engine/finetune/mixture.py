"""Several tasks, one adapter: `finetune --task a,b --train-task ga,gb` trains on the mixture of their chains.

Each test task keeps its own chain (its `default_strategy`, or `--strategy` when every task lists it) and gets
its training items from its own training task, balanced: every task brings the same number of training items
(`--train-items` per task, spread over the training task's depths). Validation accuracy, which early stopping
reads, is the mean over the tasks of each task's accuracy on its own validation items, so no task can be
forgotten unseen. The summary gives each task's data hygiene and its before/after test.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError


@dataclass
class Member:
    """One task of a mixture: its settings (as a single-task run would have them), spec, chain, items."""

    settings: object
    spec: object
    label: str
    chain: object
    splits: object


def split_names(text: str, option: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise EngineError(f"{option} {text!r} has an empty name: separate task names with commas, as in a,b")
    return names


def check_lists(tasks: list[str], train_tasks: list[str] | None) -> None:
    """One-line refusals of a mixture that cannot be what was meant."""
    twice = sorted({name for name in tasks if tasks.count(name) > 1})
    if twice:
        raise EngineError(f"--task names {twice[0]} twice: name each task once (each brings its own items)")
    if train_tasks is None:
        raise EngineError("--task with several tasks needs --train-task with as many training tasks (ga,gb for a,b): "
                          "evaluation tasks such as BIG-Bench-Hard are never training data")
    if len(train_tasks) != len(tasks):
        raise EngineError(f"--task names {len(tasks)} tasks but --train-task names {len(train_tasks)}: give one "
                          "training task per task, in the same order")
    twice = sorted({name for name in train_tasks if train_tasks.count(name) > 1})
    if twice:
        raise EngineError(f"--train-task names {twice[0]} twice: give each task a training task of its own")
    same = [t for t, g in zip(tasks, train_tasks) if t == g]
    if same:
        raise EngineError(f"--train-task {same[0]} is its --task itself: name the task whose generator writes its "
                          "training items")


def members(settings, per_task_items: int) -> list[Member]:
    """Each task's settings, spec, chain and items; every failure names the task."""
    from engine.chains.strategies import STATE_KEYS, check_wiring, select_chain
    from engine.finetune.data import build_splits, depths_text
    from engine.tasks.spec import load_spec, parse_depths

    tasks, train_tasks = split_names(settings.task, "--task"), split_names(settings.train_task, "--train-task")
    out = []
    for task, train_task in zip(tasks, train_tasks):
        spec, base = load_spec(task)
        train_spec, train_base = load_spec(train_task)
        depths = depths_text(settings, train_spec)
        per_depth = max(1, math.ceil(per_task_items / len(parse_depths(depths))))
        one = settings.model_copy(update={"task": task, "train_task": train_task, "depths": depths,
                                          "train_items": per_depth})
        label, chain = select_chain(spec, settings.strategy, None, base=base)
        splits = build_splits(one, spec, base, (train_spec, train_base))
        rng = random.Random(settings.seed)
        rng.shuffle(splits.train)
        splits.train = splits.train[:per_task_items]
        check_wiring(chain, set(STATE_KEYS) | set(splits.train[0].fields), label)
        out.append(Member(one, spec, label, chain, splits))
    return out


def mixed_pairs(group: list[Member], tokenizer, progress) -> list:
    """Every task's teacher-forced gold pairs, through each chain's own gold writer, shuffled together."""
    from engine.chains.strategies import initial_state
    from engine.finetune.gold import gold_writer_for
    from engine.finetune.traces import gold_pairs

    pairs = []
    for member in group:
        writer = gold_writer_for(member.chain, member.label, custom=False)
        states = [initial_state(e, member.spec, []) for e in member.splits.train]
        found = gold_pairs(member.chain, member.label, member.splits.train, states, tokenizer, writer,
                           member.spec.answer_type)
        progress(f"{member.spec.name}: {len(found)} training pairs from {len(member.splits.train)} items of "
                 f"{member.settings.train_task} ({member.label})")
        pairs.extend(found)
    random.Random(group[0].settings.seed).shuffle(pairs)
    return pairs


def mixed_validator(group: list[Member], make_validator):
    """The mean over tasks of each task's validation accuracy (`make_validator(chain, items, states, spec)`)."""
    from engine.chains.strategies import initial_state

    checks = [make_validator(m.chain, m.splits.validation, [initial_state(e, m.spec, []) for e in m.splits.validation],
                             m.spec) for m in group if m.splits.validation]

    def validate(model, tokenizer) -> float:
        scores = [check(model, tokenizer) for check in checks]
        return sum(scores) / len(scores) if scores else 0.0

    return validate


def data_summary(member: Member) -> dict:
    splits = member.splits
    return {"train_task": member.settings.train_task, "depths": member.settings.depths,
            "train_items": len(splits.train), "validation_items": len(splits.validation),
            "test_items": {str(d): len(v) for d, v in splits.test.items()},
            "skipped_overlapping": splits.skipped_overlapping, "overlap": splits.overlap}


def test_dir(out: Path, member: Member) -> Path:
    return out / "test" / member.spec.name
