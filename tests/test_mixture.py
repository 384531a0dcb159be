"""`finetune --task a,b --train-task ga,gb`: one adapter for several tasks, balanced, validated over all of them,
each task tested before and after on its own items; and the mixtures that are refused in one line."""

from __future__ import annotations

import json

import pytest

from engine.cli.main import main
from engine.finetune import mixture
from engine.finetune.settings import FinetuneSettings

TASKS = "bbh-navigate,bbh-boolean_expressions"
TRAIN = "navigate-gen,boolean-gen"


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("tasks, train, says", [
    (TASKS, "navigate-gen", "--task names 2 tasks but --train-task names 1"),
    ("bbh-navigate,bbh-navigate", TRAIN, "--task names bbh-navigate twice"),
    (TASKS, "navigate-gen,navigate-gen", "--train-task names navigate-gen twice"),
    ("bbh-navigate,boolean-gen", "navigate-gen,boolean-gen", "--train-task boolean-gen is its --task itself"),
    (TASKS, None, "needs --train-task with as many training tasks"),
    ("bbh-navigate,", TRAIN, "has an empty name"),
])
def test_a_mixture_that_cannot_be_meant_is_one_line(capsys, tmp_path, tasks, train, says):
    argv = ["finetune", "--task", tasks, "--out", str(tmp_path / "out")] + (["--train-task", train] if train else [])
    assert says in one_line_error(capsys, argv)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_training_task_whose_generator_writes_nothing_is_named(capsys, tmp_path):
    (tmp_path / "empty.py").write_text("def nothing(count, depth, seed):\n    return []\n")
    (tmp_path / "empty.yaml").write_text("name: empty-gen\nsource: {generator: empty.py:nothing, depth: 3}\n"
                                         "answer_type: yes-no\nparser: yes-no\n")
    argv = ["finetune", "--task", TASKS, "--train-task", f"navigate-gen,{tmp_path / 'empty.yaml'}",
            "--out", str(tmp_path / "out")]
    err = one_line_error(capsys, argv)
    assert f"{tmp_path / 'empty.py'}:nothing wrote no items at depth 1" in err  # the first training depth (1-4)


def test_each_task_brings_the_same_number_of_items_from_its_own_training_task():
    settings = FinetuneSettings(task=TASKS, train_task=TRAIN, out="unused", train_items=30, val_items=1, test_items=5)
    group = mixture.members(settings, settings.train_items)
    assert [m.spec.name for m in group] == ["bbh-navigate", "bbh-boolean_expressions"]
    assert [m.label for m in group] == ["walk", "simplify"]  # each task's own chain
    assert [len(m.splits.train) for m in group] == [30, 30]  # balanced, though their depths differ (10 and 4)
    assert all(e.id.startswith("navigate-") for e in group[0].splits.train)
    assert all(e.id.startswith("boolean-") for e in group[1].splits.train)
    assert {len(e.gold_steps) - 1 for e in group[0].splits.train} == set(range(1, 11))  # navigate-gen's 1-10
    assert [len(m.splits.validation) for m in group] == [10, 4]  # one per depth of each training task
    assert all(m.splits.overlap == 0 and len(m.splits.test[0]) == 5 for m in group)


def test_validation_is_the_mean_over_tasks():
    settings = FinetuneSettings(task=TASKS, train_task=TRAIN, out="unused", train_items=4, val_items=1, test_items=2)
    group = mixture.members(settings, settings.train_items)
    scores = {"bbh-navigate": 1.0, "bbh-boolean_expressions": 0.0}
    validate = mixture.mixed_validator(group, lambda chain, items, states, spec: lambda model, tok: scores[spec.name])
    assert validate(None, None) == 0.5  # 10 navigate items do not outweigh 4 boolean ones


def test_one_adapter_for_two_tasks_end_to_end(tmp_path, tiny_model_dir):
    out = tmp_path / "mix"
    argv = ["finetune", "--task", TASKS, "--train-task", TRAIN, "--model", tiny_model_dir, "--train-items", "4",
            "--val-items", "1", "--test-items", "3", "--max-steps", "2", "--eval-every", "2", "--backend", "hf",
            "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["tasks"]) == {"bbh-navigate", "bbh-boolean_expressions"}
    for name, task in summary["tasks"].items():
        assert task["data"]["overlap"] == 0 and task["data"]["train_items"] == 4
        assert task["test"]["all"]["n"] == 3
        assert (out / "test" / name / "base" / "all" / "summary.json").exists()
        assert (out / "test" / name / "tuned" / "all" / "summary.json").exists()
    assert summary["rounds"][0]["pairs"] > 8 and (out / "model" / "adapter_config.json").exists()
