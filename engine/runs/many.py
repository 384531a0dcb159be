"""One start, many runs: `eval --task a,b --strategy x,y --depth 1,2,3` on one backend.

Starting vLLM costs tens of seconds on a CPU, more than a small run takes to generate. Every combination of
task, strategy and depth is validated first (an unknown name is refused before any model loads), then the
backend starts once and each combination runs into its own folder under the output folder, as a single `eval`
would write it; `table.md` and `table.json` put the runs side by side.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path

from engine.errors import EngineError
from engine.files import write_atomic


def split_list(text: str | None) -> list[str | None]:
    """`"a, b"` -> ["a", "b"]; None stays [None] (the task's default)."""
    if text is None:
        return [None]
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise EngineError(f"empty list {text!r}: name at least one")
    return items


def is_many(task: str, strategy: str | None, depth: str | None) -> bool:
    return "," in task or "," in (strategy or "") or any(mark in (depth or "") for mark in ",-")


def plan_runs(fields: dict) -> list:
    """Every combination of `fields`' task, strategy and depth lists as its own run plan (out: a sub-folder),
    each prepared (so checked) before anything loads."""
    from engine.chains.custom import chain_label
    from engine.runs.plan import EvalSettings, prepare
    from engine.tasks.spec import parse_depths

    tasks = split_list(fields["task"])
    strategies = split_list(fields.get("strategy"))  # each checked against its task's list by prepare below
    depths = parse_depths(str(fields["depth"])) if fields.get("depth") else [None]
    out = Path(fields.get("out") or f"runs/eval-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    plans = []
    chain = fields.get("chain")
    for task, strategy, depth in itertools.product(tasks, strategies, depths):
        label = strategy or (chain_label(chain) if chain else "default")
        name = "-".join(str(part) for part in (Path(task).stem, label, f"d{depth}" if depth else None) if part)
        one = EvalSettings(**{**fields, "task": task, "strategy": strategy, "depth": depth, "out": str(out / name)})
        plans.append(prepare(one))  # unknown task, bad data, a strategy the task cannot run: refused now
    return plans


def run_on_one_backend(plans: list, progress: bool = True, after_each=None) -> list[dict]:
    """Each plan (all of one model) on one backend, started once with its KV cache sized for the largest run;
    nothing loads when every run is already finished. `after_each(plan, summary)` as each run ends."""
    from engine.backends import close_backend, load_backend, resolve_backend_name
    from engine.runs.evaluate import run_eval
    from engine.runs.folder import finished_summary
    from engine.runs.kv_work import work_of_plans

    if not plans:
        return []
    first = plans[0].settings
    backend = None
    if not all(finished_summary(Path(plan.settings.out), plan.settings) for plan in plans):  # a finished rerun loads nothing
        sized = {"kv_cache_mb": first.kv_cache_mb} if first.kv_cache_mb is not None else {}  # vllm only (prepare)
        backend = load_backend(resolve_backend_name(first.backend), first.model, progress=print, dtype=first.dtype,
                               base_url=first.base_url, concurrency=first.concurrency,
                               kv_work=lambda: work_of_plans(plans), **sized)  # one KV cache for the largest run
    summaries = []
    try:
        for plan in plans:
            summaries.append(run_eval(plan, backend=backend, progress=progress))
            if after_each:
                after_each(plan, summaries[-1])
    finally:
        close_backend(backend)
    return summaries


def run_many(plans: list, progress: bool = True) -> list[dict]:
    """Run each plan on one backend; write the side-by-side table beside their folders."""
    from engine.runs.report import interval, pct

    summaries = run_on_one_backend(plans, progress=progress)
    out = Path(plans[0].settings.out).parent
    rows = [{"task": s["task"], "strategy": s["strategy"], "depth": s["depth"], "n": s["n"],
             "accuracy": s["accuracy"], "ci95": s["ci95"], "unparsed_rate": s["unparsed_rate"],
             "floor": (s.get("floor") or {}).get("accuracy"), "chance": s.get("chance"),
             "wall_seconds": s["wall_seconds"], "folder": s["out"]} for s in summaries]
    floors = any(r["floor"] is not None or r["chance"] is not None for r in rows)  # a column only where known

    def floor_cells(r) -> str:
        shown = ["" if r[key] is None else pct(r[key]) for key in ("floor", "chance")]
        return f" {shown[0]} | {shown[1]} |" if floors else ""

    lines = ["| task | strategy | depth | n | accuracy | 95% CI | unparsed |" + (" floor | chance |" if floors else "")
             + " seconds |", "|---|---|---|---|---|---|---|" + ("---|---|" if floors else "") + "---|"]
    lines += [f"| {r['task']} | {r['strategy']} | {r['depth'] or ''} | {r['n']} | {pct(r['accuracy'])} | "
              f"{interval(r['ci95'])} | {pct(r['unparsed_rate'])} |{floor_cells(r)} {r['wall_seconds']} |" for r in rows]
    write_atomic(out / "table.json", json.dumps(rows, indent=2))
    write_atomic(out / "table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    from engine.explorer import write_explorer

    write_explorer([out], out / "explorer.html")
    print(f"wrote {len(rows)} run folders, table.md and explorer.html under {out}")
    return summaries
