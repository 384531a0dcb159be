"""One evaluation item: a question, its gold answer and, when known, its gold intermediate steps."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """One item a chain runs on: question, gold answer, extra fields, and gold steps where known."""

    id: str
    """Stable identifier within its task (for example "gsm8k-test-17" or "arith-d3-s0-5")."""

    question: str
    """The text the model is asked about, as templates receive it in `question`."""

    gold: str
    """The gold answer in canonical text form ("18", "(B)", "yes", "True", "cab")."""

    fields: dict = field(default_factory=dict)
    """Extra values templates may read (choices, premise and hypothesis, the puzzle grid...)."""

    gold_steps: tuple[str, ...] | None = None
    """Gold intermediate results in order, for tasks whose depth we control; None when unknown."""

    sub_questions: tuple[str, ...] | None = None
    """Gold decomposition into sub-questions, one per gold step, when the generator knows it."""
