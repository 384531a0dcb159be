"""Memory over many runs on one engine: does a process's memory creep from run to run, and what grows?

The demo runs 12 base-model runs (direct and cot at depths 1-4, 6, 8, 60 items each) on one vLLM engine, and
its peak RSS grew about 30 MiB a run. This benchmark runs the same sequence on one engine, the way the demo
does (`run_eval` with a shared backend, a fresh step cache), and after each run records the resident memory
now (VmRSS), the high-water mark (VmHWM), Python's own traced allocations (tracemalloc, with the lines that
grew most since the run before), and the sizes of the containers a run could leave behind. Prints a table and
writes JSON with the command and environment; run 12's peak against run 1's is the figure the demo serves.

    python eval/bench_memory.py [--runs 12] [--limit 60] [--same] [--out eval/results/bench]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {field} in /proc/self/status")


def growth(before, after, top: int = 6) -> list[str]:
    """The lines whose traced allocations grew most between two snapshots."""
    return [f"{stat.traceback[0].filename.split('site-packages/')[-1]}:{stat.traceback[0].lineno} "
            f"{stat.size_diff / 2**20:+.2f} MiB ({stat.count_diff:+d} blocks)"
            for stat in after.compare_to(before, "lineno")[:top]]


def main() -> None:
    from engine import EvalSettings, run_eval
    from engine.backends import close_backend, load_backend
    from engine.environment import describe
    from engine.runs.kv_work import work_of_plans
    from engine.runs.plan import prepare

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--depths", default="1,2,3,4,6,8")
    parser.add_argument("--strategies", default="direct,cot")
    parser.add_argument("--same", action="store_true",
                        help="repeat the first depth and strategy, with no step cache: a leak shows as a peak that "
                             "grows over identical runs (the demo's own runs grow in depth, so their prompts do)")
    parser.add_argument("--out", default="eval/results/bench")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    strategies = args.strategies.split(",")
    order = [(depths[0], strategies[0])] if args.same else [(d, s) for d in depths for s in strategies]
    order = (order * (args.runs // len(order) + 1))[:args.runs]
    folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    cache = folder / "steps.sqlite"  # a fresh step cache, as on a new machine: every run generates
    plans = [prepare(EvalSettings(task="arithmetic", strategy=s, depth=d, limit=args.limit, backend="vllm",
                                  cache=str(cache), no_cache=args.same, out=str(folder / f"{n:02d}-{s}-d{d}")))
             for n, (d, s) in enumerate(order, 1)]
    backend = load_backend("vllm", None, progress=print, kv_work=lambda: work_of_plans(plans))
    tracemalloc.start(1)
    gc.collect()
    rows, previous = [], tracemalloc.take_snapshot()
    start_rss = status_mb("VmRSS")
    try:
        for number, plan in enumerate(plans, 1):
            started = time.perf_counter()
            summary = run_eval(plan, backend=backend, progress=False)
            gc.collect()
            snapshot = tracemalloc.take_snapshot()
            traced, _ = tracemalloc.get_traced_memory()
            row = {"run": number, "strategy": plan.strategy, "depth": plan.settings.depth,
                   "seconds": round(time.perf_counter() - started, 1), "accuracy": summary["accuracy"],
                   "rss_mb": status_mb("VmRSS"), "hwm_mb": status_mb("VmHWM"),
                   "traced_mb": round(traced / 2**20, 1), "gc_objects": len(gc.get_objects()),
                   "grew": growth(previous, snapshot)}
            previous = snapshot
            rows.append(row)
            print(f"run {number:2d} {plan.strategy:6s} d{plan.settings.depth}: RSS {row['rss_mb']:8.1f} MiB, "
                  f"peak {row['hwm_mb']:8.1f} MiB, traced {row['traced_mb']:6.1f} MiB, "
                  f"{row['gc_objects']:,} objects, {row['seconds']} s", flush=True)
            for line in row["grew"][:3]:
                print(f"        {line}")
    finally:
        close_backend(backend)
    first, last = rows[0], rows[-1]
    result = {
        "command": "python eval/bench_memory.py " + " ".join(sys.argv[1:]), "environment": describe("float32"),
        "rss_before_first_run_mb": start_rss, "rows": rows,
        "peak_last/first": round(last["hwm_mb"] / first["hwm_mb"], 4),
        "rss_last/first": round(last["rss_mb"] / first["rss_mb"], 4),
        "traced_growth_mb": round(last["traced_mb"] - first["traced_mb"], 1),
        "target": "peak of the last run within 2% of the first run's", "met": last["hwm_mb"] <= 1.02 * first["hwm_mb"],
    }
    print(f"peak RSS, run {last['run']} / run 1: {result['peak_last/first']} (target <= 1.02); "
          f"RSS now {result['rss_last/first']}; Python-traced growth {result['traced_growth_mb']} MiB")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "memory-same.json" if args.same else "memory.json"
    (out / name).write_text(json.dumps(result, indent=2))
    print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
