"""The calculator in the loop (`calc`) and the one-instruction-at-a-time chain (`stepwise`), on scripted models."""

import pytest

from engine.scoring.answers import extract_number
from engine.backends import ScriptedBackend
from engine.chains.calc_step import CalcStep, annotation_results, open_annotation
from engine import EvalSettings, run_eval
from engine.chains.scheduler import ExampleRun, run_all
from engine.chains.strategies import build_chain, initial_state
from engine.synthetic import arithmetic
from engine.tasks.spec import load_spec


@pytest.fixture
def ask(tmp_path):
    (tmp_path / "ask.jinja").write_text("Q: {{ question }}\n")
    return (str(tmp_path),)


def test_open_annotation_and_results():
    assert open_annotation("so <<3*4") == "3*4"
    assert open_annotation("so <<3*4=12>> then") is None and open_annotation("no notes") is None
    assert annotation_results("<<2+3=5>> and <<5*4=20>>") == ["5", "20"]


def test_calculator_fills_each_result_and_generation_continues(ask):
    answers = iter(["First <<7+5=99>> ignored", " so <<12*2=", " The answer is 24."])
    backend = ScriptedBackend(lambda request: next(answers))
    step = CalcStep("answer", "ask.jinja", parse=extract_number, template_dirs=ask)
    (run,) = run_all(step, [ExampleRun({"question": "q"})], backend)
    assert run.state["answer_text"] == "First <<7+5=12>> so <<12*2=24>> The answer is 24."
    assert run.state["answer"] == "24"  # the model's own "99" never reached the text
    continuations = [call[0].continuation for call in backend.calls]
    assert continuations == [None, "First <<7+5=12>>", "First <<7+5=12>> so <<12*2=24>>"]
    assert all(call[0].sampling.stop == ("=",) for call in backend.calls)
    (record,) = run.records
    assert record.tool_calls == [{"expression": "7+5", "value": "12"}, {"expression": "12*2", "value": "24"}]
    assert record.prompt == "Q: q\n" and record.outputs == [run.state["answer_text"]]


def test_an_equals_sign_outside_a_note_is_kept_and_a_bad_expression_left_to_the_model(ask):
    answers = iter(["x = 5 and", " 5 and <<foo(1)=8>>", "7>> The answer is 5."])
    backend = ScriptedBackend(lambda request: next(answers))
    step = CalcStep("answer", "ask.jinja", parse=extract_number, template_dirs=ask)
    (run,) = run_all(step, [ExampleRun({"question": "q"})], backend)
    assert run.state["answer_text"] == "x = 5 and <<foo(1)=7>> The answer is 5."  # cut at each "="
    assert run.records[0].tool_calls == [{"expression": "foo(1)", "value": None}]


def test_calc_batches_across_the_dataset():
    """64 items, 3 calculations each: 4 waves of 64 requests, not 256 calls."""
    spec, _ = load_spec("arithmetic")
    items = arithmetic.generate(64, 3, seed=3)
    from engine.finetune.gold import calc_text

    golds = {e.question: calc_text(e) for e in items}

    def perfect(request):
        full = next(text for q, text in golds.items() if q in request.messages[-1][1])
        return full[len(request.continuation or ""):]

    backend = ScriptedBackend(perfect)
    runs = run_all(build_chain("calc", spec), [ExampleRun(initial_state(e, spec, [])) for e in items], backend)
    assert [len(call) for call in backend.calls] == [64, 64, 64, 64]
    assert [r.state["answer"] for r in runs] == [e.gold for e in items]


SYMBOLS = {"Add": "+", "Subtract": "-", "Multiply by": "*", "Divide by": "/"}


def perfect_step(request):
    """A model that does exactly what the step asks, reading only its prompt (the calculator does the sums)."""
    value_line, left_line = request.messages[-1][1].splitlines()[:2]
    value, first = value_line.removeprefix("Value: "), left_line.removeprefix("Left: ").split(". ")[0]
    if first.startswith("What is the result"):
        return f"The answer is {value}."
    if first.startswith("Start with"):
        number = first.split()[-1]
        return f"{first}. <<{number}={number}>>"
    words, operand = first.rsplit(" ", 1)
    return f"{first}. <<{value}{SYMBOLS[words]}{operand}="


def test_stepwise_takes_the_next_instruction_each_time_and_scores(tmp_path):
    backend = ScriptedBackend(perfect_step)
    summary = run_eval(EvalSettings(task="arithmetic", strategy="stepwise", depth=5, limit=6, out=str(tmp_path / "r")),
                       backend=backend, progress=False)
    assert summary["accuracy"] == 1.0 and summary["unparsed_rate"] == 0.0
    assert len(backend.calls) == 7  # start, 5 operations, the answer: one wave each for all 6 items


def test_stepwise_stops_an_item_whose_step_loses_its_place(tmp_path):
    backend = ScriptedBackend(lambda request: "Add 100. <<1+100=")
    summary = run_eval(EvalSettings(task="arithmetic", strategy="stepwise", depth=2, limit=3, out=str(tmp_path / "r")),
                       backend=backend, progress=False)
    assert summary["unparsed_rate"] == 1.0 and len(backend.calls) == 1
    import json

    record = json.loads((tmp_path / "r" / "samples.jsonl").read_text().splitlines()[0])
    advance = next(s for s in record["steps"] if s["step"] == "advance")
    assert "did not start with the first instruction left" in advance["error"]
