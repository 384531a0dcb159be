"""Chain logic on the scripted backend: composition, batching across the dataset, static checks."""

import re

import pytest

from engine.scoring.answers import extract_number
from engine.backends import ScriptedBackend
from engine.chains.nodes import Calculator, Compute, Decompose, Loop, Sequence, Step, Vote
from engine.errors import ChainError
from engine.synthetic import arithmetic
from engine.sampling import SamplingSettings
from engine.chains.scheduler import ExampleRun, run_all


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "ask.jinja").write_text("Q: {{ question }}\n")
    (tmp_path / "check.jinja").write_text("Check {{ draft }} for {{ question }}\n")
    (tmp_path / "final.jinja").write_text("Final for {{ question }} given {{ checked }}\n")
    (tmp_path / "plan.jinja").write_text("Plan {{ question }}\n")
    (tmp_path / "solve.jinja").write_text("Solve {{ sub_question }} after {{ solved | length }}\n")
    (tmp_path / "uses_nothing_made.jinja").write_text("{{ question }} {{ reasoning }}\n")
    return (str(tmp_path),)


def three_steps(dirs):
    return Sequence(
        Step("draft", "ask.jinja", template_dirs=dirs),
        Step("checked", "check.jinja", template_dirs=dirs),
        Step("answer", "final.jinja", parse=extract_number, template_dirs=dirs),
    )


def answer_from_prompt(request):
    """Echo the first number in the prompt, so each example's answer depends on its own prompt."""
    return f"The answer is {re.findall(r'-?[0-9]+', request.prompt)[0]}"


def test_sixty_four_items_three_steps_make_three_backend_calls(templates):
    examples = arithmetic.generate(64, 3, seed=1)
    backend = ScriptedBackend(answer_from_prompt)
    runs = run_all(three_steps(templates), [ExampleRun({"question": e.question}) for e in examples], backend)
    assert len(backend.calls) == 3  # one wave per step, not 192 calls
    assert [len(call) for call in backend.calls] == [64, 64, 64]
    assert all(len(r.records) == 3 for r in runs)
    # each example's state came from its own prompt: the start number of its question
    for run, example in zip(runs, examples):
        assert run.state["answer"] == str(example.fields["start"])


def test_each_step_sees_the_state_of_earlier_steps(templates):
    backend = ScriptedBackend(["first draft", "looks right", "The answer is 7"])
    (run,) = run_all(three_steps(templates), [ExampleRun({"question": "q1"})], backend)
    assert backend.calls[1][0].prompt == "Check first draft for q1\n"
    assert backend.calls[2][0].prompt == "Final for q1 given looks right\n"
    assert run.state["answer"] == "7" and run.state["answer_text"] == "The answer is 7"
    assert [r.prompt for r in run.records][0] == "Q: q1\n"


def test_reading_a_value_nothing_produced_fails_before_any_call(templates):
    chain = Sequence(Step("draft", "ask.jinja", template_dirs=templates),
                     Step("answer", "uses_nothing_made.jinja", template_dirs=templates))
    with pytest.raises(ChainError, match="reads reasoning, which no earlier step produces"):
        chain.check({"question"})


def test_decomposition_batches_a_variable_number_of_sub_questions(templates):
    plans = {"a": "1. one?\n2. two?\n3. three?", "b": "1. only?", "c": "no questions at all"}

    def script(request):
        if request.prompt.startswith("Plan"):
            return plans[request.prompt.split()[1]]
        return f"answer {request.prompt.split()[1]}"

    chain = Decompose(Step("plan", "plan.jinja", parse=lambda t: [l[3:] for l in t.splitlines() if l.endswith("?")],
                           template_dirs=templates),
                      Step("solve", "solve.jinja", template_dirs=templates))
    chain.check({"question"})
    backend = ScriptedBackend(script)
    runs = run_all(chain, [ExampleRun({"question": q}) for q in "abc"], backend)
    # wave 1: three plans; then sub-questions: a has 3, b has 1, c has none
    assert [len(c) for c in backend.calls] == [3, 2, 1, 1]
    assert [s["question"] for s in runs[0].state["solved"]] == ["one?", "two?", "three?"]
    assert backend.calls[3][0].prompt == "Solve three? after 2\n"  # saw the two answers before it
    assert runs[0].state["answer"] == "answer three?"
    assert runs[2].state["solved"] == [] and runs[2].state["answer"] is None


def test_vote_on_a_step_uses_the_backends_own_n(templates):
    backend = ScriptedBackend(["The answer is 4", "The answer is 5", "The answer is 4"])
    chain = Vote(Step("answer", "ask.jinja", parse=extract_number, template_dirs=templates), k=3)
    (run,) = run_all(chain, [ExampleRun({"question": "q"})], backend)
    (call,) = backend.calls
    assert len(call) == 1 and call[0].sampling.n == 3 and call[0].sampling.temperature == 0.7
    assert run.state["answer_samples"] == ["4", "5", "4"] and run.state["answer"] == "4"


def test_vote_over_a_sub_chain_runs_branches_in_the_same_waves(templates):
    backend = ScriptedBackend(answer_from_prompt)
    chain = Vote(three_steps(templates), k=4)
    runs = run_all(chain, [ExampleRun({"question": f"item {i}"}) for i in range(5)], backend)
    assert [len(c) for c in backend.calls] == [20, 20, 20]  # 5 items x 4 branches, 3 waves
    assert all(r.sampling.temperature == 0.7 for c in backend.calls for r in c)
    assert runs[3].state["answer"] == "3" and len(runs[3].state["answer_samples"]) == 4
    assert {rec.branch for rec in runs[0].records} == {0, 1, 2, 3}


def test_vote_refuses_greedy_copies(templates):
    with pytest.raises(ChainError, match="temperature above 0"):
        Vote(Step("a", "ask.jinja", template_dirs=templates), k=3, temperature=0)


def test_loop_stops_on_condition(templates):
    backend = ScriptedBackend(["no", "no", "yes", "never asked"])
    chain = Loop(Step("draft", "ask.jinja", template_dirs=templates), until=lambda s: s["draft"] == "yes",
                 max_iterations=5)
    (run,) = run_all(chain, [ExampleRun({"question": "q"})], backend)
    assert len(backend.calls) == 3 and run.state["iteration"] == 2


def test_one_failing_example_does_not_sink_the_run(templates):
    chain = Sequence(Step("draft", "ask.jinja", template_dirs=templates),
                     Compute("answer", lambda s: 1 / 0 if s["question"] == "bad" else "ok", reads={"draft"}))
    backend = ScriptedBackend(lambda r: "x")
    runs = run_all(chain, [ExampleRun({"question": q}) for q in ("good", "bad")], backend)
    assert runs[0].state["answer"] == "ok"
    assert runs[1].state["answer"] is None and "ZeroDivisionError" in runs[1].records[-1].error


def test_missing_variable_at_run_time_marks_only_that_example(templates):
    backend = ScriptedBackend(lambda r: "x")
    runs = run_all(Step("d", "check.jinja", template_dirs=templates),
                   [ExampleRun({"question": "q", "draft": "d"}), ExampleRun({"question": "q"})], backend)
    assert runs[0].error is None and "draft" in runs[1].error


def test_calculator_step_needs_no_model(templates):
    chain = Sequence(Step("expr", "ask.jinja", template_dirs=templates), Calculator("value", expression_from="expr"))
    backend = ScriptedBackend(["(3 + 4) * 2"])
    (run,) = run_all(chain, [ExampleRun({"question": "q"})], backend)
    assert run.state["value"] == "14" and len(backend.calls) == 1


def test_step_with_sampling_settings_passes_them_on(templates):
    step = Step("a", "ask.jinja", SamplingSettings(max_tokens=7, stop=("\n",)), template_dirs=templates)
    backend = ScriptedBackend(["x"])
    run_all(step, [ExampleRun({"question": "q"})], backend)
    assert backend.calls[0][0].sampling.max_tokens == 7 and backend.calls[0][0].sampling.stop == ("\n",)
