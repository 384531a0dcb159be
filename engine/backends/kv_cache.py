"""KV-cache arithmetic a backend needs: how much a run's work takes in bytes, for the model's shape.

vLLM's CPU build reserves `gpu_memory_utilization` of all RAM for its KV cache whatever the work is (30% here:
7.2 GB on a 24 GB machine, for a 135M model whose 60 demo items need about 1 GB). A caller that knows its work
(`KVWork`: sequences in flight, tokens per sequence, a shared prefix) lets the backend reserve that instead;
`engine.runs.kv_work` estimates it for a run. The size is clipped below at one full context (vLLM refuses to
start with less) and above at the old fixed share. Too small a cache would not change any result, only make
vLLM run fewer sequences at a time.
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
    """Longest first prompt beyond the shared opening, plus what the chain adds to one sequence at one time."""
    shared_prefix: int = 0
    """Tokens every item's first prompt begins with (stored once by prefix caching)."""

    @property
    def tokens(self) -> int:
        return self.shared_prefix + self.sequences * self.tokens_per_sequence

    def merge(self, other: "KVWork") -> "KVWork":
        """The larger need of two runs on one engine (runs of a multi-run eval go one after another)."""
        return self if self.tokens >= other.tokens else other


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


def smallest_bytes(model_dir: str, dtype: str, context: int, block_size: int = 32) -> int | None:
    """The least vLLM starts with: one full context and a block, for the model's shape (None when unknown)."""
    per_token = bytes_per_token(model_dir, dtype)
    return None if per_token is None else (context + block_size) * per_token


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
