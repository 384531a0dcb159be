"""Evaluation runs end to end on the scripted backend: files, figures, unparsed counting, interruption."""

import json

import pytest

from engine.backends import ScriptedBackend
from engine.errors import EngineError
from engine.cli.main import main
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.synthetic import arithmetic


def gold_answers(depth=2, count=10, seed=0):
    return {e.question: e.gold for e in arithmetic.generate(count, depth, seed)}


def question_of(request) -> str:
    text = request.prompt or request.messages[-1][1]
    return next(q for q in gold_answers() if q in text)


def test_run_writes_summary_samples_and_report(tmp_path):
    golds = gold_answers()
    answers = list(golds.values())

    def script(request):
        q = question_of(request)
        index = list(golds).index(q)
        if index < 6:
            return f"Let me think. The answer is {golds[q]}."
        if index < 8:
            return "I am not sure." if index == 6 else ""  # unparsed: no number at all
        return "The answer is 999."  # wrong

    out = tmp_path / "run"
    summary = run_eval(EvalSettings(task="arithmetic", strategy="cot", depth=2, limit=10, out=str(out)),
                       backend=ScriptedBackend(script), progress=False)
    assert (summary["n"], summary["correct"], summary["unparsed"]) == (10, 6, 2)
    assert summary["accuracy"] == 0.6 and summary["unparsed_rate"] == 0.2
    low, high = summary["ci95"]
    assert 0.31 < low < 0.32 and 0.83 < high < 0.84  # Wilson interval of 6/10
    assert summary["waves"] == 1 and summary["backend_requests"] == 10
    assert summary["prefix_cache"] == {"prompt_tokens": summary["prompt_tokens"], "cached_prompt_tokens": 0,
                                       "hit_rate": 0.0}  # the scripted backend has no prefix cache
    assert summary["peak_rss_mb"] > 10 and summary["startup_seconds"] >= 0
    for key in ("task", "strategy", "model", "backend", "prompt_tokens", "completion_tokens", "wall_seconds", "per_step"):
        assert key in summary
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["accuracy"] == 0.6
    assert on_disk["environment"]["scheduler"] == "waves" and "torch" in on_disk["environment"]["packages"]
    lines = [json.loads(l) for l in (out / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 10 and [l["gold"] for l in lines] == answers
    first = lines[0]
    assert first["correct"] and first["steps"][0]["prompt"] and first["steps"][0]["outputs"]
    assert "<|im_start|>" not in first["steps"][0]["prompt"]  # scripted backend: no chat template
    assert first["pred_steps"][-1] == first["gold"]
    assert "accuracy **60.0%**" in (out / "report.md").read_text()


def test_per_step_finds_the_first_wrong_step():
    golds = {e.question: e for e in arithmetic.generate(4, 3, 0)}

    def script(request):
        example = golds[question_of_any(request, golds)]
        steps = list(example.gold_steps)
        steps[1] = "777"  # second step wrong in every item
        return " then ".join(steps) + f". The answer is {steps[-1]}."

    summary = run_eval(EvalSettings(task="arithmetic", strategy="cot", depth=3, limit=4),
                       backend=ScriptedBackend(script), progress=False)
    per_step = summary["per_step"]
    assert per_step["first_wrong"][1] == sum(1 for e in golds.values() if e.gold_steps[1] != "777")


def question_of_any(request, golds):
    text = request.prompt or request.messages[-1][1]
    return next(q for q in golds if q in text)


def test_enormous_and_empty_outputs_are_unparsed_not_fatal():
    outputs = iter(["x" * 300_000, "", "The answer is 3"])
    summary = run_eval(EvalSettings(task="arithmetic", strategy="direct", depth=1, limit=3),
                       backend=ScriptedBackend(lambda r: next(outputs)), progress=False)
    assert summary["n"] == 3 and summary["unparsed"] == 2 and summary["errors"] == 0


def test_interrupted_run_keeps_finished_items(tmp_path):
    calls = {"n": 0}
    questions = [e.question for e in arithmetic.generate(6, 2, 0)]

    class Dies(ScriptedBackend):
        def generate(self, requests):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return super().generate(requests)

    def script(request):
        text = request.messages[-1][1]
        if "sub-questions" not in text:
            return "The answer is 2"
        # items 0-2 get a plan; items 3-5 get none, so their chains end after the first wave
        return "1. What is 1 + 1?" if any(q in text for q in questions[:3]) else "I cannot."

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_eval(EvalSettings(task="arithmetic", strategy="decompose", depth=2, limit=6, out=str(out)),
                 backend=Dies(script), progress=False)
    assert not (out / "summary.json").exists()  # nothing half-written claims to be a result
    kept = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted(r["question"] for r in kept) == sorted(questions[3:])
    assert all(r["unparsed"] for r in kept)


def test_a_finished_run_reruns_as_its_summary_and_other_settings_are_refused(tmp_path, capsys):
    """A retry loop around a run that finished just before its kill must succeed without generating anything;
    a different run must never overwrite a finished one."""
    out = tmp_path / "run"
    settings = EvalSettings(task="arithmetic", strategy="direct", depth=1, limit=2, out=str(out))
    run_eval(settings, backend=ScriptedBackend(lambda r: "The answer is 1"), progress=False)
    written = (out / "summary.json").read_text()
    untouched = ScriptedBackend(lambda r: "1")
    again = run_eval(settings, backend=untouched, progress=False)
    assert untouched.calls == [] and again.pop("finished_before") is True
    assert again == json.loads(written) and (out / "summary.json").read_text() == written
    with pytest.raises(EngineError, match=r"already holds a finished run with other settings \(limit differ\)"):
        run_eval(settings.model_copy(update={"limit": 3}), backend=untouched, progress=False)
    assert untouched.calls == []
    # the command line: exit 0 and the summary line, with no model loaded (none is named or installed here)
    argv = ["eval", "--task", "arithmetic", "--strategy", "direct", "--depth", "1", "--limit", "2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"{out} already holds this run, finished: nothing was generated" in printed
    assert f"arithmetic direct: {again['correct']}/2" in printed
    assert main(argv[:-2] + ["--seed", "1", "--out", str(out)]) == 2
    assert "already holds a finished run with other settings (seed differ)" in capsys.readouterr().err


def test_self_consistency_reports_maj_and_pass_at_k():
    items = arithmetic.generate(4, 1, 0)
    golds = {e.question: e.gold for e in items}

    def votes(gold: str) -> list[list[str]]:
        wrong, other = str(int(gold) + 1), str(int(gold) + 2)
        return [[gold, wrong, gold], [wrong, gold, wrong], [wrong, other, wrong], [gold, gold, gold]]

    def script(request):
        question = next(q for q in golds if q in request.messages[-1][1])
        index = list(golds).index(question)
        return [f"The answer is {value}" for value in votes(golds[question])[index]]

    summary = run_eval(EvalSettings(task="arithmetic", strategy="direct", depth=1, limit=4, samples=3),
                       backend=ScriptedBackend(script), progress=False)
    assert summary["correct"] == 2  # the majority is right on items 0 and 3 only
    assert summary["maj@3"] == 0.5
    assert summary["pass@3"] == 0.75  # some sample right on items 0, 1 and 3
    assert summary["pass@1"] == pytest.approx((2 / 3 + 1 / 3 + 0 + 1) / 4)
    assert summary["waves"] == 1  # native n: one request per item


def test_gsm8k_reports_strict_and_flexible_side_by_side(shared_data):
    def script(request):
        return "She makes 9 * 2 = 18 dollars.\n#### 18" if "Janet" in request.messages[-1][1] else "It is 3 bolts."

    summary = run_eval(EvalSettings(task="gsm8k", strategy="cot", limit=2), backend=ScriptedBackend(script),
                       progress=False)
    assert summary["extractions"]["gsm8k-strict"]["accuracy"] == 0.5  # only the #### answer counts
    assert summary["extractions"]["gsm8k-flexible"]["accuracy"] == 1.0  # gold of item 2 is 3
    assert summary["extractions"]["gsm8k-strict"]["unparsed_rate"] == 0.5


def test_sudoku_is_scored_by_the_rules():
    from engine.synthetic import sudoku

    right, clue_broken, rule_broken, unparsed = items = sudoku.generate(4, 4, 0)
    blank = rule_broken.fields["grid"].index(".")
    other_digit = "1" if rule_broken.gold[blank] != "1" else "2"
    answers = {
        right.fields["grid"]: sudoku.show(right.gold),
        clue_broken.fields["grid"]: sudoku.show(clue_broken.gold.translate(str.maketrans("12", "21"))),
        rule_broken.fields["grid"]: sudoku.show(rule_broken.gold[:blank] + other_digit + rule_broken.gold[blank + 1:]),
        unparsed.fields["grid"]: "I cannot solve this one.",
    }
    assert len({sudoku.show(item.fields["grid"]) for item in items}) == 4

    def script(request):
        text = request.prompt or request.messages[-1][1]
        return next(answer for grid, answer in answers.items() if sudoku.show(grid) in text)

    summary = run_eval(EvalSettings(task="sudoku", strategy="direct", depth=4, limit=4),
                       backend=ScriptedBackend(script), progress=False)
    assert (summary["n"], summary["correct"], summary["unparsed"]) == (4, 1, 1)


def test_nli_reports_per_class():
    labels = {"performing music": "entailment", "stage is empty": "entailment", "famous singer": "neutral"}

    def script(request):
        text = request.messages[-1][1]
        return "The answer is " + next((v for k, v in labels.items() if k in text), "contradiction")

    summary = run_eval(EvalSettings(task="nli", strategy="direct", limit=3), backend=ScriptedBackend(script),
                       progress=False)
    classes = summary["per_class"]["classes"]
    assert summary["correct"] == 2
    assert classes["entailment"]["precision"] == 0.5 and classes["entailment"]["recall"] == 1.0
    assert classes["contradiction"]["recall"] == 0.0 and classes["neutral"]["f1"] == 1.0


def test_pal_programs_that_misbehave_are_unparsed_and_the_run_goes_on():
    programs = {
        0: "```python\ndef solution():\n    return 6 * 7\n```",
        1: "```python\ndef solution():\n    while True:\n        pass\n```",
        2: "```python\ndef solution():\n    raise ValueError('no')\n```",
        3: "```python\nimport socket\ndef solution():\n    socket.create_connection(('1.1.1.1', 80))\n    return 1\n```",
        4: "```python\ndef solution():\n    return open('/etc/passwd').read()\n```",
        5: "I do not know how to write this.",
    }
    questions = [e.question for e in arithmetic.generate(6, 1, 0)]

    def script(request):
        text = request.messages[-1][1]
        return programs[next(i for i, q in enumerate(questions) if q in text)]

    summary = run_eval(EvalSettings(task="arithmetic", strategy="pal", depth=1, limit=6, program_timeout=1.0),
                       backend=ScriptedBackend(script), progress=False)
    out = [json.loads(l) for l in open(summary["out"] + "/samples.jsonl")]
    by_question = {r["question"]: r for r in out}
    first = by_question[questions[0]]
    assert first["answer"] == "42" and first["steps"][1]["kind"] == "program"
    errors = [by_question[q]["steps"][1]["error"] for q in questions[1:]]
    assert "timed out" in errors[0] and "ValueError" in errors[1]
    assert "network" in errors[2] and "file access" in errors[3] and "no Python program" in errors[4]
    assert summary["n"] == 6 and summary["unparsed"] == 5
    assert summary["errors"] == 5 and summary["step_errors"] == {"program": 5}  # counted, not only recorded
    assert {"subprocess", "rlimits", "audit-hook"} <= set(summary["sandbox_layers"])  # the layers that ran them
    assert "per_step" not in summary  # a program's intermediate values are in no text: no step figures
