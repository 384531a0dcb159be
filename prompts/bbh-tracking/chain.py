"""BIG-Bench-Hard tracking_shuffled_objects (three, five or seven objects), one fact at a time: `--strategy swaps`.

What the model writes at each step, always the first thing left, word for word, then what it gives:
- for who starts with what, the letter of the option that thing is (`Claire has a brown ball. Claire C.`);
- for a swap, what the two had and what they have now (`First, Claire and Bob swap balls. Claire had C, Bob had
  B, so Claire B, Bob C.`);
- with only the question left, the asked person's letter and the answer (`So Bob C. The answer is (C).`; the name
  follows a space, as in the prompt: at the start `Eve` is `E|ve`, and the model wrote the option letter E).

What the chain's code does: it lays the question out as sentences (each "X has Y" of the first line, then the
swaps from "First," on) and shows the options; it checks that the model repeated the first sentence left, cuts
it, and writes the letters the model gave (after its "so", if any) into the list it shows next, in place of
that person's old letter. It never swaps anything and never matches a thing to an option, so a model that
writes nothing gets nothing. Each step sees only that list, the sentences left and the options, and the model
writes two letters per swap, never a whole list, so no step asks it for a longer list than training did (the
seven-object file is never trained on). The sentences left start on a line of their own, so the name the step
must repeat first is the same tokens in the prompt as in the answer: after "Left: " the seven-object file's
" Gertrude" is one token the model would have to spell out as "G|ert|rude", and it wrote "Genther" or
"Gentlewoman" on 218 of 250 items. Trained on items of `tasks/tracking-gen.yaml` (`engine.synthetic.trading`).
"""

import re

from engine import SamplingSettings, Step, follow_first, gold_from_steps, state_loop

MAX_STEPS = 20
"""Seven holdings and seven swaps of the seven-object items, the answer, and slack."""
NOBODY = "(nobody yet)"
_LETTER = re.compile(r"(\S.*?) ([A-Z])")


def holdings_sentences(setup: str) -> list[str]:
    """The first line's "X has Y" clauses, each as a sentence ("Alice has a red ball."): the benchmark's list
    ("A, B, and C" after the colon, "A and B" for two people)."""
    _, _, listed = setup.partition(": ")
    listed = listed.strip().rstrip(".")
    clauses = listed.replace(", and ", ", ").split(", ") if ", " in listed else listed.split(" and ", 1)
    return [f"{clause.strip()}." for clause in clauses if clause.strip()]


def _start(state: dict) -> None:
    body, _, options = state["question"].partition("\nOptions:")
    setup, _, moves = body.partition("\n")
    at = moves.find("First,")
    left = " ".join(holdings_sentences(setup) + moves[max(at, 0):].split())
    state.update(now=NOBODY, left=left, options=options.strip())


def _letters(text: str) -> dict[str, str]:
    """{person: letter} from "Claire C." or "Claire had C, Bob had B, so Claire B, Bob C." (what follows "so")."""
    given = text.rsplit(" so ", 1)[-1].strip().rstrip(".")
    pairs = [_LETTER.fullmatch(part.strip()) for part in given.split(",")]
    if not given or not all(pairs):
        raise ValueError(f"the step gave no 'Name L' letters to write down: got {text[:60]!r}")
    return {pair.group(1): pair.group(2) for pair in pairs}


def _advance(state: dict, text: str) -> None:
    wrote, state["left"] = follow_first(text, state["left"])
    holding = {} if state["now"] == NOBODY else dict(pair.rsplit(" ", 1) for pair in state["now"].split(", "))
    holding.update(_letters(wrote))
    state["now"] = ", ".join(f"{person} {letter}" for person, letter in holding.items())


def swaps(spec):
    step = Step("step", "step.jinja", SamplingSettings(max_tokens=64, stop=("\n",)))
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_advance, lays_out={"options"})


gold = gold_from_steps
