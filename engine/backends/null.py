"""The null backend: a model that writes nothing. Every request gets `n` empty completions.

What a chain scores on it is its floor: how much its own code and the answer parser carry with no model at all
(a chain that lays out the next prompt from what the model wrote, and a parser that defaults to some answer,
may still be right on a share of the items). An honest chain's floor sits at the task's chance rate or below;
`eval --backend null` measures it and `eval --floor` records it beside a model's accuracy.

It loads no weights and resolves no model, so it starts at once on any machine. Its results never enter the
step cache (it has no identity, and an empty answer is not worth storing). It counts no prompt tokens: that
would need a model's tokenizer, and what a floor run spends is not the point of it.
"""

from __future__ import annotations

from engine.backends.formatting import labelled_prompt
from engine.generation import Completion, GenerationRequest, GenerationResult


class NullBackend:
    """A backend whose every completion is empty ("stop", 0 tokens): a chain's floor without a model."""

    name = "null"
    model = "null"
    served_model = "null"
    """What the run's summary names as its model."""
    cacheable = False
    """Nothing to store in the step cache (`engine.runs.step_cache.model_identity`)."""
    dtype = None

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return [GenerationResult(request.key, labelled_prompt(request), 0,
                                 tuple(Completion(text="", completion_tokens=0, finish_reason="stop")
                                       for _ in range(request.sampling.n)))
                for request in requests]
