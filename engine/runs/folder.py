"""The run folder: which settings it holds, what a killed run finished, and the sink that streams each item.

A run folder holds `run.json` (the settings it was started with), `samples.jsonl` (one line per finished item,
flushed as each finishes) and, once every item is scored, `summary.json`. Rerunning the same settings into it
resumes a killed run, or returns a finished one's summary without generating anything; other settings are
refused, so two runs never mix in one folder.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from engine.errors import EngineError
from engine.files import repair_records, write_atomic

RUN_FILE = "run.json"
"""The settings a run folder was started with: a rerun with the same settings resumes it, others are refused."""

NOT_IN_RUN_FILE = {"out", "cache", "no_cache", "scheduler", "base_url", "concurrency", "ray", "ray_workers",
                   "kv_cache_mb"}
"""Settings that do not change a run's results, so a resume may change them (a restarted server on another
port, more Ray workers, another KV-cache size)."""


def claim_run_folder(settings, spec_name: str, strategy: str) -> Path:
    """The run folder: `--out` (created if new), or a new `runs/TASK-STRATEGY-TIME[-N]`."""
    if settings.out:
        out = Path(settings.out)
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


def changed_settings(out: Path, settings) -> list[str] | None:
    """The settings that differ from the ones the folder's run was started with; None when it names none."""
    run_file = out / RUN_FILE
    if not run_file.exists():
        return None
    mine = settings.model_dump(exclude=NOT_IN_RUN_FILE)
    theirs = json.loads(run_file.read_text(encoding="utf-8"))
    return sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))


def finished_summary(out: Path, settings) -> dict | None:
    """The summary of the run this folder finished with these same settings; None while it holds no finished
    run. A finished run of other (or unknown) settings is refused: a retry after success must not fail, and a
    different run must not overwrite it."""
    summary = out / "summary.json"
    if not summary.exists():
        return None
    changed = changed_settings(out, settings)
    if changed is None:
        raise EngineError(f"{out} already holds a finished run of unknown settings (no {RUN_FILE}): check it with "
                          f"`python -m engine verify {out}`, or pass another --out folder")
    if changed:
        raise EngineError(f"{out} already holds a finished run with other settings ({', '.join(changed)} differ): "
                          f"check it with `python -m engine verify {out}`, or pass another --out folder")
    return json.loads(summary.read_text(encoding="utf-8"))


def resume_records(out: Path, settings) -> list[dict]:
    """Items a killed run of the same settings finished (a half-written last line is cut off); [] for a new run."""
    samples = out / "samples.jsonl"
    changed = changed_settings(out, settings)
    if changed:
        raise EngineError(f"{out} holds an unfinished run with other settings ({', '.join(changed)} differ): "
                          "rerun with that run's settings to finish it, or pass another --out folder")
    if changed is None:
        if samples.exists():
            raise EngineError(f"{out} holds samples.jsonl from an unknown run: pass another --out folder")
        write_atomic(out / RUN_FILE, json.dumps(settings.model_dump(exclude=NOT_IN_RUN_FILE), indent=2))
    if not samples.exists():
        return []
    records, _ = repair_records(samples)
    unique = {}
    for record in records:
        unique.setdefault(record["id"], record)
    return list(unique.values())


@contextmanager
def record_sink(out: Path, bar):
    """A function that appends one finished item to samples.jsonl at once (flushed) and counts it."""
    with open(out / "samples.jsonl", "a", encoding="utf-8") as sink:

        def finished(record: dict) -> None:
            sink.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            sink.flush()
            bar.item_done(record["correct"])

        yield finished
