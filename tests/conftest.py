"""Shared fixtures: a tiny random Llama with the real tokenizer, the real default model, one vLLM engine.

Tests that only need "a model" use `tiny_model_dir` (seconds to build). Tests marked `model` load the real
embedded SmolLM2-135M; tests marked `vllm` share one vLLM engine per session (start-up is ~40 s on CPU).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture(scope="session")
def default_model_dir() -> str:
    from engine.models import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_model_dir) -> str:
    """A 2-layer random Llama saved with the default model's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    target = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return str(target)


@pytest.fixture(scope="session")
def tiny_hf(tiny_model_dir):
    from engine.backends.hf import HFBackend

    return HFBackend(tiny_model_dir, batch_size=4)


@pytest.fixture(scope="session")
def real_hf(default_model_dir):
    from engine.backends.hf import HFBackend

    return HFBackend(default_model_dir, dtype="float32")


VLLM_TEST_WORK = (128, 512)
"""What the shared vLLM engine's KV cache is sized for: 128 sequences of 512 tokens (the largest test batch)."""


@pytest.fixture(scope="session")
def real_vllm(default_model_dir):
    """One vLLM engine (fp32, so it matches hf's fp32 greedy text) for the whole session."""
    from engine.backends.vllm import VLLMBackend

    from engine.backends.kv_cache import KVWork

    backend = VLLMBackend(default_model_dir, dtype="float32", kv_work=KVWork(*VLLM_TEST_WORK))
    yield backend
    backend.close()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}: tests expect ../shared/data beside the project")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch):
    """Runs without --out land in a temp folder, never in the checkout; each test has its own step cache, so no
    test is answered from another's results (subprocesses inherit the variable)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENGINE_STEP_CACHE", str(tmp_path / "steps.sqlite"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def gold_chain_steps(task: str, train_task: str, depth: int, model_dir: str, count: int = 12,
                     strategy: str | None = None) -> tuple[list, list]:
    """(each training pair's completion, each gold step) for `count` items of `train_task` at `depth`, run
    teacher-forced through `task`'s own chain: the BBH chain tests hold the two equal, which also proves that
    every gold chain ends at its item's gold (gold_pairs refuses one that does not)."""
    from transformers import AutoTokenizer

    from engine.chains.strategies import initial_state, select_chain
    from engine.finetune.gold import chain_writer
    from engine.finetune.traces import gold_pairs
    from engine.tasks.spec import load_examples, load_spec

    spec, base = load_spec(task)
    label, chain = select_chain(spec, strategy, None, base=base)
    items = load_examples(load_spec(train_task)[0], base, count, depth, 5)
    pairs = gold_pairs(chain, label, items, [initial_state(e, spec, []) for e in items],
                       AutoTokenizer.from_pretrained(model_dir), chain_writer(chain, label), spec.answer_type)
    return [pair.completion for pair in pairs], [step for e in items for step in e.gold_steps]


def real_task(tmp_path, rows) -> str:
    """A task of someone else's items in the arithmetic form, from a data file (tested only: no train split)."""
    (tmp_path / "theirs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "theirs.yaml").write_text("name: theirs\nsource: {path: theirs.jsonl}\nanswer_type: number\n"
                                          "parser: number\nstrategies: [direct, cot, stepwise]\n")
    return str(tmp_path / "theirs.yaml")
