"""Broken data and task files: each is one line naming the file and the line, never a traceback."""

import json
import subprocess
import sys

import pytest

from engine.cli.main import main
from engine.tasks.datasets import MAX_LINE_CHARS, load_exemplars
from engine.errors import TaskError
from engine import EvalSettings, prepare
from engine.tasks.spec import PROJECT_ROOT, load_examples, load_spec

TASK = """name: pairs
source:
  path: data.jsonl
question_format: "Premise: {premise}\\nHypothesis: {hypothesis}"
answer_field: label
answer_type: nli
parser: nli
classes: [entailment, contradiction, neutral]
"""

GOOD = {"premise": "p", "hypothesis": "h", "label": "neutral"}


def line(**changes) -> str:
    return json.dumps({**GOOD, **changes})


def one_line_naming(exc_info, path) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and str(path) in message, message
    return message


@pytest.fixture
def task(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text(TASK)
    return path


def load(task, data):
    spec, base = load_spec(str(task))
    return load_examples(spec, base, data_path=str(data))


# ------------------------------------------------------------------ data files


@pytest.mark.parametrize("content, message", [
    ((line() + "\n" + line() + "\n").encode() + b'{"premise": "caf\xe9"}\n',
     r"data.jsonl:3: not valid UTF-8 \(byte 0xe9 at column 17\): save the file as UTF-8"),
    (b"\xff\xfe" + line().encode("utf-16-le"), r"data.jsonl:1: not valid UTF-8 \(byte 0xff at column 1\)"),
    ((line() + "\n" + line(premise="x" * MAX_LINE_CHARS) + "\n").encode(),
     r"data.jsonl:2: line of 1,000,0\d\d characters, more than MAX_LINE_CHARS \(1,000,000\)"),
    (b"[" * 100_000 + b"\n", r"data.jsonl:1: not usable JSON \(nested too deeply\)"),
    (f'{{"premise": "p", "hypothesis": "h", "label": {"9" * 5000}}}\n'.encode(),
     r"data.jsonl:1: not usable JSON \(Exceeds the limit \(4300 digits\) for integer string conversion"),
    ((line(id="a") + "\n" + line(id="b") + "\n\n" + line(id="a") + "\n").encode(),
     r"data.jsonl:4: id 'a' was already used on line 1: give every example its own id"),
    ((line(id=7) + "\n" + line(id="7") + "\n").encode(), r"data.jsonl:2: id '7' was already used on line 1"),
    ((line(id=[1]) + "\n").encode(), r"data.jsonl:1: id \[1\] must be non-empty text or a whole number"),
    ((line() + "\n" + json.dumps({"premise": "p", "label": "neutral"}) + "\n").encode(),
     r"data.jsonl:2: missing field 'hypothesis' used by question_format"),
    (b"", r"data file .*data.jsonl is empty"),
    ((line() + "\n{oops\n").encode(), r"data.jsonl:2: not valid JSON \(Expecting property name"),
])
def test_bad_jsonl_is_one_line_naming_file_and_line(tmp_path, task, content, message):
    data = tmp_path / "data.jsonl"
    data.write_bytes(content)
    with pytest.raises(TaskError, match=message) as info:
        load(task, data)
    one_line_naming(info, data)


def test_rows_with_unique_ids_keep_them(tmp_path, task):
    data = tmp_path / "data.jsonl"
    data.write_text(line(id="q-1") + "\n" + line(id=2) + "\n")
    assert [e.id for e in load(task, data)] == ["q-1", "2"]
    data.write_text(line() + "\n" + line() + "\n")
    assert [e.id for e in load(task, data)] == ["pairs-1", "pairs-2"]


def test_bad_json_lists(tmp_path, task):
    data = tmp_path / "data.json"
    data.write_text("[\n" + line() + ",\n" + line()[:-1] + "\n]\n")
    with pytest.raises(TaskError, match=r"data.json:4: not valid JSON \(Expecting ',' delimiter at column 1\)") as info:
        load(task, data)
    one_line_naming(info, data)
    data.write_text(json.dumps([GOOD, {**GOOD, "premise": "p" * MAX_LINE_CHARS}]))
    with pytest.raises(TaskError, match=r"data.json:2: question of 1,000,0\d\d characters, more than MAX_LINE_CHARS"):
        load(task, data)


def test_a_folder_or_missing_file_as_data(tmp_path, task):
    with pytest.raises(TaskError, match=r"data file .* is a folder: pass the file inside it") as info:
        load(task, tmp_path)
    one_line_naming(info, tmp_path)
    with pytest.raises(TaskError, match=r"data file .*nope.jsonl does not exist"):
        load(task, tmp_path / "nope.jsonl")


# ------------------------------------------------------------------ task files


@pytest.mark.parametrize("question_format, message", [
    ("Q: {0}", r"task.yaml:4: question_format: \{0\} in 'Q: \{0\}' is not a field name: name a row field"),
    ("Q: {}", r"task.yaml:4: question_format: \{\} in 'Q: \{\}' is not a field name"),
    ("Q: {x", r"task.yaml:4: question_format: 'Q: \{x' is not a format pattern \(expected '\}' before end of string\)"),
    ("Q: x}", r"task.yaml:4: question_format: 'Q: x\}' is not a format pattern \(Single '\}' encountered"),
    ("{premise.__class__.__mro__}",
     r"task.yaml:4: question_format: \{premise.__class__.__mro__\} .* is not a field name"),
    ("{premise[0]}", r"is not a field name"),
    ("no fields at all", r"task.yaml:4: question_format: 'no fields at all' names no field"),
])
def test_bad_question_format_is_refused_when_the_task_loads(tmp_path, question_format, message):
    path = tmp_path / "task.yaml"
    path.write_text(TASK.replace('"Premise: {premise}\\nHypothesis: {hypothesis}"', json.dumps(question_format)))
    with pytest.raises(TaskError, match=message) as info:
        load_spec(str(path))
    one_line_naming(info, path)


@pytest.mark.parametrize("gold_pattern, message", [
    ("#### (.+", r"task.yaml:9: gold_pattern: '#### \(\.\+' is not a regular expression \(missing \), unterminated"),
    ("#### .+", r"task.yaml:9: gold_pattern: '#### \.\+' has no group: put the answer in parentheses"),
])
def test_bad_gold_pattern_is_refused_when_the_task_loads(tmp_path, gold_pattern, message):
    path = tmp_path / "task.yaml"
    path.write_text(TASK + f"gold_pattern: {json.dumps(gold_pattern)}\n")
    with pytest.raises(TaskError, match=message) as info:
        load_spec(str(path))
    one_line_naming(info, path)


@pytest.mark.parametrize("content, message", [
    (TASK.encode().replace(b"pairs", b"p\xe4irs"), r"task.yaml:1: not valid UTF-8 \(byte 0xe4 at column 8\)"),
    (TASK.replace("parser: nli", "parser: [nli").encode(), r"task file .*task.yaml:8: not valid YAML \("),
    (TASK.replace("  path: data.jsonl", "  path: data.jsonl\n  formt: jsonl").encode(),
     r"task.yaml:4: source.formt: unknown key \(check the spelling\)"),
    (TASK.replace("answer_type: nli", "answer_type: label").encode(), r"task.yaml:6: answer_type: Input should be"),
])
def test_bad_task_files(tmp_path, content, message):
    path = tmp_path / "task.yaml"
    path.write_bytes(content)
    with pytest.raises(TaskError, match=message) as info:
        load_spec(str(path))
    one_line_naming(info, path)


# ------------------------------------------------------------------ exemplars


@pytest.mark.parametrize("rows, message", [
    ([{"question": "q", "answer": "x\n#### 1"}, {"question": "q2"}], r"train.jsonl:2: exemplar has no 'answer' text"),
    ([{"answer": "x\n#### 1"}], r"train.jsonl:1: exemplar has no 'question' text"),
    ([{"question": "q", "answer": 5}], r"train.jsonl:1: exemplar has no 'answer' text"),
    ([{"question": "q", "answer": "just 5"}], r"train.jsonl:1: exemplar answer has no final '#### N' line"),
])
def test_bad_gsm8k_exemplars(tmp_path, rows, message):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(TaskError, match=message) as info:
        load_exemplars(path, "gsm8k", 5)
    one_line_naming(info, path)


def test_bad_bbh_exemplars(tmp_path):
    path = tmp_path / "cot.txt"
    path.write_bytes(b"canary\n-----\nQ: caf\xe9?\nA: So the answer is yes.\n")
    with pytest.raises(TaskError, match=r"cot.txt:3: not valid UTF-8") as info:
        load_exemplars(path, "bbh-cot", 3)
    one_line_naming(info, path)


# ------------------------------------------------------------------ through eval, before any model loads


def test_prepare_stops_at_bad_data_before_loading_a_model(tmp_path, task):
    data = tmp_path / "bad.jsonl"
    data.write_bytes(line().encode() + b"\n\xff\n")
    with pytest.raises(TaskError, match=r"bad.jsonl:2: not valid UTF-8"):
        prepare(EvalSettings(task=str(task), data=str(data), limit=2, model="no-such-model"))


def test_cli_eval_prints_one_line(tmp_path, task, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text(line(id="a") + "\n" + line(id="a") + "\n")
    code = main(["eval", "--task", str(task), "--data", str(data), "--limit", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bad.jsonl:2: id 'a' was already used on line 1" in err


def test_python_dash_m_engine_eval_prints_one_line(tmp_path, task):
    data = tmp_path / "bad.jsonl"
    data.write_bytes(b"\xfe" + line().encode() + b"\n")
    done = subprocess.run([sys.executable, "-m", "engine", "eval", "--task", str(task), "--data", str(data),
                           "--limit", "2"], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{data}:1: not valid UTF-8 (byte 0xfe at column 1)" in done.stderr
