"""Backends: one file each, behind `Backend.generate(requests) -> results`.

`load_backend("hf" | "vllm" | "openai" | "null", model)` is the one constructor callers need (null: no model,
every completion empty, for a chain's floor); `ScriptedBackend` replays canned completions for chain tests. A backend knows requests and results (`engine.generation`), the sampling
settings and the model registry, never chains, runs or the command line.
"""

from engine.backends.base import Backend, close_backend, load_backend
from engine.backends.names import (BACKENDS, LOCAL_BACKENDS, NULL, check_kv_cache_option, check_server_options,
                                   refuse_null, resolve_backend_name)
from engine.backends.scripted import ScriptedBackend, ScriptedEngine

__all__ = ["BACKENDS", "LOCAL_BACKENDS", "NULL", "Backend", "ScriptedBackend", "ScriptedEngine", "check_kv_cache_option",
           "check_server_options", "close_backend", "load_backend", "refuse_null", "resolve_backend_name"]
