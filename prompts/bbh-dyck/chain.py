"""BIG-Bench-Hard dyck_languages, one symbol at a time: `eval --task bbh-dyck_languages --strategy stack`.

What the model writes at each step: the first symbol left, then the brackets still open after it, outermost
first (`] -> ( {`, or `} -> empty`); with no symbol left, the closing brackets of those still open, innermost
first (`The answer is } ).`). What the chain's code does: it cuts the question after "Input:" into its symbols
(the layout), checks that the model repeated the first symbol left, cuts it, and keeps the open brackets the
model wrote; it never matches a bracket itself, so a model that writes nothing gets nothing. Trained on items
of `tasks/dyck-gen.yaml` (`engine.synthetic.brackets`).
"""

from engine import SamplingSettings, Step, gold_from_steps, state_loop

MAX_STEPS = 104
"""Symbols of the longest BIG-Bench-Hard item (99), the answer, and slack."""
EMPTY = "empty"
NONE = "(none)"


def _start(state: dict) -> None:
    symbols = state["question"].rsplit("Input:", 1)[-1].split()
    state.update(now=EMPTY, left=" ".join(symbols) if symbols else NONE)


def _advance(state: dict, text: str) -> None:
    symbol, arrow, stack = text.strip().partition("->")
    expected = state["left"].split()[0] if state["left"] != NONE else None
    if not arrow or symbol.strip() != expected:
        raise ValueError(f"the step did not start with the first symbol left ({expected!r}) and '->': got {text[:60]!r}")
    stack = " ".join(stack.split())
    if not stack:
        raise ValueError(f"the step wrote no open brackets after {expected!r} (write 'empty' for none): got {text[:60]!r}")
    rest = state["left"].split()[1:]
    state.update(now=stack, left=" ".join(rest) if rest else NONE)


def stack(spec):
    step = Step("step", "step.jinja", SamplingSettings(max_tokens=64, stop=("\n",)))
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_advance)


gold = gold_from_steps
