"""The authoring loop from the command line: custom chain files, `check`, `render --template`, gold steps from
data files (`steps_field`) and the task file's `strategies:` list."""

import json
from pathlib import Path

import pytest

from engine.backends import ScriptedBackend
from engine.cli.main import main
from engine.errors import EngineError
from engine import EvalSettings, run_eval

WORK = """{{ role("user") }}Work it out step by step: {{ question }}
"""
ANSWER = """{{ role("user") }}{{ question }}
Working so far: {{ work }}
Reply with {{ answer_hint }} only.
"""
CHAINS = """
from engine.chains.nodes import Sequence, Step
from engine.sampling import SamplingSettings

solve = Sequence(
    Step("work", "work.jinja", SamplingSettings(max_tokens=12)),
    Step("answer", "answer.jinja", SamplingSettings(max_tokens=8), parse="number"),
)


def for_task(spec):
    return Sequence(Step("work", "work.jinja", SamplingSettings(max_tokens=12)),
                    Step("answer", "answer.jinja", SamplingSettings(max_tokens=8), parse=spec.parser))


def needs_two_arguments(spec, other):
    return solve


def returns_text(spec):
    return "not a chain"


def fails_inside(spec):
    return {}["missing"]


no_answer = Step("work", "work.jinja")
"""

FAILING_LINE = CHAINS.splitlines().index('    return {}["missing"]') + 1


@pytest.fixture
def chain_dir(tmp_path) -> Path:
    folder = tmp_path / "mychains"
    folder.mkdir()
    (folder / "work.jinja").write_text(WORK)
    (folder / "answer.jinja").write_text(ANSWER)
    (folder / "chains.py").write_text(CHAINS)
    return folder


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_eval_chain_end_to_end_on_a_real_model(chain_dir, tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "eval", "--task", "arithmetic", "--chain", f"{chain_dir}/chains.py:solve",
                                "--depth", "2", "--limit", "3", "--backend", "hf", "--model", tiny_model_dir,
                                "--out", str(out))
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["strategy"], summary["chain"], summary["n"]) == ("solve", f"{chain_dir}/chains.py:solve", 3)
    assert json.loads((out / "run.json").read_text())["chain"] == f"{chain_dir}/chains.py:solve"
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for record in records:
        assert [s["step"] for s in record["steps"]] == ["work", "answer"]
        work, answer = record["steps"]
        assert "Work it out step by step: " + record["question"] in work["prompt"]  # the template beside the file
        assert "Working so far: " + work["outputs"][0] in answer["prompt"]  # step two saw step one's output
        assert work["completion_tokens"] <= 12 and answer["completion_tokens"] <= 8
    assert "solve" in stdout and f"wrote {out}/summary.json" in stdout


def test_a_chain_factory_gets_the_task_spec_and_votes_with_samples(chain_dir, tmp_path):
    def script(request):
        return "The answer is 5." if request.step == "answer" else "first 2, then 5"

    summary = run_eval(EvalSettings(task="arithmetic", chain=f"{chain_dir}/chains.py:for_task", depth=1, limit=2,
                                    samples=3, out=str(tmp_path / "voted")), backend=ScriptedBackend(script),
                       progress=False)
    assert summary["strategy"] == "for_task" and "maj@3" in summary and "pass@3" in summary
    records = [json.loads(line) for line in (tmp_path / "voted" / "samples.jsonl").read_text().splitlines()]
    assert all(len(r["samples"]) == 3 for r in records)
    for record in records:  # three branches, each its own work and answer step
        assert sorted((s["branch"], s["step"]) for s in record["steps"]) == [
            (b, step) for b in range(3) for step in ("answer", "work")]


def test_chain_and_strategy_together_are_refused(chain_dir):
    with pytest.raises(EngineError, match="pass --strategy or --chain, not both"):
        run_eval(EvalSettings(task="arithmetic", strategy="cot", chain=f"{chain_dir}/chains.py:solve", limit=1),
                 backend=ScriptedBackend(["x"]), progress=False)


@pytest.mark.parametrize("reference, message", [
    ("chains.py", "must look like FILE.py:NAME"),
    ("nowhere.py:solve", "nowhere.py does not exist"),
    ("work.jinja:solve", "is not a Python file"),
    ("chains.py:nope", "defines no 'nope': name one of fails_inside, for_task, needs_two_arguments, no_answer, "
                       "returns_text, solve"),
    ("chains.py:needs_two_arguments", "must take one argument, the task spec"),
    ("chains.py:returns_text", "returned a str, not a chain"),
    ("chains.py:fails_inside", f"chains.py:{FAILING_LINE}: KeyError: 'missing' (in fails_inside(spec))"),
    ("chains.py:no_answer", "never writes 'answer'"),
])
def test_bad_chain_references_are_one_clear_line(chain_dir, capsys, reference, message):
    code, _, err = run_cli(capsys, "eval", "--task", "arithmetic", "--chain", f"{chain_dir}/{reference}",
                           "--backend", "hf", "--model", "/nonexistent/model")  # refused before any model loads
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_check_reports_what_is_wrong_with_file_and_line(chain_dir, capsys):
    (chain_dir / "broken.jinja").write_text('{{ role("user") }}Q: {{ question }}\n{% if hint %}\nno end\n')
    (chain_dir / "more.py").write_text(
        "from engine.chains.nodes import Compute, Sequence, Step\n"
        "syntax = Step('answer', 'broken.jinja')\n"
        "unwired = Sequence(Step('answer', 'answer.jinja'))\n"
        "tool_unwired = Sequence(Step('answer', 'work.jinja'), Compute('final', lambda s: 1, reads={'verdict'}))\n")
    (chain_dir / "badparser.py").write_text("from engine.chains.nodes import Step\n\nchain = Step('answer', 'work.jinja', "
                                            "parse='nmber')\n")
    (chain_dir / "badsyntax.py").write_text("from engine.chains.nodes import Step\nchain = Step('answer', 'work.jinja'\n")

    def check(reference):
        code, out, _ = run_cli(capsys, "check", "--chain", f"{chain_dir}/{reference}", "--task", "arithmetic")
        return code, out

    code, out = check("chains.py:solve")
    assert code == 0 and out.splitlines()[-1] == f"ok: {chain_dir}/chains.py:solve"
    assert "step answer (template answer.jinja): reads answer_hint, question, work; writes answer" in out
    expected = {
        "more.py:syntax": f"{chain_dir / 'broken.jinja'}:3: template syntax error: Unexpected end of template",
        "more.py:unwired": "step 'answer' (template answer.jinja) reads work, which no earlier step produces",
        "more.py:tool_unwired": "step 'final' reads verdict, which no earlier step produces",
        "badparser.py:chain": f"{chain_dir / 'badparser.py'}:3: step 'answer': unknown parser 'nmber'; known: ",
        "badsyntax.py:chain": f"{chain_dir / 'badsyntax.py'}:2: syntax error",
    }
    for reference, message in expected.items():
        code, out = check(reference)
        assert code == 1 and out.startswith(f"problem: {message}"), (reference, out)
        assert out.splitlines()[-1] == f"1 problem(s) in {chain_dir}/{reference}"


def test_check_a_template_and_a_task(chain_dir, capsys):
    code, out, _ = run_cli(capsys, "check", "--template", str(chain_dir / "answer.jinja"), "--task", "gsm8k")
    assert code == 1 and "reads work, which items of gsm8k do not have" in out
    code, out, _ = run_cli(capsys, "check", "--template", str(chain_dir / "work.jinja"), "--task", "gsm8k")
    assert code == 0 and "reads: question" in out
    code, out, _ = run_cli(capsys, "check", "--task", "gsm8k")
    assert code == 0 and "strategies checked: direct, cot, fewshot-cot, decompose, pal, sc, calc" in out
    code, _, err = run_cli(capsys, "check")
    assert code == 2 and "check needs --chain" in err


def test_render_a_template_on_its_own(chain_dir, capsys):
    (chain_dir / "plain.jinja").write_text("Q: {{ question }}\n{% for e in exemplars %}- {{ e }}\n{% endfor %}")
    code, out, err = run_cli(capsys, "render", "--template", str(chain_dir / "plain.jinja"),
                             "--set", "question=What is 2 + 3?", "--set-json", 'exemplars=["a", 7]')
    assert code == 0, err
    assert out == "Q: What is 2 + 3?\n- a\n- 7\n\n"
    code, _, err = run_cli(capsys, "render", "--template", str(chain_dir / "plain.jinja"), "--set", "question=x")
    assert code == 2 and "reads exemplars: pass --set NAME=VALUE" in err
    code, _, err = run_cli(capsys, "render", "--template", str(chain_dir / "plain.jinja"), "--set", "no equals")
    assert code == 2 and "must look like NAME=VALUE" in err
    code, _, err = run_cli(capsys, "render", "--template", str(chain_dir / "plain.jinja"), "--set-json", "exemplars=[")
    assert code == 2 and "is not JSON" in err


def test_render_a_chat_template_with_an_items_fields(chain_dir, tiny_model_dir, capsys):
    from engine.synthetic import arithmetic

    item = arithmetic.generate(3, 2, 0)[2]
    code, out, err = run_cli(capsys, "render", "--template", str(chain_dir / "answer.jinja"), "--task", "arithmetic",
                             "--depth", "2", "--index", "2", "--set", "work=7 then 9", "--model", tiny_model_dir)
    assert code == 0, err
    assert out.startswith("<|im_start|>system\n") and out.endswith("<|im_start|>assistant\n\n")
    assert f"<|im_start|>user\n{item.question}\nWorking so far: 7 then 9\nReply with a number only.<|im_end|>" in out


def test_render_an_items_prompt_for_a_custom_chain(chain_dir, tiny_model_dir, capsys):
    code, out, err = run_cli(capsys, "render", "--task", "arithmetic", "--chain", f"{chain_dir}/chains.py:solve",
                             "--index", "1", "--model", tiny_model_dir)
    assert code == 0, err
    assert "strategy solve" in out.splitlines()[0] and "Work it out step by step: " in out


STEPS_TASK = """name: my-steps
source:
  path: {path}
answer_type: number
parser: number
steps_field: steps
strategies: [cot]
"""


def write_steps_task(tmp_path, rows) -> Path:
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = tmp_path / "my-steps.yaml"
    task.write_text(STEPS_TASK.format(path=data))
    return task


def test_gold_steps_from_a_data_file_give_per_step_accuracy(tmp_path):
    rows = [{"id": "a", "question": "Start with 2, add 3, double it, subtract 1.", "answer": 9, "steps": [5, 10, 9]},
            {"id": "b", "question": "Start with 4, add 4, halve it, add 10.", "answer": 14, "steps": ["8", "4.0", 14]},
            {"id": "c", "question": "Start with 1, add 1, triple it, add 1.", "answer": 7, "steps": [2, 6, 7]}]
    task = write_steps_task(tmp_path, rows)
    texts = {"a": "5, then 10, then 9. The answer is 9.",  # every step right
             "b": "8, then 5, then 14. The answer is 14.",  # step 2 wrong
             "c": "3 and 8. The answer is 8."}  # wrong from step 1
    by_question = {r["question"]: texts[r["id"]] for r in rows}

    def script(request):
        return next(text for q, text in by_question.items() if q in request.messages[-1][1])

    summary = run_eval(EvalSettings(task=str(task), strategy="cot", out=str(tmp_path / "run")),
                       backend=ScriptedBackend(script), progress=False)
    steps = summary["per_step"]
    assert steps["accuracy"] == [2 / 3, 1 / 3, 2 / 3] and steps["first_wrong"] == [1, 1, 0]
    assert steps["all_right"] == 1 and steps["support"] == [3, 3, 3]
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "samples.jsonl").read_text().splitlines())}
    assert records["b"]["gold_steps"] == ["8", "4", "14"]  # canonical numbers
    assert records["b"]["pred_steps"] == ["8", None, "14"]


@pytest.mark.parametrize("row, message", [
    ({"question": "q", "answer": 1}, "missing gold steps field 'steps'"),
    ({"question": "q", "answer": 1, "steps": "1, 2"}, "must be a non-empty list of intermediate results"),
    ({"question": "q", "answer": 1, "steps": []}, "must be a non-empty list"),
    ({"question": "q", "answer": 1, "steps": [1, "two"]}, "gold step 2 of 'steps' is 'two', not a number"),
    ({"question": "q", "answer": 1, "steps": [1, None]}, "gold step 2 of 'steps' is None"),
])
def test_bad_gold_steps_name_the_file_and_line(tmp_path, row, message):
    from engine.tasks.spec import load_examples, load_spec

    task = write_steps_task(tmp_path, [{"question": "fine", "answer": 2, "steps": [2]}, row])
    spec, base = load_spec(str(task))
    with pytest.raises(EngineError, match="items.jsonl:2: ") as caught:
        load_examples(spec, base)
    assert message in str(caught.value)


def test_gold_steps_are_not_shown_to_templates(tmp_path):
    from engine.tasks.spec import load_examples, load_spec

    task = write_steps_task(tmp_path, [{"question": "q", "answer": 2, "steps": [1, 2], "note": "kept"}])
    spec, base = load_spec(str(task))
    (example,) = load_examples(spec, base)
    assert example.gold_steps == ("1", "2") and example.fields == {"note": "kept"}


def test_the_task_files_strategies_list_is_enforced(capsys):
    code, _, err = run_cli(capsys, "eval", "--task", "bbh-navigate", "--strategy", "pal", "--backend", "hf",
                           "--model", "/nonexistent/model")
    assert code == 2
    assert err.strip() == ("error: task bbh-navigate lists the strategies direct, cot, fewshot-cot, sc, walk, not pal: "
                           "pick one of those, or add pal to the task file's strategies: list")
    code, _, err = run_cli(capsys, "eval", "--task", "bbh-navigate,gsm8k", "--strategy", "pal", "--backend", "hf",
                           "--model", "/nonexistent/model")
    assert code == 2 and "task bbh-navigate lists the strategies" in err


def test_the_shipped_example_chain_reads_its_gold_steps_from_the_working(capsys):
    """prompts/plan-answer/chain.py, the README's walk-through: per-step accuracy reads the `working` step."""
    from engine.synthetic import arithmetic
    from engine.tasks.spec import PROJECT_ROOT

    items = arithmetic.generate(4, 3, 0)
    by_question = {e.question: e for e in items}

    def script(request):
        item = next(e for q, e in by_question.items() if q in request.messages[-1][1])
        if request.step == "working":  # items 0 and 1 work every step out; 2 and 3 go wrong at step 2
            steps = list(item.gold_steps) if item is items[0] or item is items[1] else [item.gold_steps[0], "-999"]
            return "\n".join(f"Step: result {value}" for value in steps)
        return f"The answer is {item.gold}."

    reference = f"{PROJECT_ROOT}/prompts/plan-answer/chain.py:work_then_answer"
    code, _, err = run_cli(capsys, "check", "--chain", reference, "--task", "arithmetic")
    assert code == 0, err
    summary = run_eval(EvalSettings(task="arithmetic", chain=reference, depth=3, limit=4, out="example-run"),
                       backend=ScriptedBackend(script), progress=False)
    assert summary["accuracy"] == 1.0 and summary["per_step"]["accuracy"] == [1.0, 0.5, 0.5]
    assert summary["per_step"]["first_wrong"] == [0, 2, 0]
