"""The embedded demo: synthetic multi-step arithmetic at depths 1-4, direct vs cot vs decompose, one model load."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from engine.errors import EngineError


def run_demo(args) -> list[dict]:
    from engine.backends import close_backend, load_backend
    from engine.backends.vllm import vllm_available
    from engine.evaluate import EvalSettings, prepare
    from engine.report import depth_table, plot_depths

    try:
        depths = [int(d) for d in args.depths.split(",")]
    except ValueError:
        raise EngineError(f"--depths must be comma-separated whole numbers, got {args.depths!r}") from None
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    backend_name = args.backend if args.backend != "auto" else ("vllm" if vllm_available() else "hf")
    out = Path(args.out or f"runs/demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and any(out.iterdir()):
        raise EngineError(f"{out} already holds a demo: pass another --out folder (or delete that one)")
    for strategy in strategies:  # every strategy and depth is checked before the model loads
        for depth in depths:
            prepare(EvalSettings(task="arithmetic", strategy=strategy, depth=depth, limit=1))
    backend = load_backend(backend_name, args.model, progress=print, dtype=args.dtype)
    try:
        rows = _sweep(args, backend, backend_name, depths, strategies, out)
    finally:
        close_backend(backend)
    table = depth_table(rows)
    title = f"multi-step arithmetic, {args.model or 'smollm2-135m'} ({backend_name}), {args.limit} items per depth"
    plot_depths(rows, out / "accuracy_vs_depth.png", title)
    (out / "demo.json").write_text(json.dumps(rows, indent=2))
    (out / "report.md").write_text(f"# Demo: {title}\n\nAccuracy (95% Wilson interval):\n\n{table}\n\n"
                                   "![accuracy against depth](accuracy_vs_depth.png)\n")
    print(f"\n{title}\n{table}\nwrote {out}/report.md and accuracy_vs_depth.png")
    return rows


def _sweep(args, backend, backend_name, depths, strategies, out) -> list[dict]:
    from engine.evaluate import EvalSettings, run_eval

    rows = []
    for depth in depths:
        for strategy in strategies:
            settings = EvalSettings(task="arithmetic", strategy=strategy, depth=depth, limit=args.limit,
                                    model=args.model, backend=backend_name, out=str(out / f"{strategy}-d{depth}"))
            summary = run_eval(settings, backend=backend)
            rows.append({k: summary[k] for k in ("strategy", "depth", "n", "accuracy", "ci95", "unparsed_rate",
                                                 "wall_seconds", "completion_tokens", "waves")})
            print(f"depth {depth} {strategy:10s} {100 * summary['accuracy']:5.1f}% "
                  f"[{100 * summary['ci95'][0]:.1f}, {100 * summary['ci95'][1]:.1f}] "
                  f"unparsed {100 * summary['unparsed_rate']:.1f}%  {summary['wall_seconds']} s, {summary['waves']} waves")
    return rows
