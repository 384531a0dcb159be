"""A run's floor: the same chain on the same items with a model that writes nothing (`--backend null`).

A chain's own code may lay out prompts from what the model wrote and a parser may settle on some answer; what
those carry with no model at all is the floor, and an accuracy credited to a chain means little without it.
`eval --floor` runs the plan a second time on the null backend (no model, so it costs next to nothing) into the
run folder's `floor/` (a run folder of its own, which `verify` checks too) and records its headline figures in
`summary.json` as `floor`; a run on the null backend is its own floor. The task's chance rate (`chance:` in its
task file) stands beside it where the task states one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

FLOOR_FOLDER = "floor"
FIGURES = ("accuracy", "ci95", "unparsed_rate", "n", "correct")
"""What `summary.json`'s `floor` holds of the floor run's summary (and `folder`, where it lies)."""


def run_floor(plan, out: Path) -> dict | None:
    """The floor of the run `plan` is about to make into `out` (run first: it is instant and loads nothing); None
    when the run did not ask for one, or is on the null backend already (then it is its own floor)."""
    from engine.backends.names import NULL
    from engine.runs.evaluate import run_eval

    settings = plan.settings
    if not settings.floor or settings.backend == NULL:
        return None
    floor = settings.model_copy(update={
        "backend": NULL, "model": None, "dtype": "auto", "floor": False, "out": str(out / FLOOR_FOLDER),
        "base_url": None, "ray": None, "scheduler": "auto", "no_cache": True, "cache": None})
    summary = run_eval(replace(plan, settings=floor), progress=False)  # the same items and chain
    return figures(summary, FLOOR_FOLDER)


def figures(summary: dict, folder: str | None) -> dict:
    """A summary's headline figures as a `floor` entry; `folder` None for a null run that is its own floor."""
    return {**{key: summary[key] for key in FIGURES}, "folder": folder}


def floor_problems(folder: Path, summary: dict) -> tuple[list[str], int]:
    """`verify` for a run's `floor`: its folder verifies, and the figures recorded are that folder's summary's
    (a null run's own figures, for a run that is its own floor). Returns the problems and the records checked."""
    from engine.runs.verify import verify_run

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
