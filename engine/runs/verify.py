"""`python -m engine verify RUN`: does the run's summary follow from its records, and are all its items there?

The summary is a claim about samples.jsonl. Verification rebuilds everything it can from the run's own
settings (run.json) and records: the item list (every item exactly once, none foreign), each item's score
(re-scored from its recorded answer against the gold), and every figure of the summary that comes from the
records (accuracy, interval, unparsed, errors, tokens, maj@k, per-step, per-class); a run's `floor` folder is
verified the same way and must give the floor figures recorded. Any difference is listed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from engine.errors import EngineError
from engine.runs.floor import FIGURES, figures


def verify_run(folder: str | Path) -> tuple[list[str], int]:
    """The problems found (empty when the run checks out) and the number of items checked."""
    from engine.runs.folder import RUN_FILE
    from engine.runs.plan import EvalSettings, prepare
    from engine.files import read_records
    from engine.scoring.parsers import is_correct
    from engine.scoring.records import summarize

    folder = Path(folder)
    for name in ("summary.json", "samples.jsonl", RUN_FILE):
        if not (folder / name).exists():
            raise EngineError(f"{folder} has no {name}: pass a finished run folder written by `python -m engine eval`")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    settings = EvalSettings(**json.loads((folder / RUN_FILE).read_text(encoding="utf-8")))
    plan = prepare(settings)
    spec, examples = plan.spec, plan.examples
    samples = folder / "samples.jsonl"
    records, complete = read_records(samples)
    problems = []
    if complete < samples.stat().st_size:
        problems.append("samples.jsonl ends with a half-written line (the run was killed mid-write)")
    by_id = {example.id: example for example in examples}
    seen: dict[str, int] = {}
    for record in records:
        seen[record["id"]] = seen.get(record["id"], 0) + 1
    problems += [f"item {i} appears {count} times" for i, count in seen.items() if count > 1]
    problems += [f"item {i} is not an item of this run's task and settings" for i in seen if i not in by_id]
    missing = [i for i in by_id if i not in seen]
    if missing:
        problems.append(f"{len(missing)} items have no record (first: {missing[0]})")
    for record in records:
        example = by_id.get(record["id"])
        if example is not None and bool(record["correct"]) != is_correct(record["answer"], example, spec.answer_type):
            problems.append(f"item {record['id']}: recorded correct={record['correct']}, but answer "
                            f"{record['answer']!r} against gold {example.gold!r} scores otherwise")
    recomputed = summarize(records, spec)
    for key, value in recomputed.items():
        if key not in summary:
            problems.append(f"summary.json lacks {key} (recomputed: {_short(value)})")
        elif not _same(summary[key], value):
            problems.append(f"summary.json says {key} = {_short(summary[key])}, the records give {_short(value)}")
    more, _ = floor_problems(folder, summary)
    return problems + more, len(records)


def _same(a, b) -> bool:
    """Equal after a JSON round trip (tuples become lists), floats to 1e-9."""
    a, b = json.loads(json.dumps(a)), json.loads(json.dumps(b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def floor_problems(folder: Path, summary: dict) -> tuple[list[str], int]:
    """`verify` for a run's `floor`: its folder verifies, and the figures recorded are that folder's summary's
    (a null run's own figures, for a run that is its own floor). Returns the problems and the records checked."""
    floor = summary.get("floor")
    if floor is None:
        return [], 0
    if floor.get("folder") is None:
        own = figures(summary, None)
        return [f"floor: summary.json says {key} = {floor.get(key)}, the run's own figures give {own[key]}"
                for key in FIGURES if floor.get(key) != own[key]], 0
    where = folder / floor["folder"]
    if not (where / "summary.json").is_file():
        return [f"floor: {where} has no summary.json: rerun the same eval to finish its floor"], 0
    problems, checked = verify_run(where)
    recorded = json.loads((where / "summary.json").read_text(encoding="utf-8"))
    problems = [f"floor: {problem}" for problem in problems]
    problems += [f"floor: summary.json says {key} = {floor.get(key)}, {where}/summary.json gives {recorded.get(key)}"
                 for key in FIGURES if json.dumps(floor.get(key)) != json.dumps(recorded.get(key))]
    return problems, checked
