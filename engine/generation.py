"""The one request type and one result type that every backend speaks.

A request carries either a plain prompt or chat messages, plus sampling settings. Its `key` is a stable hash
of everything that determines the output, so a durable cache or a resumed run can recognise work it already
did.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from engine.errors import EngineError
from engine.sampling import SamplingSettings

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt (text or chat messages) and how to sample from it."""

    prompt: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    step: str | None = field(default=None, compare=False)
    """Name of the chain step that asked (for records and tools); not part of the key: the model never sees it."""
    continuation: str | None = None
    """Text the model already wrote in its answer (a calculator may have added to it): the prompt the model
    sees ends with it, after the chat template's assistant opening, and generation carries on from there."""

    def __post_init__(self):
        if (self.prompt is None) == (self.messages is None):
            raise EngineError("a request needs exactly one of prompt or messages")
        if self.prompt is not None and not self.prompt.strip():
            raise EngineError("the prompt is empty: give some text for the model to continue")
        if self.messages is not None:
            if not self.messages:
                raise EngineError("the chat has no messages: give at least one user message")
            for role, content in self.messages:
                if role not in ROLES:
                    raise EngineError(f"unknown chat role {role!r}: use one of {', '.join(ROLES)}")
            if not any(content.strip() for _, content in self.messages):
                raise EngineError("every chat message is empty: give the model something to answer")

    @classmethod
    def chat(cls, messages, sampling: SamplingSettings | None = None) -> "GenerationRequest":
        """Build from `[{"role": ..., "content": ...}]` or `[(role, content)]`."""
        pairs = tuple(
            (m["role"], m["content"]) if isinstance(m, dict) else (m[0], m[1]) for m in messages
        )
        return cls(messages=pairs, sampling=sampling or SamplingSettings())

    @property
    def key(self) -> str:
        """Stable identity of this request: same prompt and settings, same key, on any machine."""
        payload = {
            "prompt": self.prompt,
            "messages": [list(m) for m in self.messages] if self.messages is not None else None,
            "sampling": self.sampling.model_dump(mode="json"),
        }
        if self.continuation:
            payload["continuation"] = self.continuation
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:24]

    def messages_as_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages or ()]


@dataclass(frozen=True)
class Completion:
    """One sampled continuation."""

    text: str
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length" (hit max_tokens)
    stop_string: str | None = None
    """The stop string that ended this completion (not part of `text`); None at EOS or the token limit."""


@dataclass(frozen=True)
class GenerationResult:
    """The n completions of one request, with the exact prompt the model saw."""

    request_key: str
    prompt_text: str
    prompt_tokens: int
    completions: tuple[Completion, ...]
    seconds: float = 0.0
    cached_prompt_tokens: int = 0
    """Prompt tokens the backend did not compute because its prefix cache held them (vLLM reports these)."""
    cached: bool = False
    """Answered from the step cache (its `seconds` are those of the run that generated it)."""
    error: str | None = None
    """Why this one request could not be generated (say, a prompt longer than the model's context); it then has
    no completions, and the chain step that asked fails that item alone."""

    @property
    def text(self) -> str:
        """The first completion's text (the only one when n == 1)."""
        return self.completions[0].text

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.completions)
