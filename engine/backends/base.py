"""The backend interface and the one function that constructs a backend by name (the registry)."""

from __future__ import annotations

from typing import Protocol

from engine.backends.names import BACKENDS, check_server_options
from engine.errors import EngineError
from engine.generation import GenerationRequest, GenerationResult


class Backend(Protocol):
    """Anything that turns a list of requests into one result per request, in order.

    A backend gets every pending request of a wave in one call, so it can batch them (vLLM schedules them
    continuously and reuses shared prefixes; transformers pads them into batches).
    """

    name: str
    model: str

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]: ...


def load_backend(name: str, model: str | None = None, progress=None, kv_work=None, base_url: str | None = None,
                 concurrency: int = 64, **options) -> Backend:
    """Construct backend `name` ("hf", "vllm", "openai" or "null") on `model` (short name, checkpoint directory or
    hub id; for openai, the server's model name, or None when the server serves one; null takes none: it writes
    nothing, for a chain's floor).

    `kv_work` (an `engine.backends.kv_cache.KVWork`, or a function returning one, called only for vllm since estimating
    it renders every item's first prompt) sizes vLLM's KV cache; hf has none to size and ignores it.
    `base_url` (comma list) and `concurrency` are the openai backend's servers and its bound on requests in flight.
    """
    from engine.models import resolve_model

    if name not in BACKENDS:
        raise EngineError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")
    check_server_options(name, base_url, options.get("dtype", "auto"))
    if name == "null":  # no weights: nothing to resolve, convert or size
        from engine.backends.null import NullBackend

        return NullBackend()
    if name == "openai":
        from engine.backends.openai_server import OpenAIBackend

        return OpenAIBackend(model, base_url, concurrency=concurrency, progress=progress, **options)
    path = resolve_model(model, progress=progress)
    if name == "hf":
        from engine.backends.hf import HFBackend

        return HFBackend(path, progress=progress, **options)
    from engine.backends.vllm import VLLMBackend

    work = kv_work() if callable(kv_work) else kv_work
    return VLLMBackend(path, progress=progress, kv_work=work, **options)


def close_backend(backend) -> None:
    """Release a backend's engine now (vLLM's worker processes), if it has anything to release."""
    from engine.heap import release_freed_memory

    close = getattr(backend, "close", None)
    if close is not None:
        close()
        release_freed_memory()  # before the next model loads, not after it
