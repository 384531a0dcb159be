"""One evaluation run: task -> examples -> chains batched across the dataset -> scores -> files.

Writes to the run folder: `samples.jsonl` (one line per item, streamed as each item finishes, so an
interrupted run keeps everything it finished), then `summary.json` and `report.md` once all items are scored.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from engine.environment import describe, peak_rss_mb
from engine.heap import release_freed_memory
from engine.runs.backend import choose_scheduler, load_run_backend, open_step_cache, preemption_count
from engine.runs.folder import claim_run_folder, finished_summary, record_sink, resume_records
from engine.runs.items import run_examples
from engine.runs.plan import EvalSettings, RunPlan, prepare
from engine.scoring.records import summarize


def run_eval(settings: EvalSettings | RunPlan, backend=None, progress: bool = True) -> dict:
    """Run one evaluation and return its summary (also written to summary.json).

    `settings` may be a plan `prepare` already made (the multi-run path checks every run's plan first).
    Rerunning a killed run with the same settings and `--out` resumes it: finished items are kept, and the
    step cache answers every step that was generated before the kill. Rerunning a finished one returns its
    summary (with `finished_before` set) and generates nothing.
    """
    from engine.files import FolderLock

    plan = settings if isinstance(settings, RunPlan) else prepare(settings)
    out = claim_run_folder(plan.settings, plan.spec.name, plan.strategy)
    with FolderLock(out):
        finished = finished_summary(out, plan.settings)  # also when another process finished it while we waited
        if finished is not None:
            return {**finished, "finished_before": True}
        return _run_locked(plan, backend, progress, out)


def _run_locked(plan: RunPlan, backend, progress: bool, out: Path) -> dict:
    from engine.backends import close_backend
    from engine.progress import WaveProgress
    from engine.runs.floor import FLOOR_FOLDER, figures, floor_plan

    settings = plan.settings
    done = resume_records(out, settings)
    floor = floor_plan(plan, out)  # run before the model loads: it needs none, and a broken floor fails at once
    floor = figures(run_eval(floor, progress=False), FLOOR_FOLDER) if floor is not None else None
    done_ids = {record["id"] for record in done}
    todo = [example for example in plan.examples if example.id not in done_ids]
    owned = backend is None
    cache = None
    started = time.perf_counter()
    with WaveProgress(len(plan.examples), enabled=progress) as bar:
        for record in done:
            bar.item_done(record["correct"])
        if settings.ray is not None:  # each Ray worker holds its own backend; records come home as they finish
            return _finish_on_ray(plan, todo, done, out, bar, floor)
        if owned:
            backend = load_run_backend(plan, todo or plan.examples, progress=bar.say)
        kv_bytes = getattr(backend, "kv_cache_bytes", None)
        preemptions = preemption_count(backend)
        try:
            backend, cache = open_step_cache(settings, backend)
            ready = time.perf_counter() - started  # model load (when this run loads it) and cache open
            scheduler = choose_scheduler(settings.scheduler, backend)
            with record_sink(out, bar) as finished:
                scored, waves, wall = run_examples(plan, todo, backend, scheduler, on_record=finished,
                                                   on_wave=bar.wave_done)
            peak = peak_rss_mb()  # while the backend's engine (and any processes of its own) still live
            preemptions = preemption_count(getattr(backend, "inner", backend), since=preemptions)
        finally:
            if cache is not None:
                cache.close()
            if owned:
                close_backend(backend)
    about = {
        "backend": backend.name, "dtype": getattr(backend, "dtype", None), "model": getattr(backend, "served_model", None),
        "scheduler": scheduler, "requests": waves["requests"], "waves": waves["count"] if scheduler == "waves" else None,
        "startup_seconds": round(ready, 2), "peak_rss_mb": peak,
        "kv_cache_mb": round(kv_bytes / 2**20, 1) if kv_bytes else None, "preemptions": preemptions,
        "step_cache": ({"path": str(cache.path), "hits": backend.hits, "misses": backend.misses}
                       if cache is not None else None),
    }
    return _write_summary(plan, done, scored, out, wall=wall, about=about, floor=floor)


def _write_summary(plan: RunPlan, done, scored, out: Path, wall: float, about: dict, floor: dict | None) -> dict:
    """Score the whole run (resumed items and new ones, in the task's order) and write summary, report, explorer.

    `about` says how the new items were generated: backend, dtype, scheduler, request count, start-up, memory,
    cache (and, on Ray, the workers). `floor`: the figures of the run's floor (`engine.runs.floor`), if asked.
    """
    from engine.backends.names import NULL
    from engine.runs.floor import figures

    from engine.explorer import write_run_explorer
    from engine.files import write_atomic
    from engine.runs.report import write_report

    settings, spec = plan.settings, plan.spec
    generated_tokens = sum(s["completion_tokens"] for r in scored for s in r["steps"] if not s.get("cached"))
    scored = done + scored
    order = {example.id: i for i, example in enumerate(plan.examples)}
    scored.sort(key=lambda r: order[r["id"]])
    summary = summarize(scored, spec)
    about = dict(about)
    model = about.pop("model", None) or settings.model or "smollm2-135m"
    requests, scheduler, dtype = about.pop("requests"), about.pop("scheduler"), about.pop("dtype")
    summary.update(
        task=spec.name, strategy=plan.strategy, chain=settings.chain, model=model, backend=about.pop("backend"),
        dtype=dtype, samples=settings.samples, depth=settings.depth if spec.source.generator else None,
        seed=settings.seed, wall_seconds=round(wall, 2), scheduler=scheduler,
        backend_requests=requests, waves=about.pop("waves", None),
        tokens_per_second=round(generated_tokens / wall, 1) if wall > 0 else None,
        resumed_items=len(done), **about,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), out=str(out),
        environment=describe(dtype, scheduler=scheduler),
    )
    summary["floor"] = figures(summary, None) if summary["backend"] == NULL else floor  # a null run is its own
    summary["chance"] = spec.chance
    if any(step["kind"] == "program" for record in scored for step in record["steps"]):
        from engine.sandbox.launch import isolation_layers

        summary["sandbox_layers"] = isolation_layers()  # how contained the model's programs were, on this machine
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    write_report(out, summary, scored)
    write_run_explorer(out, summary, scored)
    release_freed_memory()  # what this run freed goes back to the system, not under the next run's peak
    return summary


def _finish_on_ray(plan: RunPlan, todo, done, out: Path, bar, floor: dict | None) -> dict:
    """The run's items sharded across Ray workers (`engine.runs.ray_shards`), merged into this one run folder."""
    from engine.runs.ray_shards import run_on_ray

    started = time.perf_counter()
    with record_sink(out, bar) as finished:
        scored, about = run_on_ray(plan.settings, todo, on_record=finished, say=bar.say)
    wall = time.perf_counter() - started
    return _write_summary(plan, done, scored, out, wall=wall, about=about, floor=floor)
