"""The real embedded model on both backends. Marked: slower, but these catch the bugs that matter.

The parity test compares full greedy texts (up to 48 new tokens) of hf and vLLM, both in fp32 on the same
converted checkpoint and the same token ids. fp32 matters: in bf16 the two libraries' different kernels round
differently and a near-tie between two tokens can flip, after which the texts diverge.
"""

import json
import subprocess
import sys

import pytest

from engine.cli.main import main
from engine import EvalSettings, run_eval
from engine.generation import GenerationRequest
from engine.sampling import SamplingSettings
from engine.runs.verify import verify_run

PARITY_PROMPTS = [
    GenerationRequest.chat([{"role": "user", "content": "What is the capital of France?"}]),
    GenerationRequest.chat([{"role": "system", "content": "Answer in one word."},
                            {"role": "user", "content": "What color is the sky?"}]),
    GenerationRequest.chat([{"role": "user", "content": "Start with 3. Add 4. Multiply by 2. What is the result? Let's think step by step."}]),
    GenerationRequest(prompt="The three primary colors are"),
    GenerationRequest(prompt="def fibonacci(n):\n"),
]


def greedy(requests, max_tokens=48):
    return [GenerationRequest(prompt=r.prompt, messages=r.messages, sampling=SamplingSettings(max_tokens=max_tokens))
            for r in requests]


@pytest.mark.vllm
def test_cli_generate_json_on_vllm_keeps_stdout_clean(default_model_dir):
    """The whole CLI in a fresh process (the __main__ guard vLLM's workers need; logs kept off stdout).

    First in this file, so that it runs before the session's shared vLLM engine takes its memory.
    """
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "engine", "generate", "What is the capital of France?",
                           "--backend", "vllm", "--json", "--max-tokens", "20"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(done.stdout)  # nothing but the JSON object on stdout
    assert payload["backend"] == "vllm" and "Paris" in payload["completions"][0]["text"]


@pytest.mark.model
def test_embedded_model_answers_through_hf(real_hf):
    (result,) = real_hf.generate(greedy(PARITY_PROMPTS[:1]))
    assert "Paris" in result.text
    assert result.prompt_text.startswith("<|im_start|>system\n") and result.completions[0].finish_reason == "stop"


@pytest.mark.model
def test_cli_generate_json_on_hf(capsys, default_model_dir):
    assert main(["generate", "What is the capital of France?", "--backend", "hf", "--json", "--max-tokens", "20"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["backend"] == "hf" and "Paris" in payload["completions"][0]["text"]
    assert payload["prompt_tokens"] > 0 and payload["completions"][0]["completion_tokens"] > 0


@pytest.mark.vllm
@pytest.mark.model
def test_hf_and_vllm_give_the_same_greedy_text(real_hf, real_vllm):
    requests = greedy(PARITY_PROMPTS)
    hf = real_hf.generate(requests)
    vllm = real_vllm.generate(requests)
    assert [r.prompt_text for r in hf] == [r.prompt_text for r in vllm]
    assert [r.prompt_tokens for r in hf] == [r.prompt_tokens for r in vllm]
    for a, b in zip(hf, vllm):
        assert a.text == b.text, f"hf {a.text!r} != vllm {b.text!r}"
        assert a.completions[0].completion_tokens == b.completions[0].completion_tokens


@pytest.mark.vllm
def test_vllm_native_n_stop_strings_and_seed(real_vllm):
    sampled = SamplingSettings(max_tokens=16, temperature=1.0, n=4, seed=11)
    (first,) = real_vllm.generate([GenerationRequest(prompt="Once upon a time", sampling=sampled)])
    (again,) = real_vllm.generate([GenerationRequest(prompt="Once upon a time", sampling=sampled)])
    assert len(first.completions) == 4 and len({c.text for c in first.completions}) > 1
    assert [c.text for c in first.completions] == [c.text for c in again.completions]
    (counted,) = real_vllm.generate([GenerationRequest(prompt="1, 2, 3, 4, 5,", sampling=SamplingSettings(max_tokens=30, stop=(" 8",)))])
    assert counted.text.startswith(" 6, 7,") and " 8" not in counted.text and counted.completions[0].finish_reason == "stop"


@pytest.mark.vllm
def test_a_second_engine_beside_a_running_one_gets_processes_of_its_own(real_vllm, default_model_dir):
    # vLLM keeps its distributed state in module globals: closing a second in-process engine would tear down the
    # state of the first, which then fails its next step ("pipeline model parallel group is not initialized")
    from engine.backends.base import close_backend
    from engine.backends.vllm import VLLMBackend
    from engine.backends.kv_cache import KVWork

    asked = [GenerationRequest(prompt=f"{n} plus {n} is", sampling=SamplingSettings(max_tokens=8)) for n in range(4)]
    before = [r.text for r in real_vllm.generate(asked)]
    assert real_vllm.in_process  # the CPU default: no engine processes to start, import and feed
    second = VLLMBackend(default_model_dir, dtype="float32", kv_work=KVWork(4, 64))
    try:
        assert not second.in_process and [r.text for r in second.generate(asked)] == before
    finally:
        close_backend(second)
    assert [r.text for r in real_vllm.generate(asked)] == before


@pytest.mark.vllm
def test_cli_generate_json_on_vllm(capsys, monkeypatch, real_vllm):
    import engine.backends

    class Borrowed:  # the session's engine, which the CLI must not close
        name, model = real_vllm.name, real_vllm.model
        generate = staticmethod(real_vllm.generate)

    monkeypatch.setattr(engine.backends, "load_backend", lambda *a, **k: Borrowed())
    assert main(["generate", "What is the capital of France?", "--backend", "vllm", "--json", "--max-tokens", "20"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["backend"] == "vllm" and "Paris" in payload["completions"][0]["text"]


@pytest.mark.vllm
def test_eval_on_vllm_with_a_decomposition_chain(real_vllm, tmp_path):
    summary = run_eval(EvalSettings(task="arithmetic", strategy="decompose", depth=2, limit=16, out=str(tmp_path / "r")),
                       backend=real_vllm, progress=False)
    assert summary["n"] == 16 and summary["backend"] == "vllm"
    assert 3 <= summary["waves"] <= 10  # plan, up to 8 sub-questions: one call per wave, not per item
    lines = (tmp_path / "r" / "samples.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["steps"][0]["prompt"].startswith("<|im_start|>system") and first["steps"][0]["outputs"][0]
    records = [json.loads(line) for line in lines]
    assert any(len(r["steps"]) > 3 for r in records)  # plans with sub-questions were solved one by one
    assert verify_run(tmp_path / "r") == ([], 16)  # every item once, each re-scored, the summary recomputed
    reuse = summary["prefix_cache"]  # items share their template's opening: vLLM computes it once
    assert 0 < reuse["cached_prompt_tokens"] < reuse["prompt_tokens"] and reuse["hit_rate"] > 0.3
    assert summary["peak_rss_mb"] > 500  # the engine's weights and KV cache are counted, wherever they live
    replay = run_eval(EvalSettings(task="arithmetic", strategy="decompose", depth=2, limit=16,
                                   out=str(tmp_path / "again")), backend=real_vllm, progress=False)
    assert replay["step_cache"]["misses"] == 0 and replay["step_cache"]["hits"] == summary["backend_requests"]
    again = [json.loads(line) for line in (tmp_path / "again" / "samples.jsonl").read_text().splitlines()]
    assert [(r["answer"], [s["outputs"] for s in r["steps"]]) for r in again] == \
        [(r["answer"], [s["outputs"] for s in r["steps"]]) for r in records]


@pytest.mark.model
def test_gguf_conversion_from_scratch(tmp_path, monkeypatch, default_model_dir):
    """The once-per-machine conversion, run for real into an empty cache (CI's cache is usually warm)."""
    from safetensors import safe_open
    from transformers import AutoTokenizer

    from engine.models import resolve_model

    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    script = "from engine.models import resolve_model; print('PATH', resolve_model('smollm2-135m', progress=print))"
    both = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # two processes converting at once must not break each other
    said = [process.communicate(timeout=600) for process in both]
    assert [process.returncode for process in both] == [0, 0], [err[-500:] for _, err in said]
    folder = tmp_path / "cache" / "models" / "smollm2-135m"
    assert {out.split("PATH ")[-1].strip() for out, _ in said} == {str(folder)}
    assert sum("converting" in out for out, _ in said) == 1  # the other waited for it, then reused it
    path = resolve_model("smollm2-135m")
    assert path == str(folder)
    assert [p.name for p in folder.parent.iterdir() if p.is_dir()] == ["smollm2-135m"]  # no staging folder left
    config = json.loads((folder / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and "quantization_config" not in config
    with safe_open(folder / "model.safetensors", "pt") as weights:
        assert len(list(weights.keys())) > 200
        assert str(weights.get_tensor("model.norm.weight").dtype) == "torch.bfloat16"
    tokenizer = AutoTokenizer.from_pretrained(path)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_model("smollm2-135m") == path
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not converted again


@pytest.mark.vllm
def test_answers_do_not_depend_on_what_else_is_in_the_batch(real_vllm, tmp_path):
    """64 items alone, then the same 64 inside a run of 128: every step's text must be identical (fp32)."""

    def texts(limit, name):
        run_eval(EvalSettings(task="arithmetic", strategy="cot", depth=2, limit=limit, max_tokens=48, no_cache=True,
                              out=str(tmp_path / name)), backend=real_vllm, progress=False)  # generate both
        records = [json.loads(line) for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]
        return {r["id"]: (r["answer"], [s["outputs"] for s in r["steps"]]) for r in records}

    alone, inside = texts(64, "alone"), texts(128, "inside")
    assert len(alone) == 64 and len(inside) == 128
    differing = [key for key in alone if alone[key] != inside[key]]
    assert not differing, f"{len(differing)} of 64 items changed with the batch, e.g. {differing[0]}"
    assert len({outputs[0][0] for _, outputs in alone.values()}) > 32  # real, varied model text


@pytest.mark.model
def test_the_shipped_adapter_solves_depths_it_never_trained_on(tmp_path, capsys):
    """smollm2-135m-stepwise (base + LoRA trained on depths 1-4) on 12 depth-6 items, through hf."""
    assert main(["models"]) == 0
    assert "smollm2-135m-stepwise: smollm2-135m + LoRA adapter" in capsys.readouterr().out
    summary = run_eval(EvalSettings(task="arithmetic", strategy="stepwise", depth=6, limit=12, backend="hf",
                                    model="smollm2-135m-stepwise", out=str(tmp_path / "r")), progress=False)
    assert summary["n"] == 12 and summary["accuracy"] >= 10 / 12, summary["accuracy"]
    assert summary["waves"] == 8  # start, 6 instructions, the answer: one wave each for all 12 items


@pytest.mark.model
def test_the_shipped_bbh_adapter_runs_its_chains_on_the_benchmarks_own_items(tmp_path, capsys):
    """smollm2-135m-bbh (one LoRA adapter for four BBH families, trained on generated items only) on the first
    items of two real BBH files, each with its task's default chain, through hf. The full 250-item figures are
    README commands; here a broken adapter, chain or default_strategy shows as a collapse to the floor (0.0)."""
    assert main(["models"]) == 0
    assert "smollm2-135m-bbh: smollm2-135m + LoRA adapter" in capsys.readouterr().out
    for task, chain, limit in (("bbh-boolean_expressions", "simplify", 8),
                               ("bbh-tracking_shuffled_objects_three_objects", "swaps", 4)):
        summary = run_eval(EvalSettings(task=task, limit=limit, backend="hf", model="smollm2-135m-bbh",
                                        out=str(tmp_path / task)), progress=False)
        assert summary["n"] == limit and summary["strategy"] == chain, summary
        assert summary["accuracy"] >= 0.5, (task, summary["accuracy"])  # base + chain: 11.2 and 0.0 on all 250


@pytest.mark.vllm
def test_seeded_samples_in_a_big_wave_repeat_whatever_the_batch(real_vllm):
    """64 seeded prompts hold more tokens than one engine step takes: with chunked prefill, vLLM 0.32's CPU
    worker crashed on exactly this; and a seed must give the same sample alone as inside the wave."""
    question = "Start with {}. Add {}. Multiply by 2. Subtract 3. What is the result? Think it through step by step."
    requests = [GenerationRequest.chat([{"role": "user", "content": question.format(i % 9 + 1, i % 7 + 1)}],
                                       SamplingSettings(max_tokens=8, temperature=0.8, seed=1000 + i)) for i in range(64)]
    assert sum(r.prompt_tokens for r in real_vllm.generate(requests[:1])) * 64 > 2048
    wave = real_vllm.generate(requests)
    alone = real_vllm.generate(requests[:6])
    assert [r.text for r in wave[:6]] == [r.text for r in alone]
    assert len({r.text for r in wave}) > 16  # sampled, not greedy
