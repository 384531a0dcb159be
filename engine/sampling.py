"""Sampling settings: one flat object every backend translates from.

Users write these (in task files, on the command line), so unknown keys are rejected and every bad value is
named in the error.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SamplingSettings(BaseModel):
    """How to sample one request's completions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = 256
    """Most new tokens per completion; generation stops earlier at EOS or a stop string."""

    temperature: float = 0.0
    """0 means greedy decoding (the same text every time); above 0 samples."""

    top_p: float = 1.0
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p."""

    n: int = 1
    """Completions per prompt. Backends produce them from one prompt (shared prefix), not n copies."""

    stop: tuple[str, ...] = Field(default_factory=tuple)
    """Strings that end a completion; the stop string itself is not part of the returned text."""

    seed: int | None = None
    """Seed for sampling, so that a sampled run can be repeated."""

    @field_validator("max_tokens")
    @classmethod
    def _max_tokens_positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"max_tokens must be at least 1, got {value}")
        return value

    @field_validator("n")
    @classmethod
    def _n_positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"n must be at least 1, got {value}")
        return value

    @field_validator("temperature")
    @classmethod
    def _temperature_non_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"temperature must be 0 (greedy) or more, got {value}")
        return value

    @field_validator("top_p")
    @classmethod
    def _top_p_in_range(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {value}")
        return value

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value):
        if isinstance(value, str):
            value = (value,)
        value = tuple(value or ())
        if any(not s for s in value):
            raise ValueError("stop strings must not be empty")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0
