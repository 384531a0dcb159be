"""The openai backend against a scripted loopback server: results, retries, spreading, and every fault the issue
names (unreachable URL, malformed JSON, HTTP errors, a cut-short body, a wrong model, a prompt too long, a
missing API key, a server that dies mid-run). The real `vllm serve` tests are in test_openai_vllm_serve.py."""

from __future__ import annotations

import json
import threading
import time

import pytest

from engine.backends import load_backend
from engine.backends.openai_server import ServerFailed
from engine.errors import EngineError
from engine.generation import GenerationRequest
from engine.sampling import SamplingSettings
from tests.fake_openai import FakeServer

pytestmark = pytest.mark.timeout(120)  # each test talks to a loopback server for seconds: whatever hangs fails

GREEDY = SamplingSettings(max_tokens=16, temperature=0.0)


@pytest.fixture
def server():
    fake = FakeServer(answer=lambda prompt: f"answer to {prompt.split()[-1]}")
    yield fake
    fake.stop()


def backend_on(*servers, **options):
    options.setdefault("backoff", 0.01)
    return load_backend("openai", None, base_url=",".join(s.url for s in servers), **options)


def test_prompts_and_chats_come_back_in_order_with_counts_and_stop_strings(server):
    backend = backend_on(server)
    try:
        results = backend.generate([
            GenerationRequest(prompt="say one", sampling=GREEDY),
            GenerationRequest.chat([{"role": "user", "content": "say two"}], GREEDY),
            GenerationRequest(prompt="say three", sampling=SamplingSettings(max_tokens=16, temperature=0.0,
                                                                            stop=("to",))),
        ])
    finally:
        backend.close()
    assert [r.text for r in results] == ["answer to one", "answer to two", "answer "]
    assert results[0].completions[0].completion_tokens == 3 and results[0].prompt_tokens == 2
    assert results[0].cached_prompt_tokens == 2  # the fake reports min(prompt, 3) cached, as vLLM's details do
    assert results[2].completions[0].stop_string == "to"
    assert results[1].prompt_text == "[user]\nsay two"
    paths = {entry["prompt"]: entry["path"] for entry in server.log}  # sent at once: they arrive in any order
    assert paths == {"say one": "/v1/completions", "say two": "/v1/chat/completions", "say three": "/v1/completions"}
    assert all(entry["body"]["return_token_ids"] is True for entry in server.log)  # asked only of a vLLM server


def test_n_samples_go_in_one_request_and_token_counts_split_on_other_servers():
    fake = FakeServer(answer=lambda prompt: ["a", "b c d"], vllm=False)
    backend = backend_on(fake)
    try:
        (result,) = backend.generate([GenerationRequest(prompt="x", sampling=SamplingSettings(
            max_tokens=8, temperature=0.7, n=2, seed=3))])
    finally:
        backend.close()
        fake.stop()
    assert len(fake.log) == 1 and fake.log[0]["body"]["n"] == 2 and fake.log[0]["body"]["seed"] == 3
    assert "return_token_ids" not in fake.log[0]["body"]  # not sent to a server that is not vLLM
    assert [c.text for c in result.completions] == ["a", "b c d"]
    assert sum(c.completion_tokens for c in result.completions) == 4  # the reported total, split by length
    assert result.completions[1].completion_tokens > result.completions[0].completion_tokens


def test_a_server_that_ignores_n_is_asked_once_per_sample():
    fake = FakeServer(answer=lambda prompt: "sample")
    original = fake._completion
    fake._completion = lambda path, body, prompt: original(path, {**body, "n": 1}, prompt)  # drops n
    backend = backend_on(fake)
    try:
        (result,) = backend.generate([GenerationRequest(prompt="x", sampling=SamplingSettings(
            max_tokens=8, temperature=0.7, n=3, seed=5))])
    finally:
        backend.close()
        fake.stop()
    assert [c.text for c in result.completions] == ["sample"] * 3 and backend.one_choice_only
    assert sorted(entry["body"].get("seed") for entry in fake.log[1:]) == [5, 6, 7]
    assert all(entry["body"]["n"] == 1 for entry in fake.log[1:])


def test_a_continuation_carries_on_in_the_assistant_turn(server):
    backend = backend_on(server)
    try:
        request = GenerationRequest(messages=(("user", "count"),), sampling=GREEDY, continuation="1, 2,")
        backend.generate([request])
    finally:
        backend.close()
    body = server.log[0]["body"]
    assert body["messages"][-1] == {"role": "assistant", "content": "1, 2,"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_429_and_5xx_are_retried_and_then_answered(server):
    server.faults = [429, 503, "drop", "truncated"]
    backend = backend_on(server)
    try:
        (result,) = backend.generate([GenerationRequest(prompt="please work", sampling=GREEDY)])
    finally:
        backend.close()
    assert result.text == "answer to work" and result.error is None
    assert backend.retried == 4 and len(server.log) == 5


def test_a_request_that_times_out_is_sent_again():
    delays = iter([2.0])
    fake = FakeServer(delay=lambda prompt: next(delays, 0.0))
    backend = backend_on(fake, timeout=0.5)
    try:
        (result,) = backend.generate([GenerationRequest(prompt="slow once", sampling=GREEDY)])
    finally:
        backend.close()
        fake.stop()
    assert result.text == "42" and backend.retried == 1 and len(fake.log) == 2


def test_retries_spent_stop_the_run_with_one_line(server):
    server.faults = [500] * 10
    backend = backend_on(server, retries=2)
    try:
        with pytest.raises(ServerFailed) as caught:
            backend.generate([GenerationRequest(prompt="doomed", sampling=GREEDY)])
    finally:
        backend.close()
    message = str(caught.value)
    assert "\n" not in message and "gave up after 2 retries" in message and "HTTP 500" in message
    assert "rerunning the same command finishes the rest" in message
    assert len(server.log) == 3


def test_malformed_json_is_not_retried_forever_and_says_what_is_wrong(server):
    server.faults = ["malformed"] * 10
    backend = backend_on(server)
    try:
        with pytest.raises(ServerFailed, match="not an OpenAI completion"):
            backend.generate([GenerationRequest(prompt="x", sampling=GREEDY)])
    finally:
        backend.close()


def test_a_body_cut_short_every_time_gives_up_after_the_retries(server):
    server.faults = ["truncated"] * 10
    backend = backend_on(server, retries=1)
    try:
        with pytest.raises(ServerFailed, match="dropped the connection"):
            backend.generate([GenerationRequest(prompt="x", sampling=GREEDY)])
    finally:
        backend.close()
    assert len(server.log) == 2


def test_a_prompt_longer_than_the_context_fails_that_request_alone():
    fake = FakeServer(context=5)
    backend = backend_on(fake)
    try:
        short, long = backend.generate([GenerationRequest(prompt="two words", sampling=GREEDY),
                                        GenerationRequest(prompt="one two three four five six", sampling=GREEDY)])
    finally:
        backend.close()
        fake.stop()
    assert short.text == "42" and short.error is None
    assert long.completions == () and "HTTP 400" in long.error and "maximum context length" in long.error


def test_unreachable_url_is_one_line_before_anything_runs():
    from engine.backends.local_server import free_port

    with pytest.raises(EngineError) as caught:
        load_backend("openai", None, base_url=f"http://127.0.0.1:{free_port()}/v1")
    assert "no server answers at http://127.0.0.1:" in str(caught.value) and "\n" not in str(caught.value)


def test_wrong_model_name_lists_what_the_server_serves(server):
    with pytest.raises(EngineError, match="does not serve model 'gpt-9'; it serves fake-model"):
        load_backend("openai", "gpt-9", base_url=server.url)


def test_missing_and_wrong_api_keys(monkeypatch):
    fake = FakeServer(api_key="sekrit-key-123")
    try:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        with pytest.raises(EngineError, match="needs an API key: set OPENAI_API_KEY"):
            load_backend("openai", None, base_url=fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", "wrong")
        with pytest.raises(EngineError, match="refused the key in OPENAI_API_KEY"):
            load_backend("openai", None, base_url=fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sekrit-key-123")
        backend = load_backend("openai", None, base_url=fake.url)
        try:
            (result,) = backend.generate([GenerationRequest(prompt="hi", sampling=GREEDY)])
        finally:
            backend.close()
        assert result.text == "42" and fake.log[-1]["authorization"] == "Bearer sekrit-key-123"
    finally:
        fake.stop()


def test_several_servers_share_the_load_by_outstanding_requests():
    slow, fast = (FakeServer(delay=lambda prompt, d=d: d) for d in (0.3, 0.02))
    backend = backend_on(slow, fast, concurrency=4)
    try:
        results = backend.generate([GenerationRequest(prompt=f"item {i}", sampling=GREEDY) for i in range(24)])
    finally:
        backend.close()
        slow.stop()
        fast.stop()
    assert [r.text for r in results] == ["42"] * 24
    assert len(slow.log) + len(fast.log) == 24
    assert len(slow.log) >= 1 and len(fast.log) > 2 * len(slow.log)  # the quick one frees its slots sooner


def test_a_dead_server_among_several_is_avoided():
    alive, dead = FakeServer(), FakeServer()
    backend = backend_on(alive, dead)
    dead.stop()
    try:
        results = backend.generate([GenerationRequest(prompt=f"item {i}", sampling=GREEDY) for i in range(10)])
    finally:
        backend.close()
        alive.stop()
    assert [r.text for r in results] == ["42"] * 10 and len(alive.log) == 10


def test_each_items_next_step_is_sent_when_its_own_last_step_returns(tmp_path):
    """Continuous: item 0's first step is slow; item 1's second step must reach the server before it returns."""
    from engine.chains.nodes import Sequence, Step
    from engine.chains.continuous import run_continuous
    from engine.chains.scheduler import ExampleRun

    (tmp_path / "first.jinja").write_text("{{ question }} first")
    (tmp_path / "second.jinja").write_text("{{ question }} second")
    fake = FakeServer(answer=lambda prompt: "done", delay=lambda prompt: 1.0 if prompt == "slow first" else 0.0)
    backend = backend_on(fake)
    four = SamplingSettings(max_tokens=4)
    two_steps = Sequence(Step("first", "first.jinja", four, output="a", template_dirs=(tmp_path,)),
                         Step("second", "second.jinja", four, output="answer", template_dirs=(tmp_path,)))
    runs = [ExampleRun({"question": "slow"}), ExampleRun({"question": "quick"})]
    try:
        run_continuous(two_steps, runs, backend)
    finally:
        backend.close()
        fake.stop()
    arrived = {entry["prompt"]: entry["time"] for entry in fake.log}
    assert arrived["quick second"] < arrived["slow first"] + 0.9
    assert all(run.state["answer"] == "done" for run in runs)


def test_eval_on_openai_resumes_after_the_server_died_without_redoing_finished_items(tmp_path):
    """Kill the server mid-run: the run stops with one line, keeps what finished; a rerun finishes the rest."""
    from engine import EvalSettings, run_eval

    first = FakeServer(delay=lambda prompt: 0.05)
    settings = dict(task="arithmetic", strategy="direct", depth=1, limit=12, backend="openai", out=str(tmp_path / "run"),
                    concurrency=2)
    killer = threading.Thread(target=lambda: (_wait_for(lambda: len(first.log) >= 5), first.stop()))
    killer.start()
    with pytest.raises(ServerFailed, match="gave up after"):
        run_eval(EvalSettings(**settings, base_url=first.url), progress=False)
    killer.join()
    kept = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert 3 <= len(kept) < 12
    second = FakeServer()
    try:
        summary = run_eval(EvalSettings(**settings, base_url=second.url), progress=False)
    finally:
        second.stop()
    assert summary["n"] == 12 and summary["resumed_items"] == len(kept) and summary["backend"] == "openai"
    assert summary["model"] == "fake-model" and summary["step_cache"] is None  # a server's results are never cached
    ids = [json.loads(line)["id"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 12
    kept_prompts = {step["prompt"] for record in kept for step in record["steps"]}
    assert not kept_prompts & set(second.prompts())  # finished items were not asked again
    assert len(second.log) == 12 - len(kept)


def test_the_api_key_never_reaches_result_files(tmp_path, monkeypatch):
    from engine import EvalSettings, run_eval

    monkeypatch.setenv("OPENAI_API_KEY", "sekrit-key-123")
    fake = FakeServer(api_key="sekrit-key-123")
    try:
        run_eval(EvalSettings(task="arithmetic", strategy="direct", depth=1, limit=3, backend="openai",
                              base_url=fake.url, out=str(tmp_path / "run")), progress=False)
    finally:
        fake.stop()
    for path in (tmp_path / "run").iterdir():
        assert "sekrit" not in path.read_text(errors="replace"), path.name


@pytest.mark.parametrize("argv, message", [
    (["eval", "--task", "arithmetic", "--backend", "openai"], "--backend openai needs --base-url"),
    (["eval", "--task", "arithmetic", "--backend", "hf", "--base-url", "http://127.0.0.1:1/v1"],
     "--base-url is for --backend openai"),
    (["eval", "--task", "arithmetic", "--backend", "openai", "--base-url", "localhost:8000"], "is not an http(s) URL"),
    (["eval", "--task", "arithmetic", "--backend", "openai", "--dtype", "float32", "--base-url", "http://127.0.0.1:1/v1"],
     "cannot be chosen per request"),
])
def test_command_line_mistakes_are_one_line_before_any_request(argv, message, capsys):
    from engine.cli.main import main

    assert main(argv + ["--limit", "2", "--depth", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
