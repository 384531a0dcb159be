"""BIG-Bench-Hard word_sorting, one word at a time: `eval --task bbh-word_sorting --strategy spell` (the default)
or `--strategy pick`.

`spell`: first the model spells each word's first four letters, one word a step, in the order the question
lists them (`Word: lantern` -> `l a n t`); then, one step at a time, it writes the alphabetically first of the
lines left, each line its spelling and then the word (`h a r v harvest`); with no line left, the sorted words
(`The answer is harvest lantern marble.`), scored exactly as the benchmark scores it (a word missing, doubled
or misspelt is wrong). Why spell: this tokenizer writes most words as one or two pieces, so which of two words
comes first is not in the tokens the model reads; one letter a token, it is. What the chain's code does: it
cuts the question after "List:" into its words (the layout), checks that a spelling is one to four single
characters (not that they are the word's: a wrong spelling is the model's and sorts where it says), puts each
spelling before its word, checks that the line the model picked is one of those left (word for word), moves
its word from the lines left to the list so far, and shows both to the next step. It never compares two words
or spells one, so a model that writes nothing gets nothing.

`pick` is the same without the spelling: the model writes the alphabetically first word of those left. On the
part-2 pilots it sorted no item (0 of 30).

Trained on items of `tasks/words-gen.yaml` (`engine.synthetic.word_lists`, whose gold steps are `spell`'s).
"""

from engine import SamplingSettings, Step, gold_from_steps, state_loop

MAX_STEPS = 50
"""Words of the longest BIG-Bench-Hard item (20), spelt and then picked, the answer, and slack."""
NONE = "(none)"
LETTERS = 4
"""Letters spelt per word: past four, only 6 of BIG-Bench-Hard's 250 lists have two words alike."""


def _words(question: str) -> list[str]:
    return question.rsplit("List:", 1)[-1].split()


def _start_spelling(state: dict) -> None:
    words = _words(state["question"])
    state.update(now=NONE, left=NONE, word=words[0] if words else "", to_spell=words[1:], lines=[])


def _advance_spelling(state: dict, text: str) -> None:
    if not state["word"]:
        _advance_picking(state, text)
        return
    letters = text.split()
    if not 1 <= len(letters) <= LETTERS or any(len(letter) != 1 for letter in letters):
        raise ValueError(f"the step did not spell {state['word']!r} as one to {LETTERS} letters separated by spaces: "
                         f"got {text[:40]!r}")
    lines = state["lines"] + [f"{' '.join(letters)} {state['word']}"]
    rest = state["to_spell"]
    state.update(lines=lines, word=rest[0] if rest else "", to_spell=rest[1:],
                 left=NONE if rest else "\n".join(lines))


def _take(state: dict, text: str, separator: str, what: str) -> None:
    """Move what the model picked (a word, or a line that ends with one) from those left to the list so far,
    only if it is one of them, word for word; `separator` parts the things left in `state["left"]`."""
    picked = " ".join(text.split()).rstrip(".")
    left = state["left"].split(separator) if state["left"] != NONE else []
    if picked not in left:
        shown = " / ".join(left)
        raise ValueError(f"the step wrote {text[:40]!r}, which is not one of the {what} left ({shown[:60]!r})")
    left.remove(picked)
    word = picked.split()[-1]
    state.update(now=word if state["now"] == NONE else f"{state['now']} {word}", left=separator.join(left) or NONE)


def _advance_picking(state: dict, text: str) -> None:
    _take(state, text, "\n", "lines")


def spell(spec):
    step = Step("step", "spell.jinja", SamplingSettings(max_tokens=160, stop=("\n",)))
    return state_loop(step, _start_spelling, spec.parser, MAX_STEPS, advance=_advance_spelling,
                      lays_out={"word", "to_spell", "lines"})


def _start(state: dict) -> None:
    words = _words(state["question"])
    state.update(now=NONE, left=" ".join(words) if words else NONE)


def _advance(state: dict, text: str) -> None:
    _take(state, text, " ", "words")


def _pick_gold(example, state: dict) -> str:
    """`pick`'s steps from the generator's (`spell`'s): the word of each picked line, then the answer."""
    if not example.gold_steps:
        raise ValueError(f"item {example.id} has no gold steps: train on items of a generator that writes them")
    picked = example.gold_steps[len(_words(example.question)):-1]
    return picked[state["done"]].split()[-1] if state["done"] < len(picked) else example.gold_steps[-1]


def pick(spec):
    step = Step("step", "step.jinja", SamplingSettings(max_tokens=160, stop=("\n",)), gold=_pick_gold)
    return state_loop(step, _start, spec.parser, MAX_STEPS, advance=_advance)


gold = gold_from_steps
