"""The chain over a run's items on one backend, each item scored the moment it finishes.

This is the loop without a run folder, so a local run (which streams records to samples.jsonl) and a Ray
worker (which sends them home) share it.
"""

from __future__ import annotations

import time

from engine.chains.scheduler import ExampleRun, run_all
from engine.chains.strategies import initial_state
from engine.scoring.records import score_example


def run_examples(plan, examples, backend, scheduler: str = "waves", on_record=None, on_wave=None):
    """Run the plan's chain over `examples` (some or all of the plan's items) on `backend`, scoring each item as
    it finishes.

    `on_record(record)` sees each scored item the moment it is done (a run folder streams it to disk; a Ray
    worker sends it home). Returns the scored records, the backend-call counts and the wall time.
    """
    chain, spec = plan.chain, plan.spec
    by_run: dict[int, object] = {}
    runs = []
    for example in examples:
        run = ExampleRun(initial_state(example, spec, plan.exemplars))
        by_run[id(run)] = example
        runs.append(run)
    scored: list[dict] = []
    waves = {"count": 0, "requests": 0}
    start = time.perf_counter()

    def finished(run: ExampleRun) -> None:
        record = score_example(by_run[id(run)], run, spec)
        scored.append(record)
        if on_record:
            on_record(record)

    def wave(number: int, requests: int, seconds: float) -> None:
        waves["count"] = number
        waves["requests"] += requests
        if on_wave:
            on_wave(number, requests, seconds)

    def polled(completed: int, waiting: int) -> None:
        waves["requests"] += completed

    if runs and scheduler == "continuous":
        from engine.chains.continuous import run_continuous

        run_continuous(chain, runs, backend, on_done=finished, on_poll=polled)
    elif runs:
        run_all(chain, runs, backend, on_wave=wave, on_done=finished)
    return scored, waves, time.perf_counter() - start
