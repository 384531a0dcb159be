"""`python -m engine compare RUN_A RUN_B`: is B's accuracy different from A's beyond noise, on the same items?"""

from __future__ import annotations

from pathlib import Path

from engine.errors import EngineError
from engine.files import read_records
from engine.scoring.stats import compare_runs


def load_correct(folder: str) -> dict[str, bool]:
    path = Path(folder) / "samples.jsonl"
    if not path.exists():
        raise EngineError(f"{folder} has no samples.jsonl: pass a run folder written by `python -m engine eval`")
    records, _ = read_records(path)  # a half-written last line (a killed run) is left out, not fatal
    correct = {}
    for record in records:
        correct[record["id"]] = bool(record["correct"])
    return correct


def compare_paired(run_a: str, run_b: str) -> tuple[dict, dict, list[str]]:
    """`compare_runs` on the items two run folders share; also returns both runs' verdicts and the shared ids."""
    a, b = load_correct(run_a), load_correct(run_b)
    shared = [item for item in a if item in b]
    if not shared:
        raise EngineError(f"{run_a} and {run_b} share no items: compare runs of the same task and data")
    return compare_runs([a[i] for i in shared], [b[i] for i in shared]), {"a": a, "b": b}, shared


def compare_folders(run_a: str, run_b: str) -> str:
    result, runs, shared = compare_paired(run_a, run_b)
    a, b = runs["a"], runs["b"]
    lines = [
        f"items compared: {len(shared)} (only in A: {len(a) - len(shared)}, only in B: {len(b) - len(shared)})",
        f"A {run_a}: {100 * result['accuracy_a']:.1f}%   B {run_b}: {100 * result['accuracy_b']:.1f}%",
        f"McNemar exact: A right/B wrong {result['mcnemar']['b01']}, A wrong/B right {result['mcnemar']['b10']}, "
        f"p = {result['mcnemar']['p_value']:.4g}",
        f"paired bootstrap: delta {100 * result['bootstrap']['delta']:+.1f} points, 95% CI "
        f"[{100 * result['bootstrap']['ci95'][0]:+.1f}, {100 * result['bootstrap']['ci95'][1]:+.1f}]",
        result["verdict"],
    ]
    return "\n".join(lines + floor_lines(run_a, run_b))


def floor_lines(run_a: str, run_b: str) -> list[str]:
    """Each run's floor (`--floor`, or a null run's own) and the task's chance rate, where recorded: an accuracy
    is read against what the chain scores with no model."""
    import json

    from engine.runs.report import interval, pct

    summaries = []
    for folder in (run_a, run_b):
        path = Path(folder) / "summary.json"
        summaries.append(json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {})
    floors = [s.get("floor") for s in summaries]
    lines = []
    if any(floors):
        shown = [f"{pct(f['accuracy'])} {interval(f['ci95'])}" if f else "not recorded (eval --floor)" for f in floors]
        lines.append(f"floor (no model, --backend null): A {shown[0]}   B {shown[1]}")
    chances = [s.get("chance") for s in summaries]
    if any(c is not None for c in chances):
        shown = ["—" if c is None else pct(c) for c in chances]
        lines.append(f"chance: {shown[0]}" if shown[0] == shown[1] else f"chance: A {shown[0]}   B {shown[1]}")
    return lines
