"""How much KV cache a run needs, so that vLLM reserves that and not a fixed share of the machine's memory.

vLLM's CPU build reserves `gpu_memory_utilization` of all RAM for its KV cache whatever the work is (30% here:
7.2 GB on a 24 GB machine, for a 135M model whose 60 demo items need about 1 GB). A run knows its work before
the engine starts: how many sequences can be in flight at once (items × samples, up to vLLM's `max_num_seqs`),
the longest first prompt, the tokens its chain may add to one sequence (every step's `max_tokens` along the
chain, since later steps' prompts carry earlier outputs), and the prompt opening every item shares (few-shot
exemplars, which prefix caching stores once). `kv_cache_bytes` turns that into bytes for the model's shape.

The estimate is an upper bound on what the chain can hold at one time, clipped below at one full context (vLLM
refuses to start with less) and above at the old fixed share. Too small a cache would not change any result,
only make vLLM run fewer sequences at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MAX_NUM_SEQS = 256
"""vLLM's default for how many sequences one engine step may hold."""

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class KVWork:
    """What a run will ask of the KV cache at most, in tokens."""

    sequences: int
    """Sequences in flight at once: items × samples, capped at MAX_NUM_SEQS."""
    tokens_per_sequence: int
    """Longest first prompt beyond the shared opening, plus every token the chain may add to one sequence."""
    shared_prefix: int = 0
    """Tokens every item's first prompt begins with (stored once by prefix caching)."""

    @property
    def tokens(self) -> int:
        return self.shared_prefix + self.sequences * self.tokens_per_sequence

    def merge(self, other: "KVWork") -> "KVWork":
        """The larger need of two runs on one engine (runs of a multi-run eval go one after another)."""
        return self if self.tokens >= other.tokens else other


def chain_tokens(chain, context: int) -> int:
    """Tokens a chain may generate into one item's sequences: `max_tokens` of each model step, repeated for loops
    and sub-questions, capped at the context (a prompt can never hold more)."""
    def walk(node) -> int:
        sampling = getattr(node, "sampling", None)
        own = sampling.max_tokens if sampling is not None else 0
        if hasattr(node, "nodes"):  # Sequence
            return own + sum(walk(child) for child in node.nodes)
        if hasattr(node, "plan"):  # Decompose: the plan, then one solve per sub-question
            return walk(node.plan) + node.max_sub_questions * walk(node.solve)
        if hasattr(node, "body"):  # Loop: iterations pile up in one sequence unless each prompt starts afresh
            iterations = getattr(node, "max_iterations", 1) if getattr(node, "carries_outputs", True) else 1
            return iterations * walk(node.body)
        if hasattr(node, "inner"):  # Vote: each branch is its own sequence, counted in `sequences`
            return walk(node.inner)
        return own

    return min(walk(chain), context)


def common_prefix(token_lists: list[list[int]]) -> int:
    """Length of the token prefix every list starts with."""
    if not token_lists:
        return 0
    first, length = token_lists[0], min(len(t) for t in token_lists)
    for index in range(length):
        if any(t[index] != first[index] for t in token_lists):
            return index
    return length


def estimate_work(chain, states: list[dict], samples: int, tokenizer, context: int = 4096) -> KVWork:
    """The KV work of running `chain` over items with these initial `states` (first prompts rendered here)."""
    from engine.backends.formatting import prompt_token_ids
    from engine.render import first_request

    prompts = []
    for state in states:
        request = first_request(chain, state)
        if request is not None:
            prompts.append(prompt_token_ids(request, tokenizer))
    shared = common_prefix(prompts) if len(prompts) > 1 else 0
    longest = max((len(p) for p in prompts), default=0)
    per_sequence = min(context, longest - shared + chain_tokens(chain, context))
    sequences = min(MAX_NUM_SEQS, max(1, len(states) * max(1, samples)))
    return KVWork(sequences=sequences, tokens_per_sequence=per_sequence, shared_prefix=shared)


def bytes_per_token(model_dir: str, dtype: str) -> int | None:
    """KV-cache bytes one token takes in every layer (keys and values), from the checkpoint's config.json."""
    config_file = Path(model_dir) / "config.json"
    if not config_file.is_file() or dtype not in DTYPE_BYTES:
        return None
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config = config.get("text_config", config)
    try:
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        kv_heads = config.get("num_key_value_heads") or heads
        layers = config["num_hidden_layers"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None
    return 2 * layers * kv_heads * head_dim * DTYPE_BYTES[dtype]


def kv_cache_bytes(work: KVWork, model_dir: str, dtype: str, context: int, ceiling: int,
                   block_size: int = 32) -> int | None:
    """Bytes to reserve for `work`: its tokens (in whole blocks, plus a block per sequence for rounding), at least
    one full context, at most `ceiling`. None when the model's shape is unknown (vLLM's own default then)."""
    per_token = bytes_per_token(model_dir, dtype)
    if per_token is None:
        return None
    blocks = -(-work.shared_prefix // block_size) + work.sequences * (-(-work.tokens_per_sequence // block_size) + 1)
    tokens = max(blocks * block_size, context + block_size)
    return min(tokens * per_token, max(ceiling, (context + block_size) * per_token))


def work_of_run(model: str | None, chain, spec, exemplars: list[dict], examples, samples: int) -> KVWork:
    """The KV work of one evaluation run (its items' first prompts, through the model's own tokenizer)."""
    from transformers import AutoTokenizer

    from engine.models import resolve_model
    from engine.strategies import initial_state

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    return estimate_work(chain, [initial_state(e, spec, exemplars) for e in examples], samples, tokenizer)


def work_of_settings(settings_list) -> KVWork:
    """The largest KV work among several runs' settings that will share one engine (checked with `prepare`)."""
    from engine.evaluate import prepare

    work = None
    for settings in settings_list:
        spec, _, examples, exemplars, chain = prepare(settings)
        one = work_of_run(settings.model, chain, spec, exemplars, examples, settings.samples)
        work = one if work is None else work.merge(one)
    return work
