"""Backends: one file each, behind `Backend.generate(requests) -> results`.

`load_backend("hf" | "vllm", model)` is the one constructor callers need; `ScriptedBackend` replays canned
completions for chain tests.
"""

from engine.backends.base import BACKENDS, Backend, close_backend, load_backend, resolve_backend_name
from engine.backends.scripted import ScriptedBackend, ScriptedEngine

__all__ = ["BACKENDS", "Backend", "ScriptedBackend", "ScriptedEngine", "close_backend", "load_backend", "resolve_backend_name"]
