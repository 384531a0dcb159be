"""One evaluation run: task -> examples -> chains batched across the dataset -> scores -> files.

Writes to the run folder: `samples.jsonl` (one line per item, streamed as each item finishes, so an
interrupted run keeps everything it finished), then `summary.json` and `report.md` once all items are scored.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from engine.environment import describe
from engine.errors import EngineError
from engine.scheduler import ExampleRun, run_all
from engine.scoring import score_example, summarize
from engine.strategies import STATE_KEYS, build_chain, initial_state
from engine.tasks import load_examples, load_spec


class EvalSettings(BaseModel):
    """Everything that defines an evaluation run (what `python -m engine eval` takes)."""

    model_config = ConfigDict(extra="forbid")

    task: str
    strategy: str | None = None
    """Defaults to the task's default strategy."""
    model: str | None = None
    backend: str = "hf"
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


def prepare(settings: EvalSettings):
    """Everything that can fail before any model is loaded: task, data, exemplars, chain wiring."""
    from engine.datasets import load_exemplars
    from engine.tasks import expand_path

    if settings.limit is not None and settings.limit < 1:
        raise EngineError(f"--limit must be at least 1, got {settings.limit}")
    spec, base = load_spec(settings.task)
    strategy = settings.strategy or spec.default_strategy
    examples = load_examples(spec, base, settings.limit, settings.depth, settings.seed, settings.data)
    exemplars = []
    if strategy == "fewshot-cot" and spec.exemplars:
        exemplars = load_exemplars(expand_path(spec.exemplars.path, base), spec.exemplars.format, spec.exemplars.count)
    chain = build_chain(strategy, spec, settings.samples, settings.temperature, settings.max_tokens,
                        settings.program_timeout)
    chain.check(set(STATE_KEYS) | set(examples[0].fields))
    return spec, strategy, examples, exemplars, chain


def run_folder(settings: EvalSettings, spec_name: str, strategy: str) -> Path:
    if settings.out:
        out = Path(settings.out)
        if (out / "summary.json").exists() or (out / "samples.jsonl").exists():
            raise EngineError(f"{out} already holds a run: pass another --out folder (or delete that one)")
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{spec_name}-{strategy}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_eval(settings: EvalSettings, backend=None, progress: bool = True) -> dict:
    """Run one evaluation and return its summary (also written to summary.json)."""
    from engine.backends import close_backend, load_backend
    from engine.progress import WaveProgress
    from engine.report import write_report

    spec, strategy, examples, exemplars, chain = prepare(settings)
    out = run_folder(settings, spec.name, strategy)
    owned = backend is None
    with WaveProgress(len(examples), enabled=progress) as bar:
        if owned:
            backend = load_backend(settings.backend, settings.model, progress=bar.say, dtype=settings.dtype)
        by_run: dict[int, object] = {}
        runs = []
        for example in examples:
            run = ExampleRun(initial_state(example, spec, exemplars))
            by_run[id(run)] = example
            runs.append(run)
        scored: list[dict] = []
        waves = {"count": 0, "requests": 0}
        start = time.perf_counter()
        with open(out / "samples.jsonl", "w", encoding="utf-8") as sink:

            def finished(run: ExampleRun) -> None:
                record = score_example(by_run[id(run)], run, spec)
                scored.append(record)
                sink.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                sink.flush()
                bar.item_done(record["correct"])

            def wave(number: int, requests: int, seconds: float) -> None:
                waves["count"] = number
                waves["requests"] += requests
                bar.wave_done(number, requests, seconds)

            try:
                run_all(chain, runs, backend, on_wave=wave, on_done=finished)
            finally:
                if owned:
                    close_backend(backend)
        wall = time.perf_counter() - start
    order = {example.id: i for i, example in enumerate(examples)}
    scored.sort(key=lambda r: order[r["id"]])
    summary = summarize(scored, spec)
    summary.update(
        task=spec.name, strategy=strategy, model=settings.model or "smollm2-135m", backend=backend.name,
        dtype=getattr(backend, "dtype", None),
        samples=settings.samples, depth=settings.depth if spec.source.generator else None, seed=settings.seed,
        wall_seconds=round(wall, 2), waves=waves["count"], backend_requests=waves["requests"],
        tokens_per_second=round(summary["completion_tokens"] / wall, 1) if wall > 0 else None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), out=str(out),
        environment=describe(getattr(backend, "dtype", None), scheduler="waves"),
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(out, summary, scored)
    return summary
