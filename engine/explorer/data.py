"""Run folders -> the plain data the explorer page is built from (no HTML here, so every figure is testable).

A run folder (written by `run_eval`) holds `summary.json`, `run.json` and `samples.jsonl`; a demo or multi-run
folder holds run folders one level down. `find_runs` expands the arguments, `load_run` reads one folder (a
`samples.jsonl` cut short by a kill is read up to its last complete line), and `page_data` turns the runs into
one dict: a row per run, a flat list of items (each with its status, depth, first wrong step and every step),
and a paired comparison for each two runs of the same task that share items.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

from engine.errors import EngineError
from engine.files import read_records

MAX_COMPARISONS = 200
"""Pairs of runs compared at most (a large sweep has many; the first ones in argument order are kept)."""

STEP_FIELDS = ("step", "kind", "prompt", "outputs", "parsed", "error", "prompt_tokens", "cached_prompt_tokens",
               "completion_tokens", "finish_reasons", "seconds", "cached", "branch", "tool_calls")
"""What the page shows of each step record (request keys and the like stay in samples.jsonl)."""


def find_runs(paths) -> list[Path]:
    """Each argument as run folders: a run folder is itself; a demo or multi-run folder is the runs inside it."""
    found: list[Path] = []
    for given in paths:
        folder = Path(given)
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise EngineError(f"{folder} {what}: pass a run folder written by `python -m engine eval` "
                              "(or a demo folder holding several)")
        if (folder / "summary.json").is_file():
            runs = [folder]
        else:
            runs = sorted(sub for sub in folder.iterdir() if sub.is_dir() and (sub / "summary.json").is_file())
        if not runs:
            unfinished = " (an unfinished run? finish it by rerunning the same eval)" if (
                folder / "samples.jsonl").exists() else ""
            raise EngineError(f"{folder} is not a run folder: it has no summary.json{unfinished} and no run folders "
                              "inside; pass a folder written by `python -m engine eval` or `python -m engine demo`")
        found += [run for run in runs if run.resolve() not in {f.resolve() for f in found}]
    return found


def load_run(folder: Path) -> dict:
    """One run folder: {"folder", "summary", "settings", "records", "notes"}; a half-written last line is left out."""
    folder = Path(folder)
    summary = _read_json(folder / "summary.json")
    settings = _read_json(folder / "run.json") if (folder / "run.json").is_file() else {}
    notes = []
    samples = folder / "samples.jsonl"
    if samples.is_file():
        records, complete = read_records(samples)
        if complete < samples.stat().st_size:
            notes.append("samples.jsonl ends with a half-written line (the run was killed mid-write); it is left out")
    else:
        records = []
        notes.append("samples.jsonl is missing: no items to show")
    return {"folder": folder, "summary": summary, "settings": settings, "records": records, "notes": notes}


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EngineError(f"{path} is not valid JSON ({exc}): rerun the eval into a new --out folder") from None
    if not isinstance(value, dict):
        raise EngineError(f"{path} should hold a JSON object: rerun the eval into a new --out folder")
    return value


def page_data(runs: list[dict]) -> dict:
    """Everything the page shows, as plain JSON-able data: {"runs", "items", "comparisons", "depths"}."""
    labels = _labels([run["folder"] for run in runs])
    rows, items = [], []
    for index, run in enumerate(runs):
        match = _step_match(run)
        rows.append(run_row(run, labels[index], match))
        items += [item_data(record, index, rows[-1]["depth"], match) for record in run["records"]]
    comparisons = paired_comparisons(runs, items)
    depths = sorted({row["depth"] for row in rows if row["depth"] is not None})
    return clean({"runs": rows, "items": items, "comparisons": comparisons, "depths": depths})


def run_row(run: dict, label: str, match=None) -> dict:
    """A run's headline figures and settings."""
    summary, records = run["summary"], run["records"]
    n = summary.get("n") or len(records)
    completion = summary.get("completion_tokens")
    row = {
        "label": label, "folder": str(run["folder"]),
        "series": " · ".join(str(summary[k]) for k in ("task", "strategy", "model") if summary.get(k) is not None),
        "n": n, "items_shown": len(records),
        "tokens_per_item": completion / n if n and completion is not None else None,
        "settings": run["settings"], "notes": list(run["notes"]),
        "k_curves": k_curves(records, match or _step_match(run)),
    }
    for key in ("task", "strategy", "model", "backend", "dtype", "depth", "samples", "seed", "accuracy", "ci95",
                "correct", "unparsed_rate", "truncated_rate", "errors", "step_errors", "prompt_tokens",
                "completion_tokens", "wall_seconds", "tokens_per_second", "startup_seconds", "peak_rss_mb",
                "backend_requests", "scheduler", "created", "extractions", "prefix_cache", "per_step", "per_class",
                "environment", "floor", "chance"):
        row[key] = summary.get(key)
    row["at_k"] = {key: value for key, value in summary.items() if key.startswith(("maj@", "pass@"))}
    if n and len(records) < n:
        row["notes"].append(f"samples.jsonl holds {len(records)} of the summary's {n} items")
    return row


def _labels(folders: list[Path]) -> list[str]:
    """Short unique names: the folder's name, or parent/name where two runs share a name."""
    names = [folder.name or str(folder) for folder in folders]
    return [f"{folder.parent.name}/{name}" if names.count(name) > 1 else name for folder, name in zip(folders, names)]


def _step_match(run: dict):
    """How the run's task compares a predicted step with a gold one (as `scoring.summarize` does); exact if unknown."""
    from engine.scoring.answers import answers_match
    from engine.tasks.spec import load_spec

    try:
        spec, _ = load_spec(run["settings"].get("task") or run["summary"].get("task") or "")
    except EngineError:
        return lambda pred, gold: pred == gold
    kind = "free-text" if spec.answer_type in ("nli", "sudoku") else spec.answer_type  # as scoring._match_type
    return lambda pred, gold: answers_match(pred, gold, kind)


def status(record: dict) -> str:
    """correct, unparsed (no answer found: never correct) or wrong (an answer, not the gold one)."""
    if record.get("unparsed") or record.get("answer") is None:
        return "unparsed"
    return "correct" if record.get("correct") else "wrong"


def first_wrong(record: dict, match=None) -> int | None:
    """0-based index of the first predicted step that misses its gold step; None when all are right or unknown."""
    from engine.scoring.metrics import first_wrong_step

    gold, pred = record.get("gold_steps"), record.get("pred_steps")
    if not gold or pred is None:
        return None
    return first_wrong_step([None if p is None else str(p) for p in pred], [str(g) for g in gold], match)


def item_data(record: dict, run: int, depth, match=None) -> dict:
    """One samples.jsonl record as the page shows it."""
    steps = [{key: step.get(key) for key in STEP_FIELDS if key in step} for step in record.get("steps") or []]
    item = {
        "run": run, "id": str(record.get("id")), "question": record.get("question"), "gold": record.get("gold"),
        "answer": record.get("answer"), "status": status(record), "error": record.get("error"), "depth": depth,
        "extractions": record.get("extractions") or {}, "steps": steps,
        "prompt_tokens": sum(step.get("prompt_tokens") or 0 for step in steps),
        "completion_tokens": sum(step.get("completion_tokens") or 0 for step in steps),
        "has_steps": bool(record.get("gold_steps")) and record.get("pred_steps") is not None,
        "first_wrong": first_wrong(record, match),
    }
    for key in ("gold_steps", "pred_steps", "samples", "samples_correct"):
        if key in record:
            item[key] = record[key]
    return item


def k_curves(records: list[dict], match) -> dict | None:
    """pass@k and maj@k for every k from 1 to the samples per item, from the items' own samples; None without."""
    from engine.scoring.metrics import maj_at_k, pass_at_k

    sampled = [r for r in records if r.get("samples") and r.get("samples_correct")]
    if not sampled or len(sampled) < len(records):
        return None
    top = min(len(r["samples"]) for r in sampled)
    if top < 2:
        return None
    ks = list(range(1, top + 1))
    passed = [sum(pass_at_k(len(r["samples_correct"]), sum(map(bool, r["samples_correct"])), k) for r in sampled)
              / len(sampled) for k in ks]
    golds = [r.get("gold") for r in sampled]
    majority = None
    if all(isinstance(g, str) for g in golds):  # a verifier-scored task (sudoku) has no gold to vote towards
        majority = [maj_at_k([r["samples"] for r in sampled], golds, k, match) for k in ks]
    return {"k": ks, "pass": passed, "maj": majority}


def paired_comparisons(runs: list[dict], items: list[dict]) -> list[dict]:
    """Each two runs of the same task that share items: `stats.compare_runs` on the shared items, and the flips.

    The shared items and verdicts are taken as `compare.compare_paired` takes them from the files (the last
    record of an id counts; A's order), so the numbers are those `python -m engine compare A B` prints.
    """
    from engine.scoring.stats import compare_runs

    where = {(item["run"], item["id"]): index for index, item in enumerate(items)}
    verdicts = [{str(r["id"]): bool(r["correct"]) for r in run["records"]} for run in runs]
    comparisons = []
    for a, b in itertools.combinations(range(len(runs)), 2):
        if runs[a]["summary"].get("task") != runs[b]["summary"].get("task"):
            continue
        shared = [i for i in verdicts[a] if i in verdicts[b]]
        if not shared:
            continue
        if len(comparisons) == MAX_COMPARISONS:
            break
        result = compare_runs([verdicts[a][i] for i in shared], [verdicts[b][i] for i in shared])
        flipped = [{"id": i, "kind": "right_to_wrong" if verdicts[a][i] else "wrong_to_right",
                    "a": where[(a, i)], "b": where[(b, i)]}
                   for i in shared if verdicts[a][i] != verdicts[b][i]]
        result.update(a=a, b=b, shared=len(shared), only_a=len(verdicts[a]) - len(shared),
                      only_b=len(verdicts[b]) - len(shared), flipped=flipped)
        comparisons.append(result)
    return comparisons


def clean(value):
    """JSON-safe copy: NaN and infinities (which JSON.parse refuses) become None, odd objects become strings."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
