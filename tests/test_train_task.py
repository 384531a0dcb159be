"""`finetune --train-task GEN --task REAL`: training and validation items from GEN, the test on REAL's own items,
any training question that is one of REAL's held out, and evaluation-only data never trained on."""

import json

import pytest

from conftest import real_task

from engine.cli.main import main
from engine.errors import EngineError
from engine.finetune.data import TRAIN_SEED, VALIDATION_SEED, build_splits, question_hash
from engine.finetune.settings import FinetuneSettings
from engine.synthetic import arithmetic
from engine.tasks.spec import load_spec


def settings(task, **more):
    return FinetuneSettings(task=task, train_task="arithmetic", strategy="stepwise", out="unused", depths="2",
                            train_items=20, val_items=4, test_items=50, **more)


def test_train_on_the_generator_test_on_the_real_items_with_their_questions_held_out(tmp_path):
    # the real task's items include questions the generator will also write for training and validation
    will_train = arithmetic.generate(3, 2, TRAIN_SEED)[:3] + arithmetic.generate(2, 2, VALIDATION_SEED)[:2]
    theirs = [{"question": e.question, "answer": int(e.gold) + 1} for e in will_train]  # their gold may differ
    theirs += [{"question": f"Start with {n}. Add 2. Multiply by 3. What is the result?", "answer": (n + 2) * 3}
               for n in range(40, 47)]
    task = real_task(tmp_path, theirs)
    spec, base = load_spec(task)
    train_spec, train_base = load_spec("arithmetic")
    splits = build_splits(settings(task), spec, base, (train_spec, train_base))
    assert [e.question for e in splits.test[0]] == [row["question"] for row in theirs]  # REAL's own items, all
    assert len(splits.train) == 20 and len(splits.validation) == 4
    assert all(e.id.startswith("arith-") for e in splits.train + splits.validation)  # from the generator
    held = {question_hash(e) for e in splits.test[0]}
    assert not any(question_hash(e) in held for e in splits.train + splits.validation) and splits.overlap == 0
    assert splits.skipped_overlapping >= 5  # the five shared questions were dropped, and counted (repeats too)


def test_a_big_bench_hard_task_is_tested_but_never_trained_on():
    spec, base = load_spec("bbh-multistep_arithmetic_two")
    splits = build_splits(settings("bbh-multistep_arithmetic_two"), spec, base, load_spec("arithmetic"))
    assert len(splits.test[0]) == 50 and splits.test[0][0].id.startswith("bbh-multistep_arithmetic_two")
    reversed_roles = FinetuneSettings(task="arithmetic", train_task="bbh-multistep_arithmetic_two",
                                      strategy="stepwise", out="unused")
    with pytest.raises(EngineError, match="BIG-Bench-Hard, whose files carry a canary"):
        build_splits(reversed_roles, *load_spec("arithmetic"), load_spec("bbh-multistep_arithmetic_two"))


def test_train_task_equal_to_the_task_is_one_line(capsys):
    argv = ["finetune", "--task", "arithmetic", "--train-task", "arithmetic", "--strategy", "stepwise", "--out", "x"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--train-task arithmetic is the --task itself" in err and "\n" not in err


def test_a_generator_with_nothing_left_after_hygiene_is_refused(tmp_path):
    # every question the generator writes at depth 1 for this seed is already a test question of the real task
    candidates = arithmetic.generate(60, 1, TRAIN_SEED) + arithmetic.generate(12, 1, VALIDATION_SEED)
    task = real_task(tmp_path, [{"question": e.question, "answer": e.gold} for e in candidates])
    spec, base = load_spec(task)
    small = FinetuneSettings(task=task, train_task="arithmetic", strategy="stepwise", out="unused", depths="1",
                             train_items=20, val_items=4, test_items=100)
    with pytest.raises(EngineError, match="gave no training items that are not test items of theirs"):
        build_splits(small, spec, base, load_spec("arithmetic"))
