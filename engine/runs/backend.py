"""What a run generates with: its backend (vLLM's KV cache sized from the run's work), the durable step cache in
front of it, and the scheduler that feeds it. A local run and a Ray worker load theirs the same way."""

from __future__ import annotations

from engine.errors import EngineError


def load_run_backend(plan, examples=None, progress=None):
    """The backend a run's settings ask for, vLLM's KV cache sized from the work of `examples` (default: all)."""
    from engine.backends import load_backend, resolve_backend_name
    from engine.runs.kv_work import work_of_plan

    settings = plan.settings
    sized = {"kv_cache_mb": settings.kv_cache_mb} if settings.kv_cache_mb is not None else {}  # vllm only (prepare)
    return load_backend(resolve_backend_name(settings.backend), settings.model, progress=progress, dtype=settings.dtype,
                        base_url=settings.base_url, concurrency=settings.concurrency,
                        kv_work=lambda: work_of_plan(plan, examples), **sized)


def open_step_cache(settings, backend):
    """The backend behind the durable step cache, and the cache; the backend alone with --no-cache or no identity."""
    from engine.runs.step_cache import CachedBackend, StepCache, default_cache_path, model_identity

    if settings.no_cache:
        return backend, None
    cache = StepCache(settings.cache or default_cache_path())
    identity = model_identity(backend, cache)
    if identity is None:
        cache.close()
        return backend, None
    return CachedBackend(backend, cache, identity), cache


def choose_scheduler(asked: str, backend) -> str:
    """The scheduler a run uses: `continuous` needs an engine loop; `auto` takes it only where it pays."""
    from engine.chains.continuous import supports_continuous

    if asked == "continuous" and not supports_continuous(backend):
        raise EngineError(f"--scheduler continuous: the {backend.name} backend has no engine loop; "
                          "use --backend vllm, or --scheduler waves")
    if asked == "auto":  # where it pays: measured no faster than waves on a compute-bound CPU (see README)
        return "continuous" if supports_continuous(backend) and getattr(backend, "prefers_continuous", True) else "waves"
    return asked


def preemption_count(backend, since: int | None = None) -> int | None:
    """vLLM's preemption count (since an earlier reading): how often a too-small KV cache sent a sequence back to
    be recomputed. None for backends that keep no such counter."""
    read = getattr(backend, "preemptions", None)
    now = read() if callable(read) else None
    return None if now is None else now - (since or 0)
