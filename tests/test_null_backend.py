"""`--backend null`: a model that writes nothing, so a chain's score on it is its floor (what the chain's code and
the parser carry alone). It loads no model, never enters the step cache, and runs every kind of chain node."""

from __future__ import annotations

import json
import sqlite3

import pytest

import engine.models
from engine.backends import load_backend
from engine.backends.null import NullBackend
from engine.chains.nodes import Loop, Step
from engine.cli.main import main
from engine.generation import GenerationRequest
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.sampling import SamplingSettings


def test_every_request_gets_n_empty_completions():
    chat = GenerationRequest.chat([("user", "What is 2 + 3?")], SamplingSettings(n=3, temperature=0.7, seed=1))
    plain = GenerationRequest(prompt="Q: 1 + 1 =", sampling=SamplingSettings(max_tokens=4), continuation=" 2")
    first, second = NullBackend().generate([chat, plain])
    assert [(c.text, c.completion_tokens, c.finish_reason) for c in first.completions] == [("", 0, "stop")] * 3
    assert (first.request_key, first.prompt_text, first.prompt_tokens) == (chat.key, "[user]\nWhat is 2 + 3?", 0)
    assert (len(second.completions), second.prompt_text, second.error) == (1, "Q: 1 + 1 = 2", None)


def test_it_needs_no_model(monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the null backend resolved a model")

    monkeypatch.setattr(engine.models, "resolve_model", no_model)
    backend = load_backend("null", "/no/such/model", kv_work=lambda: no_model())
    assert backend.name == "null" and backend.generate([GenerationRequest(prompt="x")])[0].text == ""


@pytest.mark.parametrize("task, strategy", [
    ("arithmetic", "direct"), ("arithmetic", "cot"), ("arithmetic", "decompose"), ("arithmetic", "pal"),
    ("arithmetic", "sc"), ("arithmetic", "calc"), ("arithmetic", "stepwise"), ("bbh-navigate", "fewshot-cot"),
    ("shuffled-objects", "decompose"), ("sudoku", "cot"),
])
def test_every_strategy_runs_to_the_end_on_it(tmp_path, task, strategy):
    """Calculator continuations, an empty program, a plan with no sub-questions, the stepwise loop, a vote of 5."""
    summary = run_eval(EvalSettings(task=task, strategy=strategy, limit=4, backend="null", out=str(tmp_path / "run")),
                       progress=False)
    assert (summary["backend"], summary["model"], summary["n"]) == ("null", "null", 4)
    assert (summary["accuracy"], summary["unparsed_rate"], summary["completion_tokens"]) == (0.0, 1.0, 0)
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["answer"] is None for r in records)
    model_steps = [s for r in records for s in r["steps"] if s["kind"].startswith("model")]
    assert model_steps and all(set(s["outputs"]) == {""} for s in model_steps)
    if strategy == "sc":
        assert all(len(s["outputs"]) == 5 for s in model_steps)  # one request, n = 5


def test_a_parser_that_defaults_shows_up_in_the_floor(tmp_path):
    """The point of a floor: a chain whose code answers on its own scores without a model."""
    folder = tmp_path / "chains"
    folder.mkdir()
    (folder / "guess.py").write_text(
        "from engine import Compute, Loop, Sequence, Step\n\n"
        "def always_yes(spec):\n"
        "    ask = Loop(Step('note', 'direct/answer.jinja'), until=lambda state: True, max_iterations=3)\n"
        "    return Sequence(ask, Compute('answer', lambda state: 'yes', reads={'note'}))\n")
    summary = run_eval(EvalSettings(task="bbh-navigate", chain=f"{folder}/guess.py:always_yes", limit=40,
                                    backend="null", out=str(tmp_path / "run")), progress=False)
    golds = [json.loads(line)["gold"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert summary["accuracy"] == golds.count("yes") / 40 and 0 < summary["accuracy"] < 1


def test_its_results_never_enter_the_step_cache(tmp_path):
    (tmp_path / "null").mkdir()  # the working folder (tmp_path) has a folder named like its model: still no identity
    cache = tmp_path / "steps.sqlite"
    summary = run_eval(EvalSettings(task="arithmetic", strategy="cot", limit=3, backend="null", cache=str(cache),
                                    out=str(tmp_path / "run")), progress=False)
    assert summary["step_cache"] is None
    if cache.exists():
        assert sqlite3.connect(cache).execute("SELECT COUNT(*) FROM steps").fetchone() == (0,)


def test_eval_and_render_run_on_it_from_the_command_line(tmp_path, capsys):
    assert main(["eval", "--task", "arithmetic", "--strategy", "decompose", "--limit", "3", "--backend", "null",
                 "--out", str(tmp_path / "run")]) == 0
    assert "arithmetic decompose: 0/3 = 0.0%" in capsys.readouterr().out
    assert main(["render", "--task", "arithmetic", "--strategy", "cot", "--run", "--backend", "null"]) == 0
    out = capsys.readouterr().out
    assert "correct False" in out and "## step 1: answer (model)" in out and "### output (0 tokens)\n\n" in out


@pytest.mark.parametrize("argv, verb", [
    (["finetune", "--task", "arithmetic", "--strategy", "stepwise", "--out", "ft", "--backend", "null"], "finetune"),
    (["demo", "--backend", "null", "--limit", "1"], "the demo"),
])
def test_verbs_that_need_a_model_refuse_it_in_one_line(capsys, argv, verb):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: --backend null has no model, so {verb} has nothing to train or show: use "
                           "--backend hf or vllm (the null backend is for a chain's floor: eval --backend null, or "
                           "eval --floor)")


def test_loop_with_an_empty_body_output_stops_at_its_bound():
    from engine.chains.scheduler import ExampleRun, run_all

    loop = Loop(Step("note", "direct/answer.jinja"), until=lambda state: False, max_iterations=4)
    (run,) = run_all(loop, [ExampleRun({"question": "q", "instruction": "", "answer_hint": "a number"})],
                     NullBackend())
    assert sum(1 for r in run.records if r.step == "note") == 4 and run.state["note"] == ""
