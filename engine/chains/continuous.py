"""Continuous chain scheduling: each example's next step enters the engine the moment its last step finished.

Waves (`scheduler.run_all`) make one backend call per chain step across the dataset, so every finished
example waits for the slowest request of the wave: a few long generations run alone at the end of each wave
while the engine could be serving the next steps of everything else. Here each example's chain generator is
driven on its own: its requests are submitted to a backend that generates continuously (vLLM's engine loop),
and as soon as the last of them completes the generator is advanced and its next requests are submitted.

The chain code is the same: a chain is a generator of request lists whichever scheduler drives it. A backend
that can do this has `submit(request, tag)` and `poll() -> [(tag, result)]` (see `VLLMBackend`); the `hf`
backend cannot and keeps waves.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.errors import EngineError
from engine.chains.scheduler import ExampleRun, example_program


def supports_continuous(backend) -> bool:
    return all(callable(getattr(backend, name, None)) for name in ("submit", "poll", "busy"))


def run_continuous(chain, runs: list[ExampleRun], backend, on_done: Callable[[ExampleRun], None] | None = None,
                   on_poll: Callable[[int, int], None] | None = None) -> list[ExampleRun]:
    """Run `chain` for every example, submitting each example's next requests as soon as its last ones finish.

    `on_done` sees each example as it finishes; `on_poll(completed, in_flight)` sees each engine step that
    completed requests. Returns the runs (their records and states filled in), as `run_all` does.
    """
    if not supports_continuous(backend):
        raise EngineError(f"the {getattr(backend, 'name', 'given')} backend cannot schedule continuously: "
                          "use --scheduler waves (or the vllm backend)")
    programs = [example_program(chain, run, on_done) for run in runs]
    waiting: dict[int, list] = {}

    def advance(index: int, value) -> None:
        while True:  # a step that asks for nothing is answered at once
            try:
                requests = programs[index].send(value)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - one bad example must not sink the run
                runs[index].error = f"{type(exc).__name__}: {exc}"
                if on_done:
                    on_done(runs[index])
                return
            if requests:
                break
            value = []
        waiting[index] = [None] * len(requests)
        for position, request in enumerate(requests):
            backend.submit(request, (index, position))

    for index in range(len(programs)):
        advance(index, None)
    while waiting:
        completed = backend.poll()
        if not completed and not backend.busy():
            raise RuntimeError(f"the backend has nothing in flight but {len(waiting)} examples wait for results")
        ready = []
        for (index, position), result in completed:
            waiting[index][position] = result
            if all(r is not None for r in waiting[index]):
                ready.append(index)
        for index in ready:
            advance(index, waiting.pop(index))
        if on_poll and completed:
            on_poll(len(completed), len(waiting))
    return runs
