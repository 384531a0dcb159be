"""BIG-Bench-Hard logical_deduction (three, five or seven objects) as a program the model writes one line at a
time, which the sandbox runs: `eval --task bbh-logical_deduction_five_objects --strategy program`.

What the model writes: first the things, as a Python list of their names, from the sentence that names them
(`[" fern", " cactus", " orchid"]`); then for each clue, the clue word for word and its condition on `pos` (each
thing's place, from 1 at the start of the scene's order: the left, the oldest, the cheapest, the first to
finish) and `N` (how many there are): `The fern is to the left of the cactus. pos[" fern"] < pos[" cactus"]`;
then the same for each option. What the chain's code does: it cuts the question into the sentence that names
the things, the clues and the options (the layout), checks that the model repeated each one, and puts the
model's lines, unchanged, into a fixed program that tries every order of the model's list and returns the one
option whose condition holds in the only order where every clue's condition holds; the sandbox runs it (time
and memory limits, no files, no network). It never reads a clue itself, so a model that writes nothing gets
nothing. The sentences left start a line, so a clue's first name is the same tokens in the prompt as where the
model's line starts; and each name is quoted with the space it has inside a sentence (`" tractor"`, one token
there, where `"tractor"` would make the model spell the word from a start it never saw), which the program
strips (a name quoted without it is the same name). Trained on items of
`tasks/deduction-gen.yaml` (`engine.synthetic.orderings`; three and five things).
"""

import re

from engine import (Compute, Loop, Program, SamplingSettings, Sequence, Step, extract_choice, follow_first,
                    gold_from_steps)

MAX_STEPS = 24
"""Clues and options of the seven-object items (6 + 7 at most in BIG-Bench-Hard), and slack."""
NONE = "(none)"
PROGRAM = '''from itertools import permutations


class Places(dict):
    """pos["tractor"] and pos[" tractor"] alike: a name copied with the space it had inside the sentence."""

    def __getitem__(self, name):
        return dict.__getitem__(self, name.strip())


def solution():
    things = [thing.strip() for thing in {things}]
    N = len(things)
    clues = [{clues}]
    options = {{{options}}}
    found = []
    for order in permutations(things):
        pos = Places({{thing: place + 1 for place, thing in enumerate(order)}})
        if all(clue(pos) for clue in clues):
            found.append([letter for letter, holds in options.items() if holds(pos)])
    if len(found) != 1 or len(found[0]) != 1:
        return f"no single answer: {{len(found)}} orders fit"
    return "(" + found[0][0] + ")"
'''


def _start(state: dict) -> None:
    body, _, options = state["question"].partition("\nOptions:")
    sentences = re.findall(r"\S.*?\.(?=\s|$)", " ".join(body.split()))
    naming = next((i for i, s in enumerate(sentences) if ":" in s), None)
    clues = sentences[naming + 1:] if naming is not None else []
    lines = [f"{line.strip()}." for line in options.strip().splitlines() if line.strip()]
    state.update(done=0, finished=False, naming=sentences[naming] if naming is not None else "",
                 left=" ".join(clues + lines) or NONE, things=None, clues=[], options={})


def _things(state: dict) -> None:
    state["done"] += 1
    text = (state.get("list_text") or "").strip()
    if not re.fullmatch(r"\[.*\]", text):
        state["finished"] = True
        raise ValueError(f"the step wrote no Python list of the things: got {text[:60]!r}")
    state["things"] = text


def _follow(state: dict) -> None:
    state["done"] += 1
    text = state.get("line_text") or ""
    try:
        condition, left = follow_first(text, state["left"])
    except ValueError:
        state["finished"] = True
        raise
    done = state["left"][: len(state["left"]) - len(left)].strip()
    option = re.match(r"\(([A-G])\)", done)
    if option:
        state["options"] = {**state["options"], option.group(1): condition}
    else:
        state["clues"] = state["clues"] + [condition]
    state["left"] = left or NONE
    state["finished"] = not left


def _program(state: dict) -> str:
    if not state.get("things") or not state["options"]:
        raise ValueError("the model wrote no things or no options: there is no program to run")
    return "```python\n" + PROGRAM.format(
        things=state["things"], clues=", ".join(f"lambda pos: {c}" for c in state["clues"]),
        options=", ".join(f'"{letter}": lambda pos: {c}' for letter, c in state["options"].items())) + "```"


def program(spec):
    naming = Step("list", "list.jinja", SamplingSettings(max_tokens=64, stop=("\n",)))
    line = Step("line", "line.jinja", SamplingSettings(max_tokens=64, stop=("\n",)))
    return Sequence(
        Compute("start", _start, reads={"question"},
                writes={"done", "finished", "naming", "left", "things", "clues", "options"}),
        naming,
        Compute("things_list", _things, reads={"list"}, writes={"things", "done", "finished"}),
        Loop(Sequence(line, Compute("follow", _follow, reads={"line"}, writes={"clues", "options", "left", "done",
                                                                                "finished"})),
             until=lambda state: state["finished"], max_iterations=MAX_STEPS, carries_outputs=False),
        Compute("assemble", _program, reads={"things", "clues", "options"}, output="code"),
        Program("run", code_from="code", output="result"),
        Compute("answer", lambda state: extract_choice(state.get("result_text") or ""), reads={"result"},
                text_from="result_text"),  # the program's result, "(B)", read as the task's options are
    )


gold = gold_from_steps
