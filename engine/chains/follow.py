"""Reading what the model wrote in a state-tracking loop: the instruction it repeated, and the state it wrote.

A state-tracking chain (`stepwise`, the BIG-Bench-Hard chains under `prompts/bbh-*/`) shows the model the state
it last wrote and the instructions left; the model repeats the first instruction and writes the new state. The
chain's own code does only what these functions do: check that the model repeated the first instruction, cut
it from the instructions left, and keep the rest of the model's text as the new state. It never computes a
state from the question, so a model that writes nothing gets nothing (the chain's floor, `--backend null`).
"""

from __future__ import annotations

import re

ANSWER = re.compile(r"\banswer is\b", re.IGNORECASE)
_NOTE = re.compile(r"<<[^<>]*>>")
_SENTENCE = re.compile(r"\S.*?\.(?=\s|$)", re.DOTALL)


def answered(text: str | None) -> bool:
    """Whether the model's text gives the answer ("... The answer is (B).")."""
    return bool(text and ANSWER.search(text))


def first_sentence(left: str) -> str:
    """The first sentence of `left` (up to a full stop followed by a space or the end), else all of it."""
    match = _SENTENCE.match(left.strip())
    return match.group(0) if match else left.strip()


def without_notes(text: str) -> str:
    """`text` without its calculator annotations (`<<3+4=7>>`), spaces collapsed."""
    return " ".join(_NOTE.sub(" ", text).split())


def follow_first(text: str, left: str) -> tuple[str, str]:
    """(the new state the model wrote, the instructions left after the one it did).

    The model's text must start with the first sentence of `left`, word for word (case and spacing aside);
    what follows it, without calculator annotations, is the new state. Raises ValueError, with what was
    expected and what came, when the model did not repeat the instruction or wrote no state after it.

    >>> follow_first("Turn left. x 0, y 0, facing west", "Turn left. Take 2 steps.")
    ('x 0, y 0, facing west', 'Take 2 steps.')
    """
    sentence = first_sentence(left)
    words, said = sentence.lower().split(), text.split()
    if [w.lower() for w in said[: len(words)]] != words:
        raise ValueError(f"the step did not start with the first instruction left ({sentence[:60]!r}): "
                         f"got {text[:60]!r}")
    state = without_notes(" ".join(said[len(words):]))
    if not state:
        raise ValueError(f"the step repeated {sentence[:40]!r} but wrote no state after it: got {text[:60]!r}")
    return state, left.strip()[len(sentence):].strip()


def follow_instruction(state: dict, text: str) -> None:
    """The usual `advance` of `state_loop`: the model repeated the first instruction of `state["left"]` and wrote
    the new state after it (`follow_first`)."""
    state["now"], state["left"] = follow_first(text, state["left"])


def state_loop(step, start, parse, max_steps: int, advance=follow_instruction, first=None,
               lays_out: set[str] = frozenset()):
    """The chain of a state-tracking task: `start(state)` lays the question out, then `first` (a model step, if
    any) writes the starting state, then `step` runs again and again, each time followed by `advance(state,
    text)`, until a step gives the answer, a step fails, or `max_steps` pass; the answer is parsed from the
    step that gave it (`parse`), else it is unparsed. Each step's prompt is built from the state alone (no
    earlier text), so every step looks the same however long the problem is.

    `advance` updates the state from the step's text (raising ValueError when the text cannot be followed: the
    Compute records the error, and the item ends unparsed); by default the step follows the first instruction
    left. `state["done"]` counts the model steps done.
    `lays_out` names the state keys `start` sets beyond `now` and `left` (what `first`'s template reads)."""
    from engine.chains.nodes import Compute, Loop, Sequence, parser_named

    parse = parser_named(parse, "answer")  # a parser's name ("choice") or a function

    def follow(state: dict) -> None:
        text = state.get(f"{step.output}_text") or ""
        state["done"] += 1
        if answered(text):
            state["finished"] = True
            return None
        try:
            advance(state, text)
        except Exception:
            state["finished"] = True
            raise
        return None

    def begin(state: dict) -> None:
        state.update(done=0, finished=False)
        start(state)

    def starting_state(state: dict) -> None:
        state["done"] += 1
        state["now"] = " ".join((state.get(f"{first.output}_text") or "").split())
        if not state["now"]:
            state["finished"] = True
            raise ValueError(f"step {first.name!r} wrote no starting state")

    def answer(state: dict):
        text = state.get(f"{step.output}_text") or ""
        return parse(text.rsplit(">>", 1)[-1]) if answered(text) else None

    nodes = [Compute("start", begin, reads={"question"}, writes={"done", "finished", "now", "left", *lays_out})]
    if first is not None:
        nodes += [first, Compute("starting_state", starting_state, reads={first.output}, writes={"now"})]
    body = Sequence(step, Compute("advance", follow, reads={step.output}, writes={"now", "left", "done"}))
    nodes += [Loop(body, until=lambda state: state["finished"], max_iterations=max_steps, carries_outputs=False),
              Compute("answer", answer, reads={step.output}, text_from=f"{step.output}_text")]
    return Sequence(*nodes)


def gold_from_steps(step_name: str, example, state: dict) -> str:
    """A gold writer for chains built with `state_loop` on generated items: the item's gold step texts, one per
    model step in order (`example.gold_steps`, what a perfect model writes), indexed by the steps done."""
    if not example.gold_steps:
        raise ValueError(f"item {example.id} has no gold steps: train on items of a generator that writes them")
    return example.gold_steps[state["done"]]
