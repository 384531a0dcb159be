"""Runs chains across a whole dataset with one backend call per wave.

Every chain node is a generator that yields the list of generation requests it needs next and receives
their results. `gather` drives many such generators in lockstep: it concatenates what each yields into one
list and hands every generator back its own slice of the results. The dataset-level scheduler is `gather`
over every example's chain, plus a loop that makes one backend call per yield (one wave). Chains of
data-dependent length (decompositions into k sub-questions, loops) batch the same way: each wave carries
whatever is pending.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field

from engine.generation import GenerationRequest, GenerationResult

Program = Generator[list[GenerationRequest], list[GenerationResult], object]


@dataclass
class StepRecord:
    """What one step did for one example: the exact prompt, the raw outputs and the parsed value."""

    step: str
    kind: str  # "model", "program", "calculator", "compute"
    prompt: str | None = None
    outputs: list[str] = field(default_factory=list)
    parsed: object = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    request_key: str | None = None
    error: str | None = None
    branch: int | None = None
    tool_calls: list[dict] = field(default_factory=list)
    """Calculations a calculator step made inside this step ({"expression", "value"})."""


@dataclass
class ExampleRun:
    """One example's state while its chain runs, and the record of every step."""

    state: dict
    records: list[StepRecord] = field(default_factory=list)
    seed_offset: int = 0
    branch: int | None = None
    error: str | None = None

    def fork(self, branch: int) -> "ExampleRun":
        """A copy for a parallel branch (a vote sample); its records go to the parent's list, labelled."""
        return ExampleRun(dict(self.state), self.records, self.seed_offset + branch, branch)


def gather(programs: list[Program], on_error: Callable[[int, BaseException], None] | None = None) -> Program:
    """Drive `programs` in lockstep; returns their return values in order.

    With `on_error`, an exception in one program is handed to it and that program stops while the others go
    on (one bad example must not sink a run of 1,000); without it, the exception propagates.
    """
    values: list[object] = [None] * len(programs)
    pending: dict[int, list[GenerationRequest]] = {}

    def advance(index: int, send_value) -> None:
        try:
            pending[index] = programs[index].send(send_value)
        except StopIteration as stop:
            values[index] = stop.value
            pending.pop(index, None)
        except Exception as exc:  # noqa: BLE001 - routed to the caller's handler
            pending.pop(index, None)
            if on_error is None:
                raise
            on_error(index, exc)

    for index in range(len(programs)):
        advance(index, None)
    while pending:
        order = list(pending)
        batch = [request for index in order for request in pending[index]]
        results = yield batch
        offset = 0
        for index in order:
            count = len(pending[index])
            advance(index, results[offset : offset + count])
            offset += count
    return values


def drive(program: Program, backend, on_wave: Callable[[int, int, float], None] | None = None) -> object:
    """Run `program` to the end, making exactly one backend call per wave; returns its value."""
    wave = 0
    try:
        requests = next(program)
    except StopIteration as stop:
        return stop.value
    while True:
        start = time.perf_counter()
        results = backend.generate(requests) if requests else []
        seconds = time.perf_counter() - start
        wave += 1
        try:
            requests = program.send(results)
        except StopIteration as stop:
            return stop.value
        finally:  # after the results reached the chains, so the items they finished are counted
            if on_wave:
                on_wave(wave, len(results), seconds)


def run_all(chain, runs: Iterable[ExampleRun], backend, on_wave=None, on_done: Callable[[ExampleRun], None] | None = None) -> list[ExampleRun]:
    """Run `chain` for every example run, batching across the dataset; `on_done` sees each as it finishes."""
    runs = list(runs)

    def one(run: ExampleRun) -> Program:
        yield from chain.run(run)
        if on_done:
            on_done(run)
        return run

    def failed(index: int, exc: BaseException) -> None:
        runs[index].error = f"{type(exc).__name__}: {exc}"
        if on_done:
            on_done(runs[index])

    drive(gather([one(r) for r in runs], on_error=failed), backend, on_wave)
    return runs
