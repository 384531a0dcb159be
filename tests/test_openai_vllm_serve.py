"""The openai backend against a real `vllm serve` (the CPU build, the embedded model, fp32, loopback only).

The server is started with the offline backend's settings, so in fp32 its greedy text must equal the offline
`vllm` backend's on the same prompts, and a chain run through it must give the same answers. The last test
kills the server in the middle of a run: the run stops with one line, keeps what it finished, and a rerun on a
new server finishes the rest without asking for any finished item again. Every server started here is
stopped (its whole process group) when the module ends.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from engine.generation import GenerationRequest
from engine.sampling import SamplingSettings

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]  # a server start is about 60 s here; the kill test starts two: a hung server fails the test


@pytest.fixture(scope="module")
def served(default_model_dir, tmp_path_factory):
    from engine.backends.local_server import vllm_server

    log = tmp_path_factory.mktemp("serve") / "vllm-serve.log"
    with vllm_server(default_model_dir, log=log) as (base_url, process):
        yield base_url, process


@pytest.fixture(scope="module")
def server_backend(served):
    from engine.backends import load_backend

    backend = load_backend("openai", None, base_url=served[0], concurrency=16)
    yield backend
    backend.close()


def requests():
    greedy = SamplingSettings(max_tokens=40, temperature=0.0)
    questions = ["What is the capital of France?", "Tom has 3 apples and buys 4 more. How many apples does he have?",
                 "Name three colours.", "What is 12 times 11?"]
    plain = [GenerationRequest(prompt=f"Question: {q}\nAnswer:", sampling=greedy) for q in questions]
    chats = [GenerationRequest.chat([{"role": "user", "content": q}], greedy) for q in questions]
    stopped = GenerationRequest(prompt="Count: 1, 2, 3,", sampling=SamplingSettings(max_tokens=40, stop=(" 7",)))
    sampled = GenerationRequest.chat([{"role": "user", "content": "Tell me a short story."}],
                                     SamplingSettings(max_tokens=24, temperature=0.8, n=3, seed=7))
    return plain + chats + [stopped, sampled]


def test_served_name_and_vllm_are_found(server_backend):
    assert server_backend.model == "smollm2-135m" and server_backend.vllm_extensions
    assert server_backend.server_version.startswith("0.")


def test_fp32_text_equals_the_offline_vllm_backend(server_backend, real_vllm):
    asked = requests()
    served_results = server_backend.generate(asked)
    offline_results = real_vllm.generate(asked)
    for request, served_result, offline in zip(asked, served_results, offline_results):
        assert served_result.error is None
        assert [c.text for c in served_result.completions] == [c.text for c in offline.completions], request
        assert [c.completion_tokens for c in served_result.completions] == [c.completion_tokens for c in offline.completions]
        assert [c.finish_reason for c in served_result.completions] == [c.finish_reason for c in offline.completions]
        assert served_result.prompt_tokens == offline.prompt_tokens
    assert served_results[-2].completions[0].stop_string == " 7"
    assert len({c.text for c in served_results[-1].completions}) > 1  # three samples, not one repeated


def test_a_chain_run_through_the_server_gives_the_offline_answers(served, real_vllm, tmp_path):
    from engine import EvalSettings, run_eval

    common = dict(task="arithmetic", strategy="cot", depth=2, limit=8, no_cache=True)
    through_server = run_eval(EvalSettings(**common, backend="openai", base_url=served[0], out=str(tmp_path / "served")),
                              progress=False)
    offline = run_eval(EvalSettings(**common, backend="vllm", out=str(tmp_path / "offline")), backend=real_vllm,
                       progress=False)
    assert through_server["scheduler"] == "continuous" and through_server["backend"] == "openai"
    assert through_server["accuracy"] == offline["accuracy"]
    answers = [sorted((r["id"], r["answer"], [s["outputs"] for s in r["steps"]]) for r in _records(tmp_path / name))
               for name in ("served", "offline")]  # records are written in the order items finish
    assert answers[0] == answers[1]


def test_prompt_longer_than_the_servers_context_fails_that_item_alone(server_backend):
    long = GenerationRequest(prompt="word " * 5000, sampling=SamplingSettings(max_tokens=8))
    short = GenerationRequest(prompt="Question: What is 2 + 2?\nAnswer:", sampling=SamplingSettings(max_tokens=8))
    failed, answered = server_backend.generate([long, short])
    assert failed.completions == () and "HTTP 400" in failed.error
    assert answered.error is None and answered.text


def test_killing_the_server_mid_run_keeps_finished_items_and_a_rerun_finishes(served, default_model_dir, tmp_path):
    """Runs last in this module: it kills the module's server."""
    from engine.backends.openai_server import ServerFailed
    from engine import EvalSettings, run_eval
    from engine.backends.local_server import vllm_server

    base_url, process = served
    out = tmp_path / "run"
    settings = dict(task="arithmetic", strategy="cot", depth=2, limit=16, backend="openai", concurrency=4,
                    no_cache=True, out=str(out))

    def kill_when_some_finished():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(_records(out)) < 4:
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_some_finished)
    killer.start()
    with pytest.raises(ServerFailed, match="gave up after"):
        run_eval(EvalSettings(**settings, base_url=base_url), progress=False)
    killer.join()
    kept = _records(out)
    assert 4 <= len(kept) < 16
    with vllm_server(default_model_dir, log=tmp_path / "second.log") as (second_url, _):
        summary = run_eval(EvalSettings(**settings, base_url=second_url), progress=False)
    records = _records(out)
    assert summary["n"] == 16 and summary["resumed_items"] == len(kept)
    assert sorted(r["id"] for r in records) == sorted({r["id"] for r in records})
    assert records[: len(kept)] == kept  # finished items untouched, the rest appended
    new_steps = [s for r in records[len(kept):] for s in r["steps"] if s["kind"] == "model"]
    assert summary["backend_requests"] == len(new_steps)  # no finished item was asked for again


def _records(folder) -> list[dict]:
    from engine.files import read_records

    path = folder / "samples.jsonl"
    return read_records(path)[0] if path.exists() else []
