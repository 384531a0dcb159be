"""A run's plan: the settings it was asked with, and everything they resolve to before any model loads.

`prepare(settings)` loads the task, its items and exemplars and builds the chain, checking its wiring; what
can fail there fails before a model starts. The plan it returns is what every consumer reuses (a run, the
multi-run path, render, verify, a Ray worker, the KV-cache estimate) instead of preparing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import EngineError


class EvalSettings(BaseModel):
    """Everything that defines an evaluation run (what `python -m engine eval` takes)."""

    model_config = ConfigDict(extra="forbid")

    task: str
    strategy: str | None = None
    """Defaults to the task's default strategy."""
    chain: str | None = None
    """A custom chain instead of a strategy: `FILE.py:NAME` (a chain, or a function of the task spec)."""
    model: str | None = None
    backend: str = "auto"
    """hf, vllm, openai, null (no model: every completion empty, a chain's floor), or auto: vllm where it is
    installed, else hf."""
    dtype: str = "auto"
    limit: int | None = None
    depth: int | None = None
    samples: int = 1
    """k > 1: self-consistency over the strategy with k samples (maj@k and pass@k reported)."""
    temperature: float = 0.7
    """Sampling temperature for self-consistency samples."""
    seed: int = 0
    out: str | None = None
    data: str | None = None
    """A data file that replaces the task's own source (same fields)."""
    max_tokens: int | None = None
    program_timeout: float = 5.0
    """Seconds a model-written program (pal) may run before it is stopped and counted unparsed."""
    cache: str | None = None
    """The step cache file (default: ENGINE_STEP_CACHE, else steps.sqlite in the engine's cache folder)."""
    no_cache: bool = False
    """Generate every step afresh and store nothing (results then depend on nothing stored)."""
    base_url: str | None = None
    """The openai backend's server(s): `http://host:port/v1`, a comma list spreads requests over several."""
    kv_cache_mb: int | None = None
    """vLLM's KV cache in MiB, instead of the size estimated from the run's work (vllm backend only)."""
    concurrency: int = Field(64, ge=1)
    """The openai backend's most requests in flight at once (over all its servers)."""
    ray: str | None = None
    """Shard the items over Ray workers: "local" starts a local Ray cluster, else a cluster address."""
    ray_workers: int = Field(2, ge=1)
    """Ray workers, each holding its own backend (one model engine each)."""
    floor: bool = False
    """Also run the chain on the null backend (a model that writes nothing) on the same items, into the run
    folder's `floor/`, and record its accuracy in summary.json as `floor`: what the chain's code and the parser
    score with no model (`engine.runs.floor`)."""
    scheduler: Literal["auto", "continuous", "waves"] = "auto"
    """continuous: each item's next step is sent as soon as its last one finished (vLLM); waves: one backend
    call per chain step across the dataset (any backend). auto: continuous where the backend can and it pays
    (vLLM on a GPU; on a CPU, where decoding is compute-bound, it measured 1.03-1.09x the time of waves)."""


@dataclass(frozen=True)
class RunPlan:
    """What one run's settings resolve to: the task, the chain's label and chain, the items and exemplars."""

    settings: EvalSettings
    spec: object
    """The task's `TaskSpec`."""
    strategy: str
    """The built-in strategy's name, or the custom chain's label."""
    examples: list
    exemplars: list[dict]
    chain: object


def prepare(settings: EvalSettings) -> RunPlan:
    """Everything that can fail before any model is loaded: task, data, exemplars, chain wiring."""
    from engine.backends import check_kv_cache_option, check_server_options, resolve_backend_name
    from engine.chains.strategies import STATE_KEYS, check_wiring, select_chain
    from engine.tasks.datasets import load_exemplars
    from engine.tasks.spec import expand_path, load_examples, load_spec

    if settings.limit is not None and settings.limit < 1:
        raise EngineError(f"--limit must be at least 1, got {settings.limit}")
    check_server_options(resolve_backend_name(settings.backend), settings.base_url, settings.dtype)
    check_kv_cache_option(resolve_backend_name(settings.backend), settings.kv_cache_mb)
    if settings.scheduler == "continuous" and resolve_backend_name(settings.backend) == "hf":
        raise EngineError("--scheduler continuous needs a backend with an engine loop: use --backend vllm, "
                          "or --scheduler waves with hf")
    spec, base = load_spec(settings.task)
    strategy, chain = select_chain(spec, settings.strategy, settings.chain, settings.samples, settings.temperature,
                                   settings.max_tokens, settings.program_timeout, base=base)
    examples = load_examples(spec, base, settings.limit, settings.depth, settings.seed, settings.data)
    exemplars = []
    if (strategy == "fewshot-cot" or settings.chain) and spec.exemplars:
        exemplars = load_exemplars(expand_path(spec.exemplars.path, base), spec.exemplars.format, spec.exemplars.count)
    check_wiring(chain, set(STATE_KEYS) | set(examples[0].fields), strategy)
    return RunPlan(settings, spec, strategy, examples, exemplars, chain)
