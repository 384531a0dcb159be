"""Sizing vLLM's KV cache from a run's work: the model's shape, the chain's tokens, the items' prompts."""

import json

import pytest

from engine.chains.nodes import Decompose, Loop, Sequence, Step, Vote
from engine.backends.kv_cache import KVWork, bytes_per_token, kv_cache_bytes
from engine.runs.kv_work import chain_tokens, common_prefix, estimate_work, work_of_plans
from engine.sampling import SamplingSettings


def step(name, tokens):
    return Step(name, "cot/reason.jinja", SamplingSettings(max_tokens=tokens))


def test_bytes_per_token_follow_the_models_shape(tmp_path):
    config = {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576}
    (tmp_path / "config.json").write_text(json.dumps(config))
    # keys and values, 30 layers, 3 KV heads of 64 dimensions: SmolLM2-135M
    assert bytes_per_token(str(tmp_path), "float32") == 2 * 30 * 3 * 64 * 4 == 46_080
    assert bytes_per_token(str(tmp_path), "bfloat16") == 23_040
    assert bytes_per_token(str(tmp_path / "missing"), "float32") is None


def test_chain_tokens_add_up_along_the_chain_and_stop_at_the_context():
    assert chain_tokens(Sequence(step("a", 10), step("b", 20), step("answer", 5)), 4096) == 35
    assert chain_tokens(Decompose(step("plan", 100), step("solve", 50), max_sub_questions=4), 4096) == 300
    assert chain_tokens(Loop(step("body", 30), until=lambda s: False, max_iterations=3), 4096) == 90
    assert chain_tokens(Vote(step("answer", 40), 5), 4096) == 40  # each sample is a sequence of its own
    assert chain_tokens(Loop(step("body", 3000), until=lambda s: False, max_iterations=3), 4096) == 4096
    fresh = Loop(step("body", 30), until=lambda s: False, max_iterations=24, carries_outputs=False)
    assert chain_tokens(Sequence(step("a", 10), fresh, step("answer", 5)), 4096) == 45  # one iteration at a time


def test_a_stepwise_item_holds_one_step_at_a_time():
    from engine.scoring.parsers import PARSERS
    from engine.chains.stepwise import build_stepwise

    # 24 iterations of 48 tokens would be 1,152 tokens a sequence; each step's prompt starts afresh, so 48
    assert chain_tokens(build_stepwise(PARSERS["number"]), 4096) == 48


def test_common_prefix():
    assert common_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix([[1, 2], [1, 2]]) == 2 and common_prefix([[7], [8]]) == 0 and common_prefix([]) == 0


def test_the_bytes_cover_the_work_within_a_floor_and_a_ceiling(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 1, "num_attention_heads": 1,
                                                      "hidden_size": 8}))  # 2 * 8 * 4 = 64 bytes a token
    work = KVWork(sequences=10, tokens_per_sequence=100, shared_prefix=64)
    # 64 shared tokens = 2 blocks; each sequence 100 tokens = 4 blocks, plus one for rounding: 2 + 10 * 5 blocks
    assert kv_cache_bytes(work, str(tmp_path), "float32", context=512, ceiling=10**9) == 52 * 32 * 64
    assert kv_cache_bytes(KVWork(1, 10), str(tmp_path), "float32", context=512, ceiling=10**9) == (512 + 32) * 64
    assert kv_cache_bytes(work, str(tmp_path), "float32", context=512, ceiling=40_000) == 40_000
    assert kv_cache_bytes(KVWork(1, 10), str(tmp_path), "float32", context=2048, ceiling=1000) == (2048 + 32) * 64


def test_the_work_of_a_real_run(tiny_model_dir):
    """Few-shot prompts share their exemplars (stored once); the batch is items x samples, capped at 256."""
    from transformers import AutoTokenizer

    from engine.chains.strategies import initial_state
    from engine.runs.plan import EvalSettings, prepare

    settings = EvalSettings(task="bbh-navigate", strategy="fewshot-cot", limit=12, samples=3, model=tiny_model_dir)
    plan = prepare(settings)
    work = work_of_plans([plan])
    spec, examples, exemplars, chain = plan.spec, plan.examples, plan.exemplars, plan.chain
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    from engine.chains.scheduler import first_request
    from engine.backends.formatting import prompt_token_ids

    prompts = [prompt_token_ids(first_request(chain, initial_state(e, spec, exemplars)), tokenizer) for e in examples]
    assert work.sequences == 36 and work.shared_prefix == common_prefix(prompts) > 300
    assert work.tokens_per_sequence == max(map(len, prompts)) - work.shared_prefix + 128  # a typical output, not 384
    wider = estimate_work(chain, [initial_state(e, spec, exemplars) for e in examples] * 30, 3, tokenizer)
    assert wider.sequences == 256
    smaller = prepare(settings.model_copy(update={"limit": 2}))
    assert work_of_plans([smaller]).tokens < work.tokens
    assert work_of_plans([smaller, plan]) == work_of_plans([plan, smaller]) == work  # the larger of two


@pytest.mark.vllm
@pytest.mark.model
def test_vllm_reserves_the_sized_cache(real_vllm, default_model_dir):
    """The shared engine (conftest) is sized for its work; vLLM got exactly those bytes, not a share of RAM."""
    from conftest import VLLM_TEST_WORK
    from engine.backends.vllm import CPU_MEMORY_SHARE, _total_memory

    expected = kv_cache_bytes(KVWork(*VLLM_TEST_WORK), default_model_dir, "float32", 4096,
                              int(CPU_MEMORY_SHARE * _total_memory()))
    assert real_vllm.kv_cache_bytes == expected < CPU_MEMORY_SHARE * _total_memory()
    assert real_vllm.llm.llm_engine.vllm_config.cache_config.kv_cache_memory_bytes == expected
