"""BIG-Bench-Hard dyck_languages, one symbol at a time: `eval --task bbh-dyck_languages --strategy stack`.

What the model writes at each step: the first symbol left, then the brackets still open after it, outermost
first (`] -> ( {`, or `} -> empty`); with no symbol left, one closing bracket a step, the one that closes the
last bracket still open, then those still open after it (`} -> (`); with none open, the closing brackets it
wrote, in order (`The answer is } ).`). What the chain's code does: it cuts the question after "Input:" into its
symbols (the layout), checks that the model repeated the first symbol left, cuts it, keeps the open brackets
the model wrote, and shows the closing brackets the model wrote so far (`Closed: } )`); it never matches a
bracket itself (a closing bracket of the wrong kind is the model's and stays in its answer), so a model that
writes nothing gets nothing. One closer a step because writing all of them at once, each the partner of an
open bracket read backwards, was where the part-2 pilot's dyck items failed with the right brackets open.
Trained on items of `tasks/dyck-gen.yaml` (`engine.synthetic.brackets`).
"""

from engine import SamplingSettings, Step, gold_from_steps, state_loop

MAX_STEPS = 110
"""Symbols of the longest BIG-Bench-Hard item (99), its closing brackets (3 at most), the answer, and slack."""
EMPTY = "empty"
NONE = "(none)"
CLOSERS = (")", "]", "}", ">")


def _start(state: dict) -> None:
    symbols = state["question"].rsplit("Input:", 1)[-1].split()
    state.update(now=EMPTY, left=" ".join(symbols) if symbols else NONE, closed=NONE)


def _advance(state: dict, text: str) -> None:
    symbol, arrow, stack = text.strip().partition("->")
    symbol, stack = symbol.strip(), " ".join(stack.split())
    if state["left"] == NONE:  # closing: the model names the closer; whether it fits is the model's business
        if not arrow or symbol not in CLOSERS:
            raise ValueError(f"with no symbol left, the step did not start with a closing bracket and '->': "
                             f"got {text[:60]!r}")
        closed = symbol if state["closed"] == NONE else f"{state['closed']} {symbol}"
        rest, state["closed"] = [], closed
    else:
        expected = state["left"].split()[0]
        if not arrow or symbol != expected:
            raise ValueError(f"the step did not start with the first symbol left ({expected!r}) and '->': "
                             f"got {text[:60]!r}")
        rest = state["left"].split()[1:]
    if not stack:
        raise ValueError(f"the step wrote no open brackets after {symbol!r} (write 'empty' for none): got {text[:60]!r}")
    state.update(now=stack, left=" ".join(rest) if rest else NONE)


def stack(spec):
    step = Step("step", "step.jinja", SamplingSettings(max_tokens=64, stop=("\n",)))
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_advance, lays_out={"closed"})


gold = gold_from_steps
