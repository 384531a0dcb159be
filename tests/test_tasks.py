"""Task files, data loading and the errors users see for bad input."""

import json

import pytest

from engine.tasks.datasets import load_exemplars
from engine.errors import EngineError, TaskError
from engine import EvalSettings, prepare
from engine.tasks.spec import load_examples, load_spec, task_names


def write_task(tmp_path, text: str):
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return str(path)


BASE = """name: t
source:
  path: data.jsonl
answer_type: number
parser: number
"""


def test_every_shipped_task_file_validates_and_loads(shared_data):
    names = task_names()
    assert {"gsm8k", "arithmetic", "nli", "sudoku"} <= set(names)
    assert sum(n.startswith("bbh-") for n in names) == 13
    for name in names:
        spec, base = load_spec(name)
        examples = load_examples(spec, base, limit=3)
        assert len(examples) == 3 and all(e.question and e.gold for e in examples)


def test_gsm8k_gold_is_the_number_after_hashes(shared_data):
    spec, base = load_spec("gsm8k")
    first = load_examples(spec, base, limit=1)[0]
    assert first.gold == "18" and first.question.startswith("Janet")


def test_bbh_exemplars_come_from_cot_prompts(shared_data):
    exemplars = load_exemplars(shared_data / "bbh/cot-prompts/navigate.txt", "bbh-cot", 3)
    assert len(exemplars) == 3
    assert all(e["answer"].startswith("Let's think step by step.") for e in exemplars)
    assert all("So the answer is" in e["answer"] for e in exemplars)


def test_gsm8k_exemplars_end_with_the_strict_format(shared_data):
    exemplars = load_exemplars(shared_data / "gsm8k/train.jsonl", "gsm8k", 2)
    assert exemplars[0]["answer"].endswith("#### 72") and "<<" not in exemplars[0]["answer"]


def test_unknown_key_is_rejected(tmp_path):
    with pytest.raises(TaskError, match=r"task.yaml:6: answer_tipe: unknown key"):
        load_spec(write_task(tmp_path, BASE + "answer_tipe: number\n"))


def test_missing_field_is_named(tmp_path):
    with pytest.raises(TaskError, match=r"parser: Field required"):
        load_spec(write_task(tmp_path, BASE.replace("parser: number\n", "")))


def test_unknown_task_lists_known_ones():
    with pytest.raises(TaskError, match="unknown task 'nope'.*gsm8k"):
        load_spec("nope")


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("", "is empty"),
    ('{"question": "q", "answer": "1"}\n{"answer": "2"}\n', r"data.jsonl:2: missing or empty question field"),
    ('{"question": "q", "answer": "1"}\n{"question": "q2"}\n', r"data.jsonl:2: missing gold field 'answer'"),
    ('{"question": "q", "answer": "seven"}\n', r"data.jsonl:1: gold 'seven' is not a number"),
    ('{"question": "q", "answer": [1]}\n', r"data.jsonl:1: gold \[1\] must be text or a number"),
    ('{"question": "q", "answer": "1"}\nnot json\n', r"data.jsonl:2: not valid JSON"),
])
def test_bad_data_files(tmp_path, content, message):
    spec, base = load_spec(write_task(tmp_path, BASE))
    if content is not None:
        (tmp_path / "data.jsonl").write_text(content)
    with pytest.raises(TaskError, match=message):
        load_examples(spec, base)


def test_strategy_that_does_not_exist():
    with pytest.raises(EngineError, match="unknown strategy 'tot'"):
        prepare(EvalSettings(task="arithmetic", strategy="tot"))


def test_nli_task_reads_premise_and_hypothesis(tmp_path):
    spec, base = load_spec("nli")
    examples = load_examples(spec, base)
    assert examples[0].question.startswith("Premise: A man is playing") and examples[0].gold == "entailment"
    bad = tmp_path / "nli.jsonl"
    bad.write_text(json.dumps({"premise": "p", "hypothesis": "h", "label": "maybe"}) + "\n")
    with pytest.raises(TaskError, match="gold 'maybe' is not one of the classes"):
        load_examples(spec, base, data_path=str(bad))


def test_generated_task_honours_depth_limit_and_seed():
    spec, base = load_spec("arithmetic")
    a = load_examples(spec, base, limit=5, depth=4, seed=3)
    assert len(a) == 5 and all(len(e.gold_steps) == 4 for e in a)
    assert a == load_examples(spec, base, limit=5, depth=4, seed=3)
    other = load_examples(spec, base, limit=5, depth=4, seed=4)
    assert [(e.question, e.gold) for e in other] != [(e.question, e.gold) for e in a]  # another seed, other items


def test_hub_loading_through_datasets_on_a_local_file(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"question": "1+1?", "answer": "#### 2"}\n')
    task = write_task(tmp_path, f"""name: t
source:
  hf: {{path: json, data_files: "{tmp_path / 'rows.jsonl'}", split: train}}
answer_type: number
gold_pattern: "#### (.+)$"
parser: number
""")
    spec, base = load_spec(task)
    (example,) = load_examples(spec, base)
    assert example.gold == "2" and example.question == "1+1?"
