"""The KV cache a run reserves: what its chain holds at one time, not its worst case; a user's own size; and
the proof that neither changes an answer (a too-small cache only preempts, and is counted)."""

import json

import pytest

from engine.backends.kv_cache import smallest_bytes
from engine.backends.names import check_kv_cache_option
from engine.backends.vllm import _checked_size
from engine.chains.nodes import Decompose, Loop, Sequence, Step, Vote
from engine.cli.main import main
from engine.errors import EngineError, ModelError
from engine.runs.kv_work import TYPICAL_OUTPUT_TOKENS, chain_tokens, held_tokens, step_tokens
from engine.sampling import SamplingSettings


def step(name, tokens):
    return Step(name, "cot/reason.jinja", SamplingSettings(max_tokens=tokens))


def test_a_sequence_is_reserved_one_steps_output_at_a_typical_length():
    decompose = Decompose(step("plan", 160), step("solve", 128), max_sub_questions=8)
    assert step_tokens(decompose) == 160 and chain_tokens(decompose, 4096) == 160 + 8 * 128
    assert held_tokens(decompose, 4096) == TYPICAL_OUTPUT_TOKENS == 128  # not the plan's limit, nor eight piled up
    reason_then_answer = Sequence(step("reasoning", 256), step("answer", 16))
    assert held_tokens(reason_then_answer, 4096) == 128 < chain_tokens(reason_then_answer, 4096) == 272
    assert held_tokens(step("answer", 48), 4096) == 48 == chain_tokens(step("answer", 48), 4096)
    loop = Loop(Sequence(step("a", 30), step("b", 50)), until=lambda s: False, max_iterations=6)
    assert step_tokens(loop) == 50 and held_tokens(loop, 4096) == 50 < chain_tokens(loop, 4096) == 480
    assert step_tokens(Vote(step("answer", 40), 5)) == 40
    assert held_tokens(Loop(step("body", 3000), until=lambda s: False, max_iterations=3), 4096) == 128
    assert held_tokens(step("answer", 3000), 100) == 100  # never more than a context can hold


def test_the_decompose_run_of_the_issue_reserves_far_less(tiny_model_dir):
    """128 decompose items at depth 3: the worst case reserved 1,215 tokens a sequence (7 GB of the real model's
    cache); a sequence is now reserved the prompt beyond the shared opening and one step's typical 128 more."""
    from engine import EvalSettings, prepare
    from engine.runs.kv_work import work_of_plan

    plan = prepare(EvalSettings(task="arithmetic", strategy="decompose", depth=3, limit=128, seed=5,
                                model=tiny_model_dir))
    sized, worst = work_of_plan(plan), work_of_plan(plan, worst_case=True)
    assert sized.sequences == worst.sequences == 128 and sized.shared_prefix == worst.shared_prefix
    assert worst.tokens_per_sequence - sized.tokens_per_sequence == (160 + 8 * 128) - 128
    assert sized.tokens < 0.2 * worst.tokens


@pytest.mark.parametrize("backend", ["hf", "openai"])
def test_kv_cache_mb_is_for_vllm_only(backend):
    with pytest.raises(EngineError, match=f"the {backend} backend has none of its own to size"):
        check_kv_cache_option(backend, 512)
    check_kv_cache_option(backend, None)
    check_kv_cache_option("vllm", 512)


@pytest.mark.parametrize("size", [0, -5])
def test_kv_cache_mb_must_be_positive(size):
    with pytest.raises(EngineError, match=f"--kv-cache-mb must be at least 1, got {size}"):
        check_kv_cache_option("vllm", size)


def test_kv_cache_mb_on_the_command_line(capsys):
    assert main(["eval", "--task", "arithmetic", "--backend", "hf", "--kv-cache-mb", "256"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --kv-cache-mb sizes vLLM's KV cache, and the hf backend has "
                                               "none of its own to size: drop it, or use --backend vllm")
    with pytest.raises(SystemExit):
        main(["eval", "--task", "arithmetic", "--kv-cache-mb", "0"])
    assert "--kv-cache-mb must be at least 1, got 0" in capsys.readouterr().err


def test_a_size_below_one_context_is_refused_before_vllm_starts(tmp_path):
    config = {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576}
    (tmp_path / "config.json").write_text(json.dumps(config))
    least = smallest_bytes(str(tmp_path), "float32", 4096, 32)
    assert least == (4096 + 32) * 46_080
    smallest_mb = -(-least // 2**20)
    with pytest.raises(ModelError, match=rf"less than {smallest_mb} MiB; pass --kv-cache-mb {smallest_mb} or more"):
        _checked_size(smallest_mb - 1, str(tmp_path), "float32", 4096, 32)
    assert _checked_size(smallest_mb, str(tmp_path), "float32", 4096, 32) == smallest_mb * 2**20


STORY_CHAIN = """from engine import SamplingSettings, Step

story = Step("answer", "story.jinja", SamplingSettings(max_tokens=320), parse="number")
"""


@pytest.mark.vllm
@pytest.mark.model
def test_a_small_cache_preempts_but_changes_no_answer(tmp_path):
    """The same items with a cache for all of them at once and with the smallest cache vLLM starts with: the
    small one must preempt (counted in summary.json), and every item's answer and text must stay the same. The
    chain asks for a long story (the model writes all 320 tokens), so 48 items need several small caches' worth."""
    from engine import EvalSettings, run_eval

    (tmp_path / "story.py").write_text(STORY_CHAIN)
    (tmp_path / "story.jinja").write_text('{{ role("user") }}Tell me a very long story about this: {{ question }}\n')
    base = dict(task="arithmetic", chain=f"{tmp_path / 'story.py'}:story", depth=2, limit=48, backend="vllm",
                no_cache=True)
    runs = {}
    for name, mb in (("roomy", 2048), ("small", 182)):
        summary = run_eval(EvalSettings(**base, kv_cache_mb=mb, out=str(tmp_path / name)), progress=False)
        records = [json.loads(line) for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]
        runs[name] = (summary, {r["id"]: (r["answer"], [s["outputs"] for s in r["steps"]]) for r in records})
    assert runs["small"][0]["kv_cache_mb"] == 182.0 and runs["roomy"][0]["kv_cache_mb"] == 2048.0
    assert runs["small"][0]["completion_tokens"] > 48 * 200, "the stories were meant to be long"
    assert runs["small"][0]["preemptions"] > 0, "the smallest cache should have forced preemptions"
    assert runs["roomy"][0]["preemptions"] == 0
    assert runs["small"][1] == runs["roomy"][1]
