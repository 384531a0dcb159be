"""A run's floor: the same chain on the same items with a model that writes nothing (`--backend null`).

A chain's own code may lay out prompts from what the model wrote and a parser may settle on some answer; what
those carry with no model at all is the floor, and an accuracy credited to a chain means little without it.
`eval --floor` runs the plan a second time on the null backend (no model, so it costs next to nothing) into the
run folder's `floor/` (a run folder of its own, which `verify` checks too) and records its headline figures in
`summary.json` as `floor`; a run on the null backend is its own floor. The task's chance rate (`chance:` in its
task file) stands beside it where the task states one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

FLOOR_FOLDER = "floor"
FIGURES = ("accuracy", "ci95", "unparsed_rate", "n", "correct")
"""What `summary.json`'s `floor` holds of the floor run's summary (and `folder`, where it lies)."""


def floor_plan(plan, out: Path):
    """The plan of the floor of the run `plan` is about to make into `out`: the same items and chain on the null
    backend, into `out/floor/`; None when the run did not ask for one, or is on the null backend already (then
    it is its own floor)."""
    from engine.backends.names import NULL

    settings = plan.settings
    if not settings.floor or settings.backend == NULL:
        return None
    floor = settings.model_copy(update={
        "backend": NULL, "model": None, "dtype": "auto", "floor": False, "out": str(out / FLOOR_FOLDER),
        "base_url": None, "ray": None, "scheduler": "auto", "no_cache": True, "cache": None, "kv_cache_mb": None})
    return replace(plan, settings=floor)


def figures(summary: dict, folder: str | None) -> dict:
    """A summary's headline figures as a `floor` entry; `folder` None for a null run that is its own floor."""
    return {**{key: summary[key] for key in FIGURES}, "folder": folder}
