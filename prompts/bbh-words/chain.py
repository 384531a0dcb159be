"""BIG-Bench-Hard word_sorting, one word at a time: `eval --task bbh-word_sorting --strategy pick`.

What the model writes at each step: the alphabetically first word of those left (`harvest`); with no word
left, the whole sorted list it built (`The answer is harvest lantern marble.`), which is scored exactly as the
benchmark scores it (a word missing, doubled or misspelt is wrong). What the chain's code does: it cuts the
question after "List:" into its words (the layout), checks that the word the model wrote is one of those left
(word for word), moves it from the words left to the end of the list so far, and shows both to the next step;
it never compares two words, so a model that writes nothing gets nothing. Trained on items of
`tasks/words-gen.yaml` (`engine.synthetic.word_lists`).
"""

from engine import SamplingSettings, Step, gold_from_steps, state_loop

MAX_STEPS = 26
"""Words of the longest BIG-Bench-Hard item (20), the answer, and slack."""
NONE = "(none)"


def _start(state: dict) -> None:
    words = state["question"].rsplit("List:", 1)[-1].split()
    state.update(now=NONE, left=" ".join(words) if words else NONE)


def _advance(state: dict, text: str) -> None:
    word = text.strip().rstrip(".")
    left = state["left"].split() if state["left"] != NONE else []
    if word not in left:
        raise ValueError(f"the step wrote {text[:40]!r}, which is not one of the words left ({' '.join(left)[:60]!r})")
    left.remove(word)
    so_far = [] if state["now"] == NONE else state["now"].split()
    state.update(now=" ".join(so_far + [word]), left=" ".join(left) if left else NONE)


def pick(spec):
    step = Step("step", "step.jinja", SamplingSettings(max_tokens=160, stop=("\n",)))
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_advance)


gold = gold_from_steps
