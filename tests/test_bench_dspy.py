"""eval/bench_dspy.py without a server or a model: DSPy's answers scored as the engine scores its own, the DSPy
program run over DSPy's DummyLM through dspy.Parallel, the server counters, the table, and the chain file."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import dspy
from dspy.utils.dummies import DummyLM

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "eval" / "bench_dspy.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_dspy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_script()


def test_items_are_the_engines_generated_arithmetic_items():
    from engine.tasks.spec import load_examples, load_spec

    spec, examples = bench.load_items(5, 3)
    task_spec, base = load_spec("arithmetic")
    assert spec.parser == task_spec.parser == "number"
    assert [e.id for e in examples] == [e.id for e in load_examples(task_spec, base, 5, 3, 0, None)]
    assert examples[0].question.startswith("Start with") and examples[0].gold


def test_an_answer_is_scored_with_the_tasks_parser_and_comparison():
    spec, examples = bench.load_items(1, 3)
    example = examples[0]  # "Start with 2. Divide by 2. Multiply by 7. Multiply by 3." -> 21
    assert example.gold == "21"
    assert bench.score_answer("21", example, spec) == {"answer": "21", "correct": True, "unparsed": False}
    assert bench.score_answer("The answer is 21.0.", example, spec)["correct"]
    assert bench.score_answer("$21", example, spec)["correct"]
    wrong = bench.score_answer("The answer is 20.", example, spec)
    assert wrong == {"answer": "20", "correct": False, "unparsed": False}
    assert bench.score_answer("twenty-one", example, spec) == {"answer": None, "correct": False, "unparsed": True}
    assert bench.score_answer(None, example, spec) == {"answer": None, "correct": False, "unparsed": True}


def test_summary_counts_raised_items_and_answers_with_no_number_as_unparsed():
    spec, examples = bench.load_items(4, 3)
    outcomes = [
        {"answer_text": examples[0].gold, "error": None, "failed_step": None},
        {"answer_text": "no idea", "error": None, "failed_step": None},
        {"answer_text": None, "error": "AdapterParseError: no fields", "failed_step": "decompose"},
        {"answer_text": None, "error": "AdapterParseError: no fields", "failed_step": "solve"},
    ]
    summary, scored = bench.summarize_dspy(outcomes, examples, spec)
    assert (summary["n"], summary["correct"], summary["unparsed"], summary["scored"]) == (4, 1, 3, 1)
    assert summary["raised"] == 2 and summary["no_number"] == 1
    assert summary["raised_by_step"] == {"decompose": 1, "solve": 1}
    assert summary["raised_by_error"] == {"AdapterParseError": 2}
    assert summary["accuracy"] == 0.25 and len(summary["ci95"]) == 2
    assert [s["unparsed"] for s in scored] == [False, True, True, True]


def test_the_program_is_three_predicts_with_the_chains_fields():
    program = bench.build_program()
    predictors = dict(program.named_predictors())
    assert list(predictors) == ["decompose", "solve", "answer"]
    assert all(isinstance(p, dspy.Predict) for p in predictors.values())
    fields = {name: (list(p.signature.input_fields), list(p.signature.output_fields)) for name, p in predictors.items()}
    assert fields == {"decompose": (["question"], ["subquestions"]),
                      "solve": (["question", "subquestions"], ["working"]),
                      "answer": (["question", "working"], ["answer"])}
    # the same instruction as the engine chain's templates
    decompose = (ROOT / "eval" / "chains" / "dsa_decompose.jinja").read_text()
    assert predictors["decompose"].signature.instructions in decompose


def test_the_program_runs_over_dspy_parallel_and_keeps_every_item():
    """DummyLM answers by question; an item whose reply has no output fields raises in DSPy's adapters (the
    ChatAdapter, then its JSONAdapter fallback: two calls) and comes back as a failed item, not a lost one."""
    spec, examples = bench.load_items(3, 3)
    questions = [e.question for e in examples]
    lm = DummyLM({questions[0]: {"subquestions": "What is 2 / 2?", "working": "1, 7, 21", "answer": "21"},
                  questions[1]: {"subquestions": "a", "working": "b", "answer": "twenty-five"},
                  questions[2]: {"something_else": "x"}})
    outcomes, wall = bench.run_dspy(lm, questions, threads=2)
    assert wall > 0 and len(outcomes) == 3
    assert outcomes[0] == {"subquestions": "What is 2 / 2?", "working": "1, 7, 21", "answer_text": "21",
                           "error": None, "failed_step": None}
    assert outcomes[1]["answer_text"] == "twenty-five" and outcomes[1]["error"] is None
    assert outcomes[2]["answer_text"] is None and outcomes[2]["failed_step"] == "decompose"
    assert outcomes[2]["error"].startswith("AdapterParseError")
    assert len(lm.history) == 3 + 3 + 2
    summary, _ = bench.summarize_dspy(outcomes, examples, spec)
    assert (summary["correct"], summary["scored"], summary["raised"], summary["no_number"]) == (1, 1, 1, 1)
    assert bench.request_kwargs(lm.history) == {"{}": 8}


def test_the_lm_is_greedy_uncached_and_capped_like_the_chain():
    lm = bench.make_lm("http://127.0.0.1:9/v1", bench.TOKENS)
    assert lm.model == "openai/smollm2-135m" and lm.cache is False and lm.engine == "auto"
    assert lm.kwargs["temperature"] == 0.0 and lm.kwargs["max_tokens"] == 128
    assert lm.kwargs["api_base"] == "http://127.0.0.1:9/v1"
    assert bench.make_lm("http://127.0.0.1:9/v1", 128, "litellm").engine == "litellm"
    assert bench.dspy_route(lm) == "LiteLLM"  # no native pool made yet (nothing was sent)


def test_server_counters_sum_over_labels():
    text = "\n".join([
        "# HELP vllm:request_success_total Count of successfully processed requests.",
        "# TYPE vllm:request_success_total counter",
        'vllm:request_success_total{engine="0",finished_reason="stop",model_name="smollm2-135m"} 5.0',
        'vllm:request_success_total{engine="0",finished_reason="length",model_name="smollm2-135m"} 7.0',
        'vllm:request_success_total_created{engine="0"} 1.7e9',
        'vllm:prompt_tokens_total{engine="0",model_name="smollm2-135m"} 1234.0',
        'vllm:generation_tokens_total{engine="0",model_name="smollm2-135m"} 567.0',
    ])
    names = {"vllm:request_success_total": "requests", "vllm:prompt_tokens_total": "prompt_tokens",
             "vllm:generation_tokens_total": "generation_tokens"}
    assert bench.parse_counters(text, names) == {"requests": 12, "prompt_tokens": 1234, "generation_tokens": 567}


def fake_rep(dspy_wall: float, engine_wall: float, engine_scored: int = 4) -> dict:
    server = {"requests": 12, "prompt_tokens": 100, "generation_tokens": 50}
    return {"dspy": {"wall_seconds": dspy_wall, "lm_calls": 10, "server": server, "scored": 0, "raised": 4,
                     "accuracy": 0.0, "unparsed": 4, "route": "LM15Engine"},
            "engine": {"wall_seconds": engine_wall, "lm_calls": 12, "server": server, "scored": engine_scored,
                       "accuracy": 0.25, "unparsed": 4 - engine_scored}}


def test_table_takes_medians_and_checks_the_targets():
    rows = bench.table([fake_rep(120.0, 30.0), fake_rep(100.0, 40.0), fake_rep(90.0, 20.0)], n=4)
    ratio = rows["wall DSPy / engine"]
    assert ratio["values"] == [4.0, 2.5, 4.5] and ratio["median"] == 4.0 and ratio["met"] is True
    assert ratio["target"] == ">= 3.0"
    assert rows["engine items scored"]["target"] == "== 4" and rows["engine items scored"]["met"] is True
    assert rows["DSPy wall s"]["met"] is None and rows["DSPy wall s"]["min"] == 90.0
    slow = bench.table([fake_rep(50.0, 25.0, engine_scored=3)], n=4)
    assert slow["wall DSPy / engine"]["met"] is False and slow["engine items scored"]["met"] is False
    text = bench.format_table(rows)
    assert "wall DSPy / engine" in text and "yes" in text


def test_markdown_table_has_both_sides_and_the_ratio():
    text = bench.markdown_table([fake_rep(120.0, 30.0)], n=4)
    lines = text.splitlines()
    assert len(lines) == 5 and lines[0].startswith("| | wall s | LM calls")
    assert lines[2].startswith(f"| DSPy {dspy.__version__} ") and "LM15Engine" in lines[2]
    assert "| 120.0 | 10 | 0 / 4 | 0.000 | 4 |" in lines[2]
    assert "| 30.0 | 12 | 4 / 4 | 0.250 | 0 |" in lines[3]
    assert "4.00x" in lines[4]


def test_versions_name_dspy_litellm_and_vllm():
    found = bench.versions()
    assert found["dspy"] == dspy.__version__ == "3.4.1"
    assert found["litellm"] and found["vllm"]


def test_the_chain_file_passes_engine_check():
    done = subprocess.run([sys.executable, "-m", "engine", "check", "--chain", bench.CHAIN, "--task", "arithmetic",
                           "--depth", "3"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok: {bench.CHAIN}" in done.stdout


def test_the_chain_is_three_greedy_steps_of_128_tokens_answer_parsed_with_the_tasks_parser():
    from engine.scoring.parsers import PARSERS
    from engine.chains.strategies import select_chain
    from engine.tasks.spec import load_spec

    spec, _ = load_spec("arithmetic")
    _, chain = select_chain(spec, None, str(ROOT / bench.CHAIN), 1, 0.7, None, 5.0)
    steps = chain.nodes
    assert [s.name for s in steps] == ["subquestions", "working", "answer"]
    assert [s.template for s in steps] == ["dsa_decompose.jinja", "dsa_solve.jinja", "dsa_answer.jinja"]
    assert all(s.sampling.max_tokens == bench.TOKENS and s.sampling.temperature == 0.0 for s in steps)
    assert steps[-1].parse is PARSERS[spec.parser]
    assert steps[0].parse("kept as is") == "kept as is"
