"""The backends' names and the checks on them that need no backend loaded: what `auto` means, and which
options belong to which backend. Every backend module may import this; it imports none of them at load time."""

from __future__ import annotations

from engine.errors import EngineError

BACKENDS = ("hf", "vllm", "openai", "null")
LOCAL_BACKENDS = ("hf", "vllm")
"""Backends that hold the weights in this process (fine-tuning and the demo need those)."""
NULL = "null"
"""The backend with no model: every completion empty, so a run on it measures a chain's floor."""


def refuse_null(name: str, verb: str) -> None:
    """`--backend null` for a verb that needs a model's weights (finetune, demo): one line saying what to use."""
    if name == NULL:
        raise EngineError(f"--backend null has no model, so {verb} has nothing to train or show: use --backend hf "
                          "or vllm (the null backend is for a chain's floor: eval --backend null, or eval --floor)")


def check_server_options(name: str, base_url: str | None, dtype: str = "auto") -> None:
    """`--base-url` belongs to the openai backend and that backend needs it; a server's dtype is its own."""
    if name == "openai" and not base_url:
        raise EngineError("--backend openai needs --base-url, e.g. --base-url http://127.0.0.1:8000/v1 "
                          "(a comma list spreads requests over several servers)")
    if base_url and name != "openai":
        raise EngineError(f"--base-url is for --backend openai, not {name}: drop it, or add --backend openai")
    for url in (base_url or "").split(","):
        if url.strip() and not url.strip().startswith(("http://", "https://")):
            raise EngineError(f"--base-url {url.strip()!r} is not an http(s) URL: write it like http://127.0.0.1:8000/v1")
    if name == "openai" and dtype != "auto":
        raise EngineError(f"--dtype {dtype} cannot be chosen per request: the server loaded its weights; "
                          "start it with that dtype (vllm serve ... --dtype float32) and pass --dtype auto")


def check_kv_cache_option(name: str, kv_cache_mb: int | None) -> None:
    """`--kv-cache-mb` sizes vLLM's own KV cache: a positive size, and only for the vllm backend."""
    if kv_cache_mb is None:
        return
    if kv_cache_mb < 1:
        raise EngineError(f"--kv-cache-mb must be at least 1, got {kv_cache_mb}: give the KV cache's size in MiB, "
                          "or drop it to size the cache from the run's work")
    if name != "vllm":
        raise EngineError(f"--kv-cache-mb sizes vLLM's KV cache, and the {name} backend has none of its own to size: "
                          "drop it, or use --backend vllm")


def resolve_backend_name(name: str) -> str:
    """`auto` means vllm where it is installed, else hf; any other name stands."""
    if name != "auto":
        return name
    from engine.backends.vllm import vllm_available

    return "vllm" if vllm_available() else "hf"
