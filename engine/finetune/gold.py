"""Gold outputs for every model step of a strategy: what a perfect model would write, in each step's format.

Training text must equal evaluation text, so gold chains are not written as free text: `traces.py` runs the
strategy's own chain with these functions answering in place of the model, and keeps each step's exact prompt
(chat template applied) with the gold answer. A writer sees the example and the state of the chain at that
step (the sub-question being solved, the instructions left, ...), exactly as the step's template does.

    >>> from engine.synthetic import arithmetic
    >>> item = arithmetic.generate(1, 3, seed=0)[0]
    >>> print(cot_text(item))
    2 / 2 = 1
    1 * 7 = 7
    7 * 3 = 21
    The answer is 21.
    >>> print(calc_text(item))
    <<2/2=1>>
    <<1*7=7>>
    <<7*3=21>>
    The answer is 21.
"""

from __future__ import annotations

import re

from engine.errors import EngineError
from engine.synthetic.arithmetic import _WORDS, apply

GOLD_STRATEGIES = ("direct", "cot", "calc", "decompose", "stepwise")
_THAT = {"+": "What is that plus {x}?", "-": "What is that minus {x}?", "*": "What is that times {x}?",
         "/": "What is that divided by {x}?"}


def answer_line(example) -> str:
    return f"The answer is {example.gold}."


def _calculations(example) -> list[tuple[str, str, str, str]]:
    """(left, op, right, result) of every gold calculation: arithmetic items, or GSM8K's <<a*b=c>> notes."""
    if "ops" in example.fields:
        value, out = example.fields["start"], []
        for op, x in example.fields["ops"]:
            result = apply(value, op, x)
            out.append((str(value), op, str(x), str(result)))
            value = result
        return out
    raise _no_gold(example, "calculations")


def _solution_lines(example) -> list[str]:
    """A worked solution's lines (GSM8K train: "... <<48/2=24>>24 ...", then "#### 72")."""
    solution = example.fields.get("solution")
    if not solution:
        raise _no_gold(example, "worked solution")
    body = solution.rpartition("####")[0]
    return [line.strip() for line in body.strip().splitlines() if line.strip()]


def _no_gold(example, what: str) -> EngineError:
    return EngineError(f"item {example.id} has no gold {what}: --source gold needs a task with gold reasoning "
                       "(the synthetic arithmetic task, or gsm8k's train split); use --source self instead")


def cot_text(example) -> str:
    if "ops" in example.fields:
        lines = [f"{a} {op} {b} = {c}" for a, op, b, c in _calculations(example)]
    elif example.fields.get("solution"):
        lines = [re.sub(r"<<[^>]*>>", "", line) for line in _solution_lines(example)]
    elif example.sub_questions and example.gold_steps:
        lines = [f"{q} {a}" for q, a in zip(example.sub_questions, example.gold_steps)]
    else:
        raise _no_gold(example, "intermediate steps")
    return "\n".join(lines + [answer_line(example)])


def calc_text(example) -> str:
    if "ops" in example.fields:
        lines = [f"<<{a}{op}{b}={c}>>" for a, op, b, c in _calculations(example)]
    elif example.fields.get("solution"):
        # GSM8K's notes are already calculator annotations; their results are written as the calculator writes
        # them ("<<10/3=3.33>>" becomes "<<10/3=3.333333>>"), since at generation the calculator writes them
        lines = [_ANNOTATION.sub(_recalculated, line) for line in _solution_lines(example)]
    else:
        raise _no_gold(example, "calculations")
    return "\n".join(lines + [answer_line(example)])


_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")


def _recalculated(match: re.Match) -> str:
    from engine.sandbox.calculator import calculate

    value = calculate(match.group(1))
    return f"<<{match.group(1)}={value if value is not None else match.group(2)}>>"


def plan_text(example) -> str:
    """Sub-questions that refer back ("What is that times 7?"), so the plan never states a result it has not found."""
    if "ops" in example.fields:
        (first_op, first_x), *rest = example.fields["ops"]
        questions = [f"What is {example.fields['start']} {first_op} {first_x}?"]
        questions += [_THAT[op].format(x=x) for op, x in rest]
    elif example.sub_questions:
        questions = list(example.sub_questions)
    else:
        raise _no_gold(example, "decomposition")
    return "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1))


def stepwise_text(example, state: dict) -> str:
    """The one step a perfect model writes with this state: the next instruction and its calculation."""
    if "ops" not in example.fields:
        raise _no_gold(example, "instruction list")
    done = state["iteration"]
    start, ops = example.fields["start"], example.fields["ops"]
    if done == 0:
        return f"Start with {start}. <<{start}={start}>>"
    if done > len(ops):
        return answer_line(example)
    left, op, right, result = _calculations(example)[done - 1]
    return f"{_WORDS[op].format(x=ops[done - 1][1])} <<{left}{op}{right}={result}>>"


def model_steps(chain) -> list:
    """Every model step of a chain (Step, CalcStep), in the order they run."""
    from engine.chains.nodes import walk

    return [node for node in walk(chain) if getattr(node, "kind", None) in ("model", "model+calculator")]


def chain_writer(chain, label: str):
    """The gold writer of a chain of your own, as `write(step, example, state) -> str`: each model step's own
    `gold=` (called with the example and the state), else the chain file's `gold(step_name, example, state)`. A
    model step with neither is a one-line error naming it; so is a writer that fails or returns no text."""
    shared = getattr(chain, "gold_writer", None)
    own = {step.name: step.gold for step in model_steps(chain) if getattr(step, "gold", None) is not None}
    missing = [step.name for step in model_steps(chain) if step.name not in own and shared is None]
    if missing:
        raise EngineError(f"chain {label}: model step {missing[0]!r} has no gold writer: define "
                          "`gold(step_name, example, state)` in the chain file, or give the Step `gold=` a function "
                          "of (example, state), or train on the chain's own correct chains with --source self")

    def write(step: str, example, state: dict) -> str:
        try:
            text = own[step](example, state) if step in own else shared(step, example, state)
        except Exception as exc:  # noqa: BLE001 - the user's writer: one line, naming where
            raise EngineError(f"chain {label}: the gold writer failed at step {step!r} of item {example.id}: "
                              f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(text, str):
            raise EngineError(f"chain {label}: the gold writer returned a {type(text).__name__} at step {step!r} "
                              f"of item {example.id}: return the text a perfect model would write")
        return text

    return write


def gold_writer_for(chain, label: str, custom: bool):
    """None for a built-in strategy (its gold chains are the engine's); a chain of your own (`custom`, from
    --chain, or a task's own chain such as `walk`) needs its own writer (`chain_writer`)."""
    return None if not custom and label in GOLD_STRATEGIES else chain_writer(chain, label)


def strategy_writer(strategy: str):
    """A built-in strategy's gold writer, in the shape `chain_writer` gives."""
    return lambda step, example, state: gold_output(strategy, example, step, state)


def gold_output(strategy: str, example, step: str, state: dict) -> str:
    """What a perfect model writes for `step` of `strategy` on `example`, given the chain's state."""
    if strategy == "direct":
        return answer_line(example)
    if strategy == "cot":
        return cot_text(example)
    if strategy == "calc":
        return calc_text(example)
    if strategy == "stepwise":
        return stepwise_text(example, state)
    if strategy == "decompose":
        if step == "plan":
            return plan_text(example)
        return f"The answer is {example.gold_steps[state['sub_index']]}."
    raise EngineError(f"strategy {strategy!r} has no gold chains: fine-tune one of {', '.join(GOLD_STRATEGIES)}")
