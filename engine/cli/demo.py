"""The embedded demo: synthetic multi-step arithmetic, the base model against the fine-tuned one; then the same
pairing on problems someone else wrote, the twelve algorithmic BIG-Bench-Hard files (`engine.cli.demo_bbh`).

The base model runs the prompting strategies (direct, cot by default); the shipped fine-tuned model
(`smollm2-135m-stepwise`: the base plus a LoRA adapter trained on depths 1-4 only) runs `stepwise`. Every run
scores the same held-out items per depth (the evaluation's own, seed 0), so each depth gets a paired test of the
fine-tuned model against the base model's best strategy there. Depths beyond 4 were never trained on.

The base model's arithmetic and BBH runs share one engine; each adapter gets an engine of its own.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from engine.files import write_atomic
from engine.errors import EngineError

TUNED_DEFAULT = "smollm2-135m-stepwise"


def run_demo(args) -> list[dict]:
    from engine.backends import refuse_null, resolve_backend_name
    from engine.cli.demo_bbh import bbh_plans, bbh_rows, bbh_table, pooled, trained_for
    from engine.runs.plan import EvalSettings, prepare
    from engine.explorer import write_explorer
    from engine.models import check_model
    from engine.tasks.spec import parse_depths
    from engine.runs.report import depth_table, plot_depths

    depths = parse_depths(args.depths)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    tuned_strategies = [s.strip() for s in args.tuned_strategies.split(",") if s.strip()] if args.tuned else []
    backend_name = resolve_backend_name(args.backend)
    refuse_null(backend_name, "the demo")
    out = Path(args.out or f"runs/demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and any(out.iterdir()):
        raise EngineError(f"{out} already holds a demo: pass another --out folder (or delete that one)")
    for model in (args.model, args.tuned, args.bbh_tuned if args.bbh_items else None):
        if model:
            check_model(model)  # a misspelt --tuned is refused now, not after the base model's runs
    for strategy in strategies + tuned_strategies:  # every strategy and depth is checked before a model loads
        for depth in depths:
            prepare(EvalSettings(task="arithmetic", strategy=strategy, depth=depth, limit=1))
    bbh_base, bbh_tuned = bbh_plans(args.bbh_items, args.model, args.bbh_tuned, backend_name, args.dtype, out) \
        if args.bbh_items else ({}, {})
    base_label = args.model or "smollm2-135m"
    base_plans = _arithmetic_plans(args, args.model, backend_name, depths, strategies, out, "")
    done = _run_plans({**base_plans, **bbh_base})  # one engine for the base
    rows = _depth_rows(base_plans, done, args.model, label="")
    if args.tuned:
        tuned_plans = _arithmetic_plans(args, args.tuned, backend_name, depths, tuned_strategies, out, "-tuned")
        rows += _depth_rows(tuned_plans, _run_plans(tuned_plans), args.tuned, label=" (fine-tuned)")
    bbh_done = _run_plans(bbh_tuned)
    paired = _paired_by_depth(rows, out) if args.tuned else []
    table = depth_table(rows)
    title = f"multi-step arithmetic, {base_label} ({backend_name}), {args.limit} items per depth"
    plot_depths(rows, out / "accuracy_vs_depth.png", title)
    bbh = {}
    text = f"# Demo: {title}\n\nAccuracy (95% Wilson interval):\n\n{table}\n"
    if paired:
        text += "\n" + _paired_table(paired, args.tuned) + "\n"
    if bbh_base:
        bbh_summaries = {task: done[task] for task in bbh_base}
        file_rows = bbh_rows(bbh_summaries, bbh_done, trained_for(args.bbh_tuned))
        together = pooled(file_rows, out)
        bbh = {"items": args.bbh_items, "tuned": args.bbh_tuned or None, "rows": file_rows, "pooled": together}
        text += "\n" + bbh_table(file_rows, together, args.bbh_tuned or None, args.bbh_items) + "\n"
    write_atomic(out / "demo.json", json.dumps({"rows": rows, "paired": paired, "bbh": bbh}, indent=2))
    write_atomic(out / "report.md", text + "\n![accuracy against depth](accuracy_vs_depth.png)\n")
    explorer = write_explorer([out], out / "explorer.html")
    print(f"\n{text}\nwrote {out}/report.md, accuracy_vs_depth.png and {explorer.name} (open it in a browser)")
    return rows


def _arithmetic_plans(args, model, backend_name, depths, strategies, out, suffix) -> dict:
    from engine.runs.plan import EvalSettings, prepare

    return {(depth, strategy): prepare(EvalSettings(
        task="arithmetic", strategy=strategy, depth=depth, limit=args.limit, model=model, backend=backend_name,
        dtype=args.dtype, out=str(out / f"{strategy}{suffix}-d{depth}")))
        for depth in depths for strategy in strategies}


def _run_plans(plans: dict) -> dict:
    """Every plan (all of one model) on one engine (`run_on_one_backend`); each run's summary by the plan's key,
    and a line per run as it ends."""
    from engine.runs.many import run_on_one_backend

    def say(plan, summary):
        print(f"{Path(plan.settings.out).name:52s} {100 * summary['accuracy']:5.1f}% "
              f"[{100 * summary['ci95'][0]:.1f}, {100 * summary['ci95'][1]:.1f}] "
              f"unparsed {100 * summary['unparsed_rate']:.1f}%  {summary['wall_seconds']} s")

    return dict(zip(plans, run_on_one_backend(list(plans.values()), after_each=say)))


def _depth_rows(plans: dict, done: dict, model, label: str) -> list[dict]:
    rows = []
    for (depth, strategy), plan in plans.items():
        summary = done[(depth, strategy)]
        row = {k: summary[k] for k in ("strategy", "depth", "n", "accuracy", "ci95", "unparsed_rate",
                                       "wall_seconds", "completion_tokens", "waves")}
        row.update(strategy=strategy + label, run=Path(plan.settings.out).name, model=model or "smollm2-135m")
        rows.append(row)
    return rows


def _paired_by_depth(rows: list[dict], out: Path) -> list[dict]:
    """At each depth: the fine-tuned model's best run against the base model's best run, on the same items."""
    from engine.runs.compare import compare_paired

    paired = []
    for depth in sorted({r["depth"] for r in rows}):
        here = [r for r in rows if r["depth"] == depth]
        base = max((r for r in here if "(fine-tuned)" not in r["strategy"]), key=lambda r: r["accuracy"], default=None)
        tuned = max((r for r in here if "(fine-tuned)" in r["strategy"]), key=lambda r: r["accuracy"], default=None)
        if base is None or tuned is None:
            continue
        result, _, shared = compare_paired(str(out / base["run"]), str(out / tuned["run"]))
        paired.append({"depth": depth, "base": base["strategy"], "tuned": tuned["strategy"], "n": len(shared),
                       "base_accuracy": result["accuracy_a"], "tuned_accuracy": result["accuracy_b"],
                       "mcnemar_p": result["mcnemar"]["p_value"], "delta_ci95": result["bootstrap"]["ci95"]})
    return paired


def _paired_table(paired: list[dict], tuned: str) -> str:
    lines = [f"Fine-tuned ({tuned}) against the base model's best strategy at each depth, same items "
             "(exact McNemar; paired bootstrap interval of the difference):", "",
             "| depth | base best | fine-tuned | difference [95% CI] | McNemar p |", "|---|---|---|---|---|"]
    for p in paired:
        low, high = p["delta_ci95"]
        lines.append(f"| {p['depth']} | {p['base']} {100 * p['base_accuracy']:.1f}% | {p['tuned']} "
                     f"{100 * p['tuned_accuracy']:.1f}% | {100 * (p['tuned_accuracy'] - p['base_accuracy']):+.1f} "
                     f"[{100 * low:+.1f}, {100 * high:+.1f}] | {p['mcnemar_p']:.2g} |")
    return "\n".join(lines)
