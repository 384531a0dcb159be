"""`eval --floor`: the same chain on the same items with a model that writes nothing, recorded in summary.json
beside the model's accuracy (and the task's chance rate), checked by `verify`, shown by `compare`, the report
and the explorer."""

from __future__ import annotations

import json
import re

import pytest

from engine.backends import ScriptedBackend
from engine.cli.main import main
from engine.explorer import write_explorer
from engine.explorer.data import load_run, page_data
from engine.runs.compare import compare_folders
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.runs.verify import verify_run
from engine.tasks.datasets import read_rows
from engine.tasks.spec import expand_path, load_spec, task_names

YES_CHAIN = ("from engine import Compute, Sequence, Step\n\n"
             "def yes_unless_told(spec):\n"
             "    return Sequence(Step('note', 'direct/answer.jinja', parse='yes-no'),\n"
             "                    Compute('answer', lambda state: state['note'] or 'yes', reads={'note'}))\n")
"""A chain whose code answers "yes" when the model says nothing: its floor is the share of yes items."""


def gold_of(request, golds):
    return next(gold for question, gold in golds.items() if question in request.messages[-1][1])


def test_floor_runs_the_same_items_without_a_model_and_verify_checks_it(tmp_path):
    out = tmp_path / "run"
    summary = run_eval(EvalSettings(task="arithmetic", strategy="cot", depth=2, limit=6, floor=True, out=str(out)),
                       backend=ScriptedBackend(lambda request: "The answer is 7."), progress=False)
    floor = summary["floor"]
    assert (floor["accuracy"], floor["unparsed_rate"], floor["n"], floor["folder"]) == (0.0, 1.0, 6, "floor")
    below = json.loads((out / "floor" / "summary.json").read_text())
    assert (below["backend"], below["model"], below["accuracy"], below["ci95"]) == ("null", "null", 0.0, floor["ci95"])
    ids = [json.loads(line)["id"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(json.loads(line)["id"] for line in (out / "floor" / "samples.jsonl").read_text()
                                 .splitlines())  # the same items
    assert verify_run(out) == ([], 6)
    assert json.loads((out / "summary.json").read_text())["floor"] == floor
    again = run_eval(EvalSettings(task="arithmetic", strategy="cot", depth=2, limit=6, floor=True, out=str(out)),
                     backend=ScriptedBackend(lambda request: "x"), progress=False)
    assert again["finished_before"] and again["floor"] == floor


def test_verify_finds_a_forged_or_missing_floor(tmp_path):
    out = tmp_path / "run"
    run_eval(EvalSettings(task="arithmetic", strategy="direct", limit=4, floor=True, out=str(out)),
             backend=ScriptedBackend(lambda request: "1"), progress=False)
    summary = json.loads((out / "summary.json").read_text())
    summary["floor"]["accuracy"] = 0.5
    (out / "summary.json").write_text(json.dumps(summary))
    problems, _ = verify_run(out)
    assert problems == [f"floor: summary.json says accuracy = 0.5, {out}/floor/summary.json gives 0.0"]
    (out / "floor" / "summary.json").unlink()
    assert verify_run(out)[0] == [f"floor: {out}/floor has no summary.json: rerun the same eval to finish its floor"]


def test_a_chain_whose_code_answers_has_that_floor_beside_chance(tmp_path, capsys):
    (tmp_path / "yes.py").write_text(YES_CHAIN)
    spec, base = load_spec("bbh-navigate")
    out = tmp_path / "run"
    code = main(["eval", "--task", "bbh-navigate", "--chain", f"{tmp_path}/yes.py:yes_unless_told", "--limit", "40",
                 "--backend", "null", "--out", str(out)])
    line = capsys.readouterr().out
    golds = [json.loads(r)["gold"] for r in (out / "samples.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0 and summary["accuracy"] == golds.count("yes") / 40 > 0
    assert summary["floor"] == {**{k: summary[k] for k in ("accuracy", "ci95", "unparsed_rate", "n", "correct")},
                                "folder": None}  # a null run is its own floor: no second run
    assert not (out / "floor").exists() and summary["chance"] == 0.5 == spec.chance
    assert "chance 50.0%" in line and "floor" not in line  # its accuracy is the floor
    assert verify_run(out)[0] == []
    assert f"- floor (no model, `--backend null`) {100 * summary['accuracy']:.1f}%" in (out / "report.md").read_text()


def test_compare_and_the_explorer_show_each_runs_floor_and_chance(tmp_path, capsys):
    spec, base = load_spec("bbh-navigate")
    from engine.tasks.spec import load_examples

    golds = {e.question: e.gold for e in load_examples(spec, base, limit=10)}
    (tmp_path / "yes.py").write_text(YES_CHAIN)
    a, b = tmp_path / "a", tmp_path / "b"
    run_eval(EvalSettings(task="bbh-navigate", strategy="direct", limit=10, floor=True, out=str(a)),
             backend=ScriptedBackend(lambda request: gold_of(request, golds).capitalize()), progress=False)
    run_eval(EvalSettings(task="bbh-navigate", chain=f"{tmp_path}/yes.py:yes_unless_told", limit=10, out=str(b)),
             backend=ScriptedBackend(lambda request: "No"), progress=False)
    floor_b = list(golds.values()).count("yes") / 10
    text = compare_folders(str(a), str(b))
    assert "floor (no model, --backend null): A 0.0% [0.0, 27.8]   B not recorded (eval --floor)" in text
    assert text.splitlines()[-1] == "chance: 50.0%"
    page = (write_explorer([a, b], tmp_path / "x.html")).read_text()
    assert "<th>floor · chance</th>" in page and "floor 0.0% · chance 50.0%" in page and ">chance 50.0%<" in page
    rows = page_data([load_run(a), load_run(b)])["runs"]
    assert rows[0]["floor"]["accuracy"] == 0.0 and rows[1]["floor"] is None and rows[1]["chance"] == 0.5
    (tmp_path / "c").mkdir()
    run_eval(EvalSettings(task="bbh-navigate", chain=f"{tmp_path}/yes.py:yes_unless_told", limit=10, floor=True,
                          out=str(tmp_path / "c")), backend=ScriptedBackend(lambda request: "No"), progress=False)
    assert f"B {100 * floor_b:.1f}%" in compare_folders(str(a), str(tmp_path / "c"))
    assert main(["eval", "--task", "bbh-navigate", "--strategy", "direct", "--limit", "10", "--floor", "--backend",
                 "null", "--out", str(tmp_path / "d")]) == 0
    assert "floor" not in capsys.readouterr().out  # a null run asked for its floor is its own: no second run
    assert not (tmp_path / "d" / "floor").exists()


def test_a_task_without_a_chance_rate_shows_no_column(tmp_path):
    out = tmp_path / "run"
    summary = run_eval(EvalSettings(task="arithmetic", strategy="direct", limit=3, out=str(out)),
                       backend=ScriptedBackend(lambda request: "1"), progress=False)
    assert summary["floor"] is None and summary["chance"] is None
    assert "floor · chance" not in write_explorer([out], tmp_path / "x.html").read_text()


def _uniform_guess(spec, base) -> float:
    """A uniform guess's accuracy on the task's own items: 1/2 for two answers, else 1/(options) per item."""
    rows = [row for _, row in read_rows(expand_path(spec.source.path, base), "bbh")]
    if spec.answer_type in ("yes-no", "bool"):
        return 0.5
    return sum(1 / len(re.findall(r"^\([A-Z]\)", row[spec.question_field], re.M)) for row in rows) / len(rows)


@pytest.mark.parametrize("task", [t for t in task_names() if load_spec(t)[0].chance is not None])
def test_every_stated_chance_rate_is_what_the_data_gives(task):
    spec, base = load_spec(task)
    assert spec.chance == pytest.approx(_uniform_guess(spec, base), abs=1e-9)


def test_chance_must_be_a_rate(tmp_path):
    from engine.errors import TaskError

    task = tmp_path / "t.yaml"
    task.write_text("name: t\nsource: {generator: arithmetic}\nanswer_type: number\nparser: number\nchance: 2\n")
    with pytest.raises(TaskError, match=rf"task file {task}:5: chance: Input should be less than or equal to 1"):
        load_spec(str(task))
