"""A backend that replays scripted completions and records every call, for testing chain logic.

`ScriptedBackend(["step 1 ...", "42"])` answers requests in order from the script; a callable script
`ScriptedBackend(lambda request: "42")` answers from the prompt. It is never the only test of a feature: real
backends have their own tests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from engine.backends.formatting import cut_at_stop
from engine.errors import EngineError
from engine.generation import Completion, GenerationRequest, GenerationResult


class ScriptedBackend:
    """A test double that replays canned completions in order and records every request it was asked."""

    name = "scripted"
    model = "scripted"

    def __init__(self, script: list[str] | Callable[[GenerationRequest], str | list[str]], identity: str | None = None):
        """`identity`: a name for what the script answers, which lets the step cache store its results (a
        scripted backend without one is never cached: two scripts must never answer for each other)."""
        self.identity = identity
        self._queue = deque(script) if not callable(script) else None
        self._answer = script if callable(script) else None
        self.calls: list[list[GenerationRequest]] = []

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        return [self._result(r) for r in requests]

    def _result(self, request: GenerationRequest) -> GenerationResult:
        texts = []
        for _ in range(request.sampling.n):
            if self._answer is not None:
                answer = self._answer(request)
                texts.extend([answer] if isinstance(answer, str) else answer)
            elif self._queue:
                texts.append(self._queue.popleft())
            else:
                raise EngineError("the scripted backend ran out of completions: add more to its script")
        texts = texts[: request.sampling.n]
        prompt = request.prompt if request.prompt is not None else "\n".join(c for _, c in request.messages)
        prompt += request.continuation or ""
        completions = []
        for text in texts:  # stop strings apply as on a real backend, so tool loops can be tested here
            text, stop_string = cut_at_stop(text, request.sampling.stop)
            completions.append(Completion(text=text, completion_tokens=len(text.split()), finish_reason="stop",
                                          stop_string=stop_string))
        completions = tuple(completions)
        return GenerationResult(request.key, prompt, len(prompt.split()), completions)


class ScriptedEngine(ScriptedBackend):
    """A scripted backend that generates continuously, as vLLM's engine loop does, for scheduler tests.

    Each `poll` is one decoding step for every request in flight (at most `max_batch`); a request finishes
    after as many steps as its longest completion has tokens (words here), or as `cost(request)` says. `steps`
    counts the polls, so a test can compare how long a chain keeps the engine busy under each scheduler.
    """

    def __init__(self, script, identity: str | None = None, max_batch: int = 256, cost=None):
        super().__init__(script, identity)
        self.max_batch = max_batch
        self.cost = cost
        self.in_flight: list[list] = []
        self.steps = 0

    def submit(self, request: GenerationRequest, tag) -> None:
        self.calls.append([request])
        result = self._result(request)
        steps = self.cost(request) if self.cost else max([c.completion_tokens for c in result.completions] + [1])
        self.in_flight.append([tag, result, steps])

    def poll(self) -> list[tuple[object, GenerationResult]]:
        self.steps += 1
        for entry in self.in_flight[: self.max_batch]:
            entry[2] -= 1
        done = [(tag, result) for tag, result, left in self.in_flight if left <= 0]
        self.in_flight = [entry for entry in self.in_flight if entry[2] > 0]
        return done

    def busy(self) -> bool:
        return bool(self.in_flight)
