"""One evaluation run: task -> examples -> chains batched across the dataset -> scores -> files.

Writes to the run folder: `samples.jsonl` (one line per item, streamed as each item finishes, so an
interrupted run keeps everything it finished), then `summary.json` and `report.md` once all items are scored.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.environment import describe, peak_rss_mb
from engine.errors import EngineError
from engine.scheduler import ExampleRun, run_all
from engine.scoring import score_example, summarize
from engine.strategies import STATE_KEYS, check_wiring, initial_state, select_chain
from engine.tasks import load_examples, load_spec


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
    """hf, vllm, or auto: vllm where it is installed, else hf."""
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
    concurrency: int = Field(64, ge=1)
    """The openai backend's most requests in flight at once (over all its servers)."""
    ray: str | None = None
    """Shard the items over Ray workers: "local" starts a local Ray cluster, else a cluster address."""
    ray_workers: int = Field(2, ge=1)
    """Ray workers, each holding its own backend (one model engine each)."""
    scheduler: Literal["auto", "continuous", "waves"] = "auto"
    """continuous: each item's next step is sent as soon as its last one finished (vLLM); waves: one backend
    call per chain step across the dataset (any backend). auto: continuous where the backend can and it pays
    (vLLM on a GPU; on a CPU, where decoding is compute-bound, it measured 1.03-1.09x the time of waves)."""


def prepare(settings: EvalSettings):
    """Everything that can fail before any model is loaded: task, data, exemplars, chain wiring."""
    from engine.backends import resolve_backend_name
    from engine.backends.base import check_server_options
    from engine.datasets import load_exemplars
    from engine.tasks import expand_path

    if settings.limit is not None and settings.limit < 1:
        raise EngineError(f"--limit must be at least 1, got {settings.limit}")
    check_server_options(resolve_backend_name(settings.backend), settings.base_url, settings.dtype)
    if settings.scheduler == "continuous" and resolve_backend_name(settings.backend) == "hf":
        raise EngineError("--scheduler continuous needs a backend with an engine loop: use --backend vllm, "
                          "or --scheduler waves with hf")
    spec, base = load_spec(settings.task)
    strategy, chain = select_chain(spec, settings.strategy, settings.chain, settings.samples, settings.temperature,
                                   settings.max_tokens, settings.program_timeout)
    examples = load_examples(spec, base, settings.limit, settings.depth, settings.seed, settings.data)
    exemplars = []
    if (strategy == "fewshot-cot" or settings.chain) and spec.exemplars:
        exemplars = load_exemplars(expand_path(spec.exemplars.path, base), spec.exemplars.format, spec.exemplars.count)
    check_wiring(chain, set(STATE_KEYS) | set(examples[0].fields), strategy)
    return spec, strategy, examples, exemplars, chain


RUN_FILE = "run.json"
"""The settings a run folder was started with: a rerun with the same settings resumes it, others are refused."""

NOT_IN_RUN_FILE = {"out", "cache", "no_cache", "scheduler", "base_url", "concurrency", "ray", "ray_workers"}
"""Settings that do not change a run's results, so a resume may change them (a restarted server on another
port, more Ray workers)."""


def claim_run_folder(settings: EvalSettings, spec_name: str, strategy: str) -> Path:
    """The run folder: `--out` (refused if it holds a finished run) or a new `runs/TASK-STRATEGY-TIME[-N]`."""
    if settings.out:
        out = Path(settings.out)
        if (out / "summary.json").exists():
            raise EngineError(f"{out} already holds a finished run: check it with `python -m engine verify {out}`, "
                              "or pass another --out folder")
        out.mkdir(parents=True, exist_ok=True)
        return out
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    Path("runs").mkdir(exist_ok=True)
    for attempt in range(1, 1000):  # two runs started in the same second get folders of their own
        out = Path("runs") / (f"{spec_name}-{strategy}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
        try:
            out.mkdir()
            return out
        except FileExistsError:
            continue
    raise EngineError(f"could not create a new folder under runs/ for {spec_name}-{strategy}: pass --out")


def resume_records(out: Path, settings: EvalSettings) -> list[dict]:
    """Items a killed run of the same settings finished (a half-written last line is cut off); [] for a new run."""
    from engine.files import repair_records, write_atomic

    mine = settings.model_dump(exclude=NOT_IN_RUN_FILE)
    run_file, samples = out / RUN_FILE, out / "samples.jsonl"
    if run_file.exists():
        theirs = json.loads(run_file.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if changed:
            raise EngineError(f"{out} holds an unfinished run with other settings ({', '.join(changed)} differ): "
                              "rerun with that run's settings to finish it, or pass another --out folder")
    elif samples.exists():
        raise EngineError(f"{out} holds samples.jsonl from an unknown run: pass another --out folder")
    else:
        write_atomic(run_file, json.dumps(mine, indent=2))
    if not samples.exists():
        return []
    records, _ = repair_records(samples)
    unique = {}
    for record in records:
        unique.setdefault(record["id"], record)
    return list(unique.values())


def load_run_backend(settings: EvalSettings, chain, spec, exemplars, examples, progress=None):
    """The backend a run asks for, vLLM's KV cache sized from its work (what a Ray worker loads too)."""
    from engine.backends import load_backend, resolve_backend_name
    from engine.kv_budget import work_of_run

    return load_backend(resolve_backend_name(settings.backend), settings.model, progress=progress, dtype=settings.dtype,
                        base_url=settings.base_url, concurrency=settings.concurrency,
                        kv_work=lambda: work_of_run(settings.model, chain, spec, exemplars, examples, settings.samples))


def open_step_cache(settings: EvalSettings, backend):
    """The backend behind the durable step cache, and the cache; the backend alone with --no-cache or no identity."""
    from engine.step_cache import CachedBackend, StepCache, default_cache_path, model_identity

    if settings.no_cache:
        return backend, None
    cache = StepCache(settings.cache or default_cache_path())
    identity = model_identity(backend, cache)
    if identity is None:
        cache.close()
        return backend, None
    return CachedBackend(backend, cache, identity), cache


def run_eval(settings: EvalSettings, backend=None, progress: bool = True) -> dict:
    """Run one evaluation and return its summary (also written to summary.json).

    Rerunning a killed run with the same settings and `--out` resumes it: finished items are kept, and the
    step cache answers every step that was generated before the kill.
    """
    from engine.files import FolderLock

    spec, strategy, examples, exemplars, chain = prepare(settings)
    out = claim_run_folder(settings, spec.name, strategy)
    with FolderLock(out):
        return _run_locked(settings, backend, progress, spec, strategy, examples, exemplars, chain, out)


def _run_locked(settings, backend, progress, spec, strategy, examples, exemplars, chain, out: Path) -> dict:
    from engine.backends import close_backend
    from engine.progress import WaveProgress

    if (out / "summary.json").exists():  # finished by another process while this one waited to start
        raise EngineError(f"{out} already holds a finished run: pass another --out folder")
    done = resume_records(out, settings)
    done_ids = {record["id"] for record in done}
    todo = [example for example in examples if example.id not in done_ids]
    owned = backend is None
    cache = None
    started = time.perf_counter()
    with WaveProgress(len(examples), enabled=progress) as bar:
        for record in done:
            bar.item_done(record["correct"])
        if settings.ray is not None:  # each Ray worker holds its own backend; records come home as they finish
            return _finish_on_ray(settings, spec, strategy, examples, todo, done, out, bar)
        if owned:
            backend = load_run_backend(settings, chain, spec, exemplars, todo or examples, progress=bar.say)
        kv_bytes = getattr(backend, "kv_cache_bytes", None)
        try:
            backend, cache = open_step_cache(settings, backend)
            ready = time.perf_counter() - started  # model load (when this run loads it) and cache open
            scheduler = _scheduler(settings.scheduler, backend)
            scored, waves, wall = _generate(chain, spec, exemplars, todo, backend, out, bar, scheduler)
            peak = peak_rss_mb()  # while the backend's engine (and any processes of its own) still live
        finally:
            if cache is not None:
                cache.close()
            if owned:
                close_backend(backend)
    about = {
        "backend": backend.name, "dtype": getattr(backend, "dtype", None), "model": getattr(backend, "served_model", None),
        "scheduler": scheduler, "requests": waves["requests"], "waves": waves["count"] if scheduler == "waves" else None,
        "startup_seconds": round(ready, 2), "peak_rss_mb": peak,
        "kv_cache_mb": round(kv_bytes / 2**20, 1) if kv_bytes else None,
        "step_cache": ({"path": str(cache.path), "hits": backend.hits, "misses": backend.misses}
                       if cache is not None else None),
    }
    return _write_summary(settings, spec, strategy, examples, done, scored, out, wall=wall, about=about)


def _write_summary(settings, spec, strategy, examples, done, scored, out: Path, wall: float, about: dict) -> dict:
    """Score the whole run (resumed items and new ones, in the task's order) and write summary, report, explorer.

    `about` says how the new items were generated: backend, dtype, scheduler, request count, start-up, memory,
    cache (and, on Ray, the workers).
    """
    from engine.explorer import write_run_explorer
    from engine.files import write_atomic
    from engine.report import write_report

    generated_tokens = sum(s["completion_tokens"] for r in scored for s in r["steps"] if not s.get("cached"))
    scored = done + scored
    order = {example.id: i for i, example in enumerate(examples)}
    scored.sort(key=lambda r: order[r["id"]])
    summary = summarize(scored, spec)
    about = dict(about)
    model = about.pop("model", None) or settings.model or "smollm2-135m"
    requests, scheduler, dtype = about.pop("requests"), about.pop("scheduler"), about.pop("dtype")
    summary.update(
        task=spec.name, strategy=strategy, chain=settings.chain, model=model, backend=about.pop("backend"),
        dtype=dtype, samples=settings.samples, depth=settings.depth if spec.source.generator else None,
        seed=settings.seed, wall_seconds=round(wall, 2), scheduler=scheduler,
        backend_requests=requests, waves=about.pop("waves", None),
        tokens_per_second=round(generated_tokens / wall, 1) if wall > 0 else None,
        resumed_items=len(done), **about,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), out=str(out),
        environment=describe(dtype, scheduler=scheduler),
    )
    if any(step["kind"] == "program" for record in scored for step in record["steps"]):
        from engine.sandbox import isolation_layers

        summary["sandbox_layers"] = isolation_layers()  # how contained the model's programs were, on this machine
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    write_report(out, summary, scored)
    write_run_explorer(out, summary, scored)
    return summary


def _scheduler(asked: str, backend) -> str:
    from engine.continuous import supports_continuous

    if asked == "continuous" and not supports_continuous(backend):
        raise EngineError(f"--scheduler continuous: the {backend.name} backend has no engine loop; "
                          "use --backend vllm, or --scheduler waves")
    if asked == "auto":  # where it pays: measured no faster than waves on a compute-bound CPU (see README)
        return "continuous" if supports_continuous(backend) and getattr(backend, "prefers_continuous", True) else "waves"
    return asked


@contextmanager
def record_sink(out: Path, bar):
    """A function that appends one finished item to samples.jsonl at once (flushed) and counts it."""
    with open(out / "samples.jsonl", "a", encoding="utf-8") as sink:

        def finished(record: dict) -> None:
            sink.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            sink.flush()
            bar.item_done(record["correct"])

        yield finished


def _generate(chain, spec, exemplars, examples, backend, out: Path, bar, scheduler: str = "waves"):
    """Run the chain over `examples`, appending each finished item to samples.jsonl as it finishes."""
    with record_sink(out, bar) as finished:
        return run_examples(chain, spec, exemplars, examples, backend, scheduler, on_record=finished,
                            on_wave=bar.wave_done)


def _finish_on_ray(settings, spec, strategy, examples, todo, done, out: Path, bar) -> dict:
    """The run's items sharded across Ray workers (`engine.ray_shards`), merged into this one run folder."""
    from engine.ray_shards import run_on_ray

    started = time.perf_counter()
    with record_sink(out, bar) as finished:
        scored, about = run_on_ray(settings, todo, on_record=finished, say=bar.say)
    wall = time.perf_counter() - started
    return _write_summary(settings, spec, strategy, examples, done, scored, out, wall=wall, about=about)


def run_examples(chain, spec, exemplars, examples, backend, scheduler: str = "waves", on_record=None, on_wave=None):
    """Run the chain over `examples` on `backend` and score each item as it finishes.

    `on_record(record)` sees each scored item the moment it is done (a run folder streams it to disk; a Ray
    worker sends it home). Returns the scored records, the backend-call counts and the wall time.
    """
    by_run: dict[int, object] = {}
    runs = []
    for example in examples:
        run = ExampleRun(initial_state(example, spec, exemplars))
        by_run[id(run)] = example
        runs.append(run)
    scored: list[dict] = []
    waves = {"count": 0, "requests": 0}
    start = time.perf_counter()

    def finished(run: ExampleRun) -> None:
        record = score_example(by_run[id(run)], run, spec)
        scored.append(record)
        if on_record:
            on_record(record)

    def wave(number: int, requests: int, seconds: float) -> None:
        waves["count"] = number
        waves["requests"] += requests
        if on_wave:
            on_wave(number, requests, seconds)

    def polled(completed: int, waiting: int) -> None:
        waves["requests"] += completed

    if runs and scheduler == "continuous":
        from engine.continuous import run_continuous

        run_continuous(chain, runs, backend, on_done=finished, on_poll=polled)
    elif runs:
        run_all(chain, runs, backend, on_wave=wave, on_done=finished)
    return scored, waves, time.perf_counter() - start
