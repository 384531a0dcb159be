"""Continuous chain scheduling: each item's next step is submitted as soon as its previous one finished."""

import hashlib
import json

import pytest

from engine.backends import ScriptedBackend, ScriptedEngine
from engine.cli.main import main
from engine.chains.continuous import run_continuous
from engine.errors import EngineError
from engine import EvalSettings, run_eval
from engine.files import read_records

from crash_driver import settings as stepwise_settings, solve_step


def decoding_steps(request) -> int:
    """How long a request keeps the engine busy: 1 to 40 steps, varying from request to request."""
    return 1 + int(hashlib.sha256(request.messages[-1][1].encode()).hexdigest(), 16) % 40


def conclusions(out):
    return {r["id"]: (r["answer"], r["correct"], [s["outputs"] for s in r["steps"]])
            for r in read_records(out / "samples.jsonl")[0]}


def test_continuous_gives_the_waves_answers_in_fewer_engine_steps(tmp_path):
    waves = run_eval(stepwise_settings(str(tmp_path / "waves"), "unused").model_copy(update={"no_cache": True}),
                     backend=ScriptedBackend(solve_step), progress=False)
    engine = ScriptedEngine(solve_step, cost=decoding_steps)
    continuous = run_eval(stepwise_settings(str(tmp_path / "cont"), "unused").model_copy(update={"no_cache": True}),
                          backend=engine, progress=False)
    assert (waves["scheduler"], continuous["scheduler"]) == ("waves", "continuous")
    assert conclusions(tmp_path / "waves") == conclusions(tmp_path / "cont")
    assert continuous["accuracy"] == waves["accuracy"] and continuous["waves"] is None
    assert continuous["backend_requests"] == waves["backend_requests"]
    # waves: each wave lasts as long as its longest request; continuous: items never wait for one another
    wave_steps = ScriptedEngine(solve_step, cost=decoding_steps)
    run_eval(stepwise_settings(str(tmp_path / "w2"), "unused").model_copy(update={"no_cache": True,
                                                                             "scheduler": "waves"}),
             backend=_as_waves(wave_steps), progress=False)
    assert engine.steps < 0.8 * wave_steps.steps


TEMPLATES = __import__("pathlib").Path(__file__).parent / "data" / "continuous"


def _as_waves(engine: ScriptedEngine):
    """A backend that runs each wave to the end on `engine`, counting the engine's steps as waves spend them."""

    class Waves:
        name = "scripted-waves"
        model = "scripted"

        def generate(self, requests):
            for index, request in enumerate(requests):
                engine.submit(request, index)
            results = {}
            while engine.busy():
                results.update(engine.poll())
            return [results[i] for i in range(len(requests))]

    return Waves()


def test_an_item_whose_step_raises_fails_alone():
    from engine.chains.nodes import Sequence, Step
    from engine.chains.scheduler import ExampleRun

    def parse(text):
        if "bad" in text:
            raise ValueError("bad item")
        return text

    chain = Sequence(Step("reply", "echo.jinja", parse=parse, template_dirs=(str(TEMPLATES),)),
                     Step("again", "echo.jinja", template_dirs=(str(TEMPLATES),)))
    runs = [ExampleRun({"question": q}) for q in ("good one", "bad one", "good two")]
    finished = []
    run_continuous(chain, runs, ScriptedEngine(lambda r: r.prompt.strip()), on_done=finished.append)
    assert len(finished) == 3
    assert [r.error for r in runs] == [None, "ValueError: bad item", None]
    assert runs[2].state["again"] == "Say something about good two"


def test_a_refused_request_fails_its_item_and_the_others_finish(tmp_path):
    class Refusing(ScriptedEngine):
        def submit(self, request, tag):
            if "Start with 5" in request.messages[-1][1]:
                from engine.generation import GenerationResult

                self.in_flight.append([tag, GenerationResult(request.key, "", 9999, (), error="too long"), 1])
                return
            super().submit(request, tag)

    summary = run_eval(stepwise_settings(str(tmp_path / "r"), "unused").model_copy(update={"no_cache": True}),
                       backend=Refusing(solve_step), progress=False)
    records = read_records(tmp_path / "r" / "samples.jsonl")[0]
    failed = [r for r in records if r["error"]]
    assert failed and all("too long" in r["error"] for r in failed)
    assert summary["n"] == 40 and summary["errors"] == len(failed) < 40


def test_the_step_cache_answers_a_continuous_rerun(tmp_path):
    cache = str(tmp_path / "c.sqlite")
    first = run_eval(stepwise_settings(str(tmp_path / "a"), cache), backend=ScriptedEngine(solve_step, "solver"),
                     progress=False)
    engine = ScriptedEngine(solve_step, "solver")
    second = run_eval(stepwise_settings(str(tmp_path / "b"), cache), backend=engine, progress=False)
    assert engine.calls == [] and second["step_cache"]["misses"] == 0
    assert second["step_cache"]["hits"] == first["backend_requests"]
    assert conclusions(tmp_path / "a") == conclusions(tmp_path / "b")


def test_continuous_on_a_backend_without_an_engine_loop_is_one_clear_error(tmp_path, capsys):
    assert main(["eval", "--task", "arithmetic", "--backend", "hf", "--scheduler", "continuous", "--limit", "2"]) == 2
    assert "--scheduler continuous needs a backend with an engine loop" in capsys.readouterr().err
    with pytest.raises(EngineError, match="the scripted backend has no engine loop"):
        run_eval(EvalSettings(task="arithmetic", scheduler="continuous", limit=2, out=str(tmp_path / "r")),
                 backend=ScriptedBackend(lambda r: "1"), progress=False)


@pytest.mark.vllm
def test_continuous_and_waves_give_identical_greedy_text_on_vllm(real_vllm, tmp_path):
    def run(scheduler):
        run_eval(EvalSettings(task="arithmetic", strategy="decompose", depth=3, limit=24, scheduler=scheduler,
                              no_cache=True, out=str(tmp_path / scheduler)), backend=real_vllm, progress=False)
        return conclusions(tmp_path / scheduler)

    waves, continuous = run("waves"), run("continuous")
    assert len(waves) == 24 and waves == continuous
    summary = json.loads((tmp_path / "continuous" / "summary.json").read_text())
    assert summary["scheduler"] == "continuous" and summary["environment"]["scheduler"] == "continuous"
