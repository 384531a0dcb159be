"""The built-in strategies, each a chain of a few lines over the templates in `prompts/`.

Every chain ends with state["answer"] (parsed by the task's main parser) and state["answer_text"] (the raw
text the extractors read; a list under self-consistency).
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.chains.calc_step import CalcStep
from engine.chains.nodes import Compute, Decompose, Program, Sequence, Step, Vote
from engine.errors import EngineError
from engine.scoring.parsers import PARSERS
from engine.sampling import SamplingSettings
from engine.chains.stepwise import build_stepwise
from engine.tasks.spec import STRATEGIES, TaskSpec

ANSWER_HINTS = {
    "number": "a number",
    "choice": "the letter of the correct option, like (A)",
    "yes-no": "Yes or No",
    "bool": "True or False",
    "free-text": "the answer itself",
    "nli": "entailment, contradiction or neutral",
    "sudoku": "the completed grid, 4 lines of 4 digits",
}
_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def parse_sub_questions(text: str) -> list[str]:
    """One sub-question per line, numbering and bullets removed; lines that ask nothing are dropped.

    >>> parse_sub_questions("1. What is 4 + 3?\\n2. What is 7 * 2?\\nDone.")
    ['What is 4 + 3?', 'What is 7 * 2?']
    """
    lines = (_NUMBERED.sub("", line).strip() for line in (text or "").splitlines())
    return [line for line in lines if line.endswith("?")]


def short_answer(text: str) -> str:
    """What a solved sub-question shows the next one: "the answer is X", else the last line (capped)."""
    from engine.scoring.answers import extract_free_text

    return (extract_free_text(text) or "")[:200]


def build_chain(strategy: str, spec: TaskSpec, samples: int = 1, temperature: float = 0.7,
                max_tokens: int | None = None, program_timeout: float = 5.0):
    """The chain for `strategy` on task `spec`; `samples > 1` wraps it in self-consistency voting."""
    if strategy not in STRATEGIES:
        raise EngineError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if samples < 1:
        raise EngineError(f"--samples must be at least 1, got {samples}")
    if strategy == "sc":
        strategy, samples = "cot", max(samples, 5) if samples == 1 else samples
    parse = PARSERS[spec.parser]

    def tokens(default: int) -> int:
        return max_tokens or default

    if strategy == "direct":
        chain = Step("answer", "direct/answer.jinja", SamplingSettings(max_tokens=tokens(48)), parse)
    elif strategy == "cot":
        chain = Step("answer", "cot/reason.jinja", SamplingSettings(max_tokens=tokens(384)), parse)
    elif strategy == "fewshot-cot":
        if spec.exemplars is None:
            raise EngineError(f"task {spec.name} has no exemplars for fewshot-cot: add an exemplars entry or pick cot")
        chain = Step("answer", "fewshot-cot/reason.jinja",
                     SamplingSettings(max_tokens=tokens(384), stop=("\nQ:",)), parse)
    elif strategy == "decompose":
        chain = Sequence(
            Decompose(
                plan=Step("plan", "decompose/plan.jinja", SamplingSettings(max_tokens=tokens(160)), parse_sub_questions),
                solve=Step("solve", "decompose/solve.jinja", SamplingSettings(max_tokens=tokens(128)), short_answer),
                output="last_answer",
            ),
            Compute("answer", lambda state: parse(state.get("solve_text")), reads={"last_answer"}, text_from="solve_text"),
        )
    elif strategy == "calc":
        chain = CalcStep("answer", "calc/solve.jinja", SamplingSettings(max_tokens=tokens(384)), parse)
    elif strategy == "stepwise":
        chain = build_stepwise(parse, max_tokens)
    else:  # pal
        chain = Sequence(
            Step("program", "pal/program.jinja", SamplingSettings(max_tokens=tokens(320))),
            Program("run", code_from="program", output="result", timeout_s=program_timeout),
            Compute("answer", lambda state: parse(state["result_text"]), reads={"result"}, text_from="result_text"),
        )
    if samples > 1:
        chain = Vote(chain, samples, temperature=temperature, output="answer")
    return chain


def select_chain(spec: TaskSpec, strategy: str | None = None, chain: str | None = None, samples: int = 1,
                 temperature: float = 0.7, max_tokens: int | None = None, program_timeout: float = 5.0,
                 base: Path | None = None):
    """(label, chain) for a run: a strategy the task lists (built-in, or one of its own chains), or a custom
    chain file (`FILE.py:NAME`).

    The task file's `strategies:` list says which built-in strategies suit the task (fewshot-cot needs
    exemplars, pal a task whose answer a program can compute); another is refused with the list. It may also list
    chains of the task's own as `FILE.py:NAME`, run by NAME; `base` is the task file's folder, where their files
    are looked for first. A `--chain` is the author's own choice and is not limited by that list.
    """
    if chain is not None:
        if strategy is not None:
            raise EngineError(f"pass --strategy or --chain, not both (got --strategy {strategy} and --chain {chain})")
        from engine.chains.custom import chain_label, load_chain

        node = load_chain(chain, spec)
        if samples > 1:
            node = Vote(node, samples, temperature=temperature, output="answer")
        return chain_label(chain), node
    strategy = strategy or spec.default_strategy
    own = spec.own_chains()
    strategy = next((name for name, entry in own.items() if entry == strategy), strategy)  # the entry as listed
    if strategy in own:
        from engine.chains.custom import load_task_chain
        from engine.tasks import user_code

        node = load_task_chain(own[strategy], spec, ([base] if base else []) + [user_code.PROJECT_ROOT])
        if samples > 1:
            node = Vote(node, samples, temperature=temperature, output="answer")
        return strategy, node
    if strategy not in STRATEGIES:
        mine = f", or one of task {spec.name}'s own chains: {', '.join(own)}" if own else ""
        raise EngineError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}{mine}")
    if strategy not in spec.strategies:
        raise EngineError(f"task {spec.name} lists the strategies {', '.join(spec.strategy_names())}, not {strategy}: "
                          f"pick one of those, or add {strategy} to the task file's strategies: list")
    return strategy, build_chain(strategy, spec, samples, temperature, max_tokens, program_timeout)


def check_wiring(chain, available: set[str], label: str) -> set[str]:
    """Every step reads only what the item or an earlier step provides, and the chain writes `answer`."""
    produced = chain.check(set(available))
    if "answer" not in produced:
        raise EngineError(f"chain {label} never writes 'answer', which scoring reads: name its last step "
                          "\"answer\" (or give it output=\"answer\")")
    return produced


def initial_state(example, spec: TaskSpec, exemplars: list[dict]) -> dict:
    """What templates can read for one example: its fields, then the task-wide values (which win)."""
    return {
        **example.fields,
        "question": example.question,
        "instruction": spec.instruction,
        "answer_hint": spec.answer_hint or ANSWER_HINTS[spec.answer_type],
        "exemplars": exemplars,
    }


STATE_KEYS = {"question", "instruction", "answer_hint", "exemplars"}
"""What every chain may read besides the item's own fields. Self-taught rounds add `hint` (the gold answer shown
to items the model could not solve, STaR's rationalization, then trained without it); the built-in templates
read it only where it is defined, so no other chain has to provide it."""
