"""A task's own chains: a task file lists `FILE.py:NAME` among its strategies, `--strategy NAME` runs it,
`default_strategy` may name it, and `check --task` checks it as it checks the built-in ones."""

from __future__ import annotations

import json

import pytest

import engine.tasks.user_code as user_code
from engine.backends import ScriptedBackend
from engine.cli.main import main
from engine.errors import EngineError, TaskError
from engine.runs.evaluate import run_eval
from engine.runs.many import plan_runs
from engine.runs.plan import EvalSettings, prepare
from engine.tasks.spec import load_spec

CHAIN = '''
from engine import SamplingSettings, Sequence, Step


def walk(spec):
    return Sequence(Step("moves", "moves.jinja", SamplingSettings(max_tokens=32)),
                    Step("answer", "answer.jinja", SamplingSettings(max_tokens=8), parse=spec.parser))


broken = Step("answer", "broken.jinja")
'''
MOVES = '{{ role("user") }}List the moves in: {{ question }}\n'
ANSWER = '{{ role("user") }}Moves: {{ moves }}\nBack at the start? {{ answer_hint }}\n'
DATA = [{"question": f"Take {n} steps forward. Take {n} steps backward.", "answer": "Yes"} for n in range(1, 4)]


def write_task(folder, strategies="[direct, chains/walk.py:walk]", extra="", chain_folder=None):
    chains = (chain_folder or folder) / "chains"
    chains.mkdir(parents=True, exist_ok=True)
    (chains / "walk.py").write_text(CHAIN)
    (chains / "moves.jinja").write_text(MOVES)
    (chains / "answer.jinja").write_text(ANSWER)
    (chains / "broken.jinja").write_text('{{ role("user") }}{% if question %}no end\n')
    (folder / "walks.jsonl").write_text("".join(json.dumps(row) + "\n" for row in DATA))
    task = folder / "walks.yaml"
    task.write_text(f"name: walks\nsource: {{path: walks.jsonl}}\nanswer_type: yes-no\nparser: yes-no\n"
                    f"strategies: {strategies}\ndefault_strategy: direct\n{extra}")
    return task


def script(request):
    return "forward, backward" if request.step == "moves" else "Yes"


def test_strategy_name_runs_the_tasks_own_chain(tmp_path):
    task = write_task(tmp_path)
    summary = run_eval(EvalSettings(task=str(task), strategy="walk", out=str(tmp_path / "run")),
                       backend=ScriptedBackend(script), progress=False)
    assert (summary["strategy"], summary["accuracy"], summary["n"]) == ("walk", 1.0, 3)
    record = json.loads((tmp_path / "run" / "samples.jsonl").read_text().splitlines()[0])
    assert [s["step"] for s in record["steps"]] == ["moves", "answer"]
    assert "Moves: forward, backward" in record["steps"][1]["prompt"]  # the templates beside the chain file
    assert prepare(EvalSettings(task=str(task), strategy="chains/walk.py:walk")).strategy == "walk"  # as listed


def test_default_strategy_may_name_the_tasks_own_chain(tmp_path):
    task = write_task(tmp_path, extra="")
    task.write_text(task.read_text().replace("default_strategy: direct", "default_strategy: walk"))
    assert prepare(EvalSettings(task=str(task))).strategy == "walk"


def test_the_chain_file_is_found_beside_the_task_file_then_at_the_project_root(tmp_path, monkeypatch):
    root, tasks = tmp_path / "root", tmp_path / "tasks"
    tasks.mkdir()
    task = write_task(tasks, chain_folder=root)  # root/chains/walk.py, not beside the task file
    monkeypatch.setattr(user_code, "PROJECT_ROOT", root)
    assert prepare(EvalSettings(task=str(task), strategy="walk")).strategy == "walk"
    (tasks / "chains").mkdir()
    (tasks / "chains" / "walk.py").write_text("from engine import Step\n\nwalk = Step('answer', "
                                              "'direct/answer.jinja', parse='yes-no')\n")
    chain = prepare(EvalSettings(task=str(task), strategy="walk")).chain
    assert chain.template == "direct/answer.jinja"  # beside the task file wins


def test_check_task_checks_the_tasks_own_chains(tmp_path, capsys):
    task = write_task(tmp_path)
    assert main(["check", "--task", str(task)]) == 0
    assert "strategies checked: direct, walk" in capsys.readouterr().out
    task = write_task(tmp_path, "[direct, chains/walk.py:walk, chains/walk.py:broken]")
    assert main(["check", "--task", str(task)]) == 1
    out = capsys.readouterr().out
    assert f"problem: strategy broken: {tmp_path / 'chains' / 'broken.jinja'}:1: template syntax error" in out
    assert main(["check", "--task", str(task), "--strategy", "walk"]) == 0  # the CLI takes the task's own names
    assert "step moves (template moves.jinja): reads question; writes moves" in capsys.readouterr().out


def test_many_runs_take_the_tasks_own_chains(tmp_path):
    task = write_task(tmp_path)
    plans = plan_runs({**EvalSettings(task=str(task)).model_dump(), "strategy": "direct,walk",
                       "out": str(tmp_path / "many" / "x")})
    assert [plan.strategy for plan in plans] == ["direct", "walk"]


@pytest.mark.parametrize("strategies, message", [
    ("[direct, chains/walk.py:cot]", "strategies entry 'chains/walk.py:cot': cot is also a built-in strategy"),
    ("[chains/walk.py:walk, other/walk.py:walk]", "'chains/walk.py:walk' and 'other/walk.py:walk' are both named walk"),
    ("[direct, chains/walk.py]", "strategies entry 'chains/walk.py' must look like FILE.py:NAME"),
    ("[direct, tot]", "unknown strategy 'tot'; known: direct, cot"),
])
def test_bad_strategies_entries_are_one_line_naming_the_task_file(tmp_path, strategies, message):
    task = write_task(tmp_path, strategies)
    with pytest.raises(TaskError, match=f"task file {task}:5: strategies: .*") as caught:
        load_spec(str(task))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_chain_file_and_an_unknown_name_are_one_line(tmp_path, capsys):
    task = write_task(tmp_path, "[direct, chains/nowhere.py:walk]")
    with pytest.raises(EngineError, match=r"task walks: strategy 'chains/nowhere.py:walk': chains/nowhere.py does "
                                          rf"not exist \(looked for {tmp_path}/chains/nowhere.py, "):
        prepare(EvalSettings(task=str(task), strategy="walk"))
    task = write_task(tmp_path)
    code = main(["eval", "--task", str(task), "--strategy", "run", "--backend", "hf", "--model", "/nonexistent/model"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == ("error: unknown strategy 'run': use one of direct, cot, fewshot-cot, "
                                         "decompose, pal, sc, calc, stepwise, or one of task walks's own chains: walk")
    with pytest.raises(EngineError, match="task walks lists the strategies direct, walk, not cot"):
        prepare(EvalSettings(task=str(task), strategy="cot"))
