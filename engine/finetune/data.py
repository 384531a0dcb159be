"""Which items train, which validate, which test, and proof that they never meet.

Test items are exactly the evaluation's own (`eval --task T --depth d --seed 0`, the first `test_items`), so a
fine-tuned model is scored on the items every other run is scored on. Training and validation items of a
synthetic task come from other seeds, and any item whose content (question and gold) matches a test item is
skipped, so the overlap is 0 by construction and checked again by content hash. Data files are taken as they
are and refused if they overlap. Evaluation-only data is refused as training data: BIG-Bench-Hard (its files
carry a canary asking that they never be trained on) and GSM8K's test split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.finetune.settings import FinetuneSettings
from engine.tasks.spec import parse_depths

DEFAULT_DEPTHS = "1-4"
"""Training depths of a generator task when neither --depths nor the task file's `train_depths` says."""
TRAIN_SEED, VALIDATION_SEED = 1_000_003, 2_000_003
"""Seeds of the synthetic training and validation items; evaluation runs use seed 0 by default."""


def depths_text(settings: FinetuneSettings, train_spec) -> str:
    """The training depths: --depths, else the training task file's `train_depths`, else 1-4."""
    return settings.depths or train_spec.train_depths or DEFAULT_DEPTHS


def content_hash(example) -> str:
    """Identity of an item by what the model sees and must answer, not by its id."""
    text = " ".join(example.question.split()).lower() + "\x00" + str(example.gold)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def question_hash(example) -> str:
    """Identity of an item by its question alone: across two tasks (train on one, test on another) a question
    that is also a test question is held out whatever gold either task gives it."""
    return hashlib.sha256(" ".join(example.question.split()).lower().encode()).hexdigest()[:20]


@dataclass
class Splits:
    train: list
    validation: list
    test: dict[int, list]
    """Depth (or 0 for a task without depths) -> held-out test items."""
    skipped_overlapping: int
    overlap: int


def refuse_evaluation_only(spec, base: Path) -> None:
    """BIG-Bench-Hard and GSM8K test are for evaluation only."""
    if spec.name.startswith("bbh") or spec.source.format == "bbh":
        raise EngineError(f"task {spec.name} is BIG-Bench-Hard, whose files carry a canary asking that they never "
                          "be used for training: fine-tune on a synthetic task or gsm8k's train split")
    if spec.source.generator is None and spec.train is None:
        raise EngineError(f"task {spec.name} has no training split: add `train:` (a data file) to its task file; "
                          "its evaluation items are never used for training")


def build_splits(settings: FinetuneSettings, spec, base: Path, train_from=None) -> Splits:
    """Train, validation and test items of `spec`; with `train_from` (another task's spec and folder: `--train-task`)
    training and validation come from that task and the test stays `spec`'s own, which may then be evaluation-only
    data such as BIG-Bench-Hard (it is only ever tested on)."""
    from engine.tasks.spec import load_examples

    if train_from is not None:
        return _split_across(settings, spec, base, *train_from)
    refuse_evaluation_only(spec, base)
    if spec.source.generator:
        test = {d: load_examples(spec, base, settings.test_items, d, 0) for d in parse_depths(settings.test_depths)}
        held = {content_hash(e) for items in test.values() for e in items}
        depths = parse_depths(depths_text(settings, spec))
        validation, skipped_v = _fresh(spec, base, depths, settings.val_items, VALIDATION_SEED + settings.seed, held)
        held |= {content_hash(e) for e in validation}
        train, skipped_t = _fresh(spec, base, depths, settings.train_items, TRAIN_SEED + settings.seed, held)
        skipped = skipped_v + skipped_t
    else:
        test = {0: load_examples(spec, base, settings.test_items)}
        rows = _train_rows(spec, base)
        validation, train, skipped = rows[: settings.val_items], rows[settings.val_items:][: settings.train_items], 0
    held = {content_hash(e) for items in test.values() for e in items}
    overlap = sum(1 for e in train + validation if content_hash(e) in held)
    if overlap:
        raise EngineError(f"{overlap} training or validation items of {spec.name} are also test items (same question "
                          "and gold): remove them from the training data")
    if not train:
        raise EngineError(f"no training items left for {spec.name} at depths {depths_text(settings, spec)} once the test items "
                          "were set aside: ask for more depths or more --train-items")
    return Splits(train, validation, test, skipped, overlap)


def _split_across(settings: FinetuneSettings, spec, base: Path, train_spec, train_base: Path) -> Splits:
    """Training and validation items from `train_spec`, test items from `spec`; any item whose question is a test
    question is dropped (counted in `skipped_overlapping`), and the overlap is checked again after."""
    from engine.tasks.spec import load_examples

    refuse_evaluation_only(train_spec, train_base)
    if spec.source.generator:
        test = {d: load_examples(spec, base, settings.test_items, d, 0) for d in parse_depths(settings.test_depths)}
    else:
        test = {0: load_examples(spec, base, settings.test_items)}
    held = {question_hash(e) for items in test.values() for e in items}
    if train_spec.source.generator:
        depths = parse_depths(depths_text(settings, train_spec))
        validation, skipped_v = _fresh(train_spec, train_base, depths, settings.val_items,
                                       VALIDATION_SEED + settings.seed, held, question_hash)
        train, skipped_t = _fresh(train_spec, train_base, depths, settings.train_items, TRAIN_SEED + settings.seed,
                                  held | {question_hash(e) for e in validation}, question_hash)
        skipped = skipped_v + skipped_t
    else:
        rows = _train_rows(train_spec, train_base)
        kept = [e for e in rows if question_hash(e) not in held]
        skipped = len(rows) - len(kept)
        validation, train = kept[: settings.val_items], kept[settings.val_items:][: settings.train_items]
    overlap = sum(1 for e in train + validation if question_hash(e) in held)
    if overlap:  # cannot happen after the filter above; kept as the proof the summary reports
        raise EngineError(f"{overlap} training items of {train_spec.name} ask a test question of {spec.name}")
    if not train:
        raise EngineError(f"{train_spec.name} gave no training items that are not test items of {spec.name}: ask for "
                          "more --train-items or other --depths")
    return Splits(train, validation, test, skipped, overlap)


def _fresh(spec, base, depths, per_depth, seed, held: set[str], key_of=content_hash) -> tuple[list, int]:
    """Up to `per_depth` items per depth whose key (content, or with `key_of` another identity) is not in `held`
    (duplicates dropped too)."""
    from engine.tasks.spec import load_examples

    kept, skipped, seen = [], 0, set(held)
    for depth in depths:
        candidates = load_examples(spec, base, per_depth * 3, depth, seed)  # room for the ones skipped
        taken = 0
        for example in candidates:
            key = key_of(example)
            if key in seen:
                skipped += 1
                continue
            seen.add(key)
            kept.append(example)
            taken += 1
            if taken == per_depth:
                break
    return kept, skipped


def _train_rows(spec, base):
    from engine.tasks.datasets import examples_from_rows, read_rows
    from engine.tasks.spec import expand_path

    train_path = expand_path(spec.train.path, base)
    if spec.source.path and train_path.resolve() == expand_path(spec.source.path, base).resolve():
        raise EngineError(f"task {spec.name}'s train file {train_path} is its evaluation file: point train at "
                          "another split")
    if not train_path.exists():
        raise EngineError(f"training data {train_path} does not exist: check the task's train.path")
    rows = read_rows(train_path, "jsonl" if train_path.suffix == ".jsonl" else "json")
    examples = examples_from_rows(rows, spec, str(train_path))
    if spec.reasoning_field:  # the worked solution, for gold chains (never loaded for evaluation items)
        for example, (_, row) in zip(examples, rows):
            if row.get(spec.reasoning_field):
                example.fields["solution"] = str(row[spec.reasoning_field])
    return examples
