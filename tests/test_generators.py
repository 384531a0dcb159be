"""A task file's own generator (`source: {generator: FILE.py:NAME}`): rows from the user's function become items
as a data file's rows do, FILE is found beside the task file (then at the project root), and every way it can
go wrong is one line naming the file and the row."""

from __future__ import annotations

import json
import sys

import pytest

import engine.tasks.user_code as user_code
from engine.backends import ScriptedBackend
from engine.cli.main import main
from engine.errors import TaskError
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.synthetic import GENERATORS
from engine.tasks.spec import load_examples, load_spec, task_names

GENERATOR = '''
import random


def make(count, depth, seed):
    """Sums of `depth` numbers, with the running total as gold steps."""
    rows = []
    for i in range(count):
        rng = random.Random(f"{seed}:{depth}:{i}")
        numbers = [rng.randint(1, 9) for _ in range(depth)]
        totals = [sum(numbers[: k + 1]) for k in range(depth)]
        rows.append({"question": "Add " + ", ".join(map(str, numbers)) + ".", "answer": totals[-1],
                     "steps": totals, "numbers": numbers})
    return rows


def with_ids(count, depth, seed):
    return [dict(row, id=f"mine-{n}") for n, row in enumerate(make(count, depth, seed))]


def too_many(count, depth, seed):
    return make(count + 5, depth, seed)


def no_question(count, depth, seed):
    rows = make(count, depth, seed)
    del rows[1]["question"]
    return rows


def no_answer(count, depth, seed):
    rows = make(count, depth, seed)
    rows[2]["answer"] = None
    return rows


def fails(count, depth, seed):
    return {}["missing"]


def yields_then_fails(count, depth, seed):
    yield make(1, depth, seed)[0]
    raise ValueError("ran out")


def returns_text(count, depth, seed):
    return "rows"


def one_argument(count):
    return []


not_a_function = 3
'''

FAILING_LINE = GENERATOR.splitlines().index('    return {}["missing"]') + 1
RAISING_LINE = GENERATOR.splitlines().index('    raise ValueError("ran out")') + 1


def write_task(folder, generator="gen/sums.py:make", extra=""):
    (folder / "gen").mkdir(exist_ok=True)
    (folder / "gen" / "sums.py").write_text(GENERATOR)
    task = folder / "sums.yaml"
    task.write_text(f"name: sums\nsource: {{generator: \"{generator}\", depth: 3, count: 20}}\nanswer_type: number\n"
                    f"parser: number\nsteps_field: steps\nstrategies: [direct, cot]\n{extra}")
    return task


def test_rows_from_a_file_generator_become_items_with_gold_steps(tmp_path):
    spec, base = load_spec(str(write_task(tmp_path)))
    items = load_examples(spec, base, limit=4, depth=5, seed=2)
    assert [e.id for e in items] == [f"sums-d5-s2-{i}" for i in range(4)]  # named as built-in items are
    for item in items:
        numbers = item.fields["numbers"]
        assert item.question == "Add " + ", ".join(map(str, numbers)) + "."
        assert item.gold == str(sum(numbers)) and len(item.gold_steps) == 5 and item.gold_steps[-1] == item.gold
        assert set(item.fields) == {"numbers"}  # question, answer and steps are not shown to templates
    assert load_examples(spec, base, limit=4, depth=5, seed=2) == items
    assert load_examples(spec, base, limit=4, depth=5, seed=3) != items
    assert len(load_examples(spec, base)) == 20 and len(load_examples(spec, base)[0].gold_steps) == 3  # count, depth
    assert len(load_examples(spec, base, depth=40)[0].gold_steps) == 40  # depth as given: only the file knows its range


def test_a_rows_own_id_is_kept_and_rows_beyond_count_are_cut(tmp_path):
    spec, base = load_spec(str(write_task(tmp_path, "gen/sums.py:with_ids")))
    assert [e.id for e in load_examples(spec, base, limit=2)] == ["mine-0", "mine-1"]
    spec, base = load_spec(str(write_task(tmp_path, "gen/sums.py:too_many")))
    assert len(load_examples(spec, base, limit=3)) == 3 and len(load_examples(spec, base)) == 20


def test_the_file_is_found_beside_the_task_file_then_at_the_project_root(tmp_path, monkeypatch):
    root, elsewhere = tmp_path / "root", tmp_path / "tasks"
    root.mkdir()
    elsewhere.mkdir()
    write_task(root)  # root/gen/sums.py
    task = elsewhere / "sums.yaml"
    task.write_text((root / "sums.yaml").read_text())
    monkeypatch.setattr(user_code, "PROJECT_ROOT", root)
    spec, base = load_spec(str(task))
    assert len(load_examples(spec, base, limit=3)) == 3  # not beside the task file: the project root's
    (elsewhere / "gen").mkdir()
    (elsewhere / "gen" / "sums.py").write_text("def make(count, depth, seed):\n    return [{'question': 'beside?', "
                                               "'answer': 1, 'steps': [1]}]\n")
    assert [e.question for e in load_examples(spec, base, limit=3)] == ["beside?"]  # beside the task file wins


def test_built_in_generators_are_the_same_kind_of_function_and_items_did_not_change():
    """GENERATORS holds plain `(count, depth, seed)` functions; a task file's items are exactly theirs."""
    for task in task_names():
        spec, base = load_spec(task)
        if spec.source.generator is None:
            continue
        function = GENERATORS[spec.source.generator]
        assert function.__name__ == "generate" and sys.modules[function.__module__].MAX_DEPTH >= 7  # orderings: 7! orders
        assert load_examples(spec, base, limit=5, depth=2, seed=4) == function(5, 2, 4)
    first = GENERATORS["arithmetic"](1, 3, 0)[0]
    assert (first.id, first.question, first.gold) == (
        "arith-d3-s0-0", "Start with 2. Divide by 2. Multiply by 7. Multiply by 3. What is the result?", "21")


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("generator, message", [
    ("gen/nowhere.py:make", "generator 'gen/nowhere.py:make': gen/nowhere.py does not exist (looked for {dir}/gen/"
                            "nowhere.py, "),
    ("gen/sums.py", "generator 'gen/sums.py' must look like FILE.py:NAME (a function (count, depth, seed) returning "
                    "rows"),
    ("gen/sums.py:nope", "{dir}/gen/sums.py defines no 'nope': name one of fails, make, no_answer, no_question, "
                         "one_argument, returns_text, too_many, with_ids, yields_then_fails as the task's generator"),
    ("gen/sums.py:not_a_function", "{dir}/gen/sums.py: not_a_function is a int, not a function"),
    ("gen/sums.py:one_argument", "{dir}/gen/sums.py: one_argument must take three arguments, as in "
                                 "`def one_argument(count, depth, seed):`"),
    ("gen/sums.py:fails", f"{{dir}}/gen/sums.py:{FAILING_LINE}: KeyError: 'missing' (in fails(20, 3, 0))"),
    ("gen/sums.py:yields_then_fails", f"{{dir}}/gen/sums.py:{RAISING_LINE}: ValueError: ran out (in "
                                      "yields_then_fails(20, 3, 0))"),
    ("gen/sums.py:returns_text", "{dir}/gen/sums.py: returns_text(20, 3, 0) returned a str, not a list of rows"),
    ("gen/sums.py:no_question", "{dir}/gen/sums.py:no_question row 2: missing or empty question field 'question'"),
    ("gen/sums.py:no_answer", "{dir}/gen/sums.py:no_answer row 3: missing gold field 'answer'"),
])
def test_a_bad_generator_is_one_line_naming_the_file_and_the_row(tmp_path, capsys, generator, message):
    task = write_task(tmp_path, generator)
    expected = message.format(dir=tmp_path)
    with pytest.raises(TaskError) as caught:
        spec, base = load_spec(str(task))
        load_examples(spec, base)
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    code, _, err = run_cli(capsys, "eval", "--task", str(task), "--strategy", "direct", "--backend", "hf",
                           "--model", "/nonexistent/model")  # refused before any model loads
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    code, out, _ = run_cli(capsys, "check", "--task", str(task))
    assert code == 1 and expected in out


def test_an_unknown_built_in_generator_says_how_to_name_ones_own(tmp_path):
    spec, base = load_spec(str(write_task(tmp_path, "arithmetics")))
    with pytest.raises(TaskError, match=r"unknown generator 'arithmetics': use one of arithmetic, .*or your own as "
                                        r"FILE.py:NAME"):
        load_examples(spec, base)


def test_eval_on_a_file_generator_scores_per_step(tmp_path):
    task = write_task(tmp_path)
    spec, base = load_spec(str(task))
    golds = {e.question: e for e in load_examples(spec, base, limit=4, depth=2)}

    def script(request):  # right on the first two items, wrong at step 2 on the others
        item = next(e for q, e in golds.items() if q in request.messages[-1][1])
        right = list(golds).index(item.question) < 2
        last = item.gold if right else str(int(item.gold) + 1)
        return f"{item.gold_steps[0]}\n{last}\nThe answer is {last}."

    summary = run_eval(EvalSettings(task=str(task), strategy="cot", depth=2, limit=4, out=str(tmp_path / "run")),
                       backend=ScriptedBackend(script), progress=False)
    assert (summary["accuracy"], summary["depth"], summary["per_step"]["accuracy"]) == (0.5, 2, [1.0, 0.5])
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == [f"sums-d2-s0-{i}" for i in range(4)]
