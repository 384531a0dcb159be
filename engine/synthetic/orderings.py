r"""Things in a fixed order, in BIG-Bench-Hard's logical_deduction form: `depth` things, clues until one order fits.

The question is the benchmark's frame (two fixed opening sentences, a scene that names the things, clues one
sentence each, then lettered options, one per thing, each saying it stands at the same place) with scenes and
things of this module's own. Each scene orders its things along one axis (left to right, oldest to newest,
cheapest to dearest, first to last in a race), and place 1 is always the axis's start. Clues are drawn at
random, true of a hidden order, until that order is the only one they allow.

The gold steps are what a careful reader writes as a program, one line a step: the things, as a Python list of
their names; for each clue, the clue again and a condition on `pos` (each thing's place, from 1) and `N` (how
many there are), such as `pos[" fern"] < pos[" cactus"]` or `pos[" tulip"] == N - 1` (each name quoted with the space it has
inside a sentence, so it is the same token there as in the model's line); and the same for each option. The chain (`prompts/bbh-deduction/chain.py`) puts those lines into a fixed search over every order,
which the sandbox runs; the answer is the option that holds in the one order every clue allows.

One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='orderings-d3-s0-0',
            question='The following paragraphs each describe a set of three objects arranged in a fixed order. '
                     'The statements are logically consistent within each paragraph. A market stall sells three '
                     'vegetables: turnips, shallots, and parsnips. The shallots are the cheapest. The turnips are '
                     'more expensive than the parsnips.\nOptions:\n(A) The turnips are the second-cheapest\n'
                     '(B) The shallots are the second-cheapest\n(C) The parsnips are the second-cheapest',
            gold='(C)',
            fields={},
            gold_steps=('[" turnips", " shallots", " parsnips"]',
                        'The shallots are the cheapest. pos[" shallots"] == 1',
                        'The turnips are more expensive than the parsnips. pos[" turnips"] > pos[" parsnips"]',
                        '(A) The turnips are the second-cheapest. pos[" turnips"] == 2',
                        '(B) The shallots are the second-cheapest. pos[" shallots"] == 2',
                        '(C) The parsnips are the second-cheapest. pos[" parsnips"] == 2'),
            sub_questions=None)
"""

from __future__ import annotations

import itertools
import random
from typing import NamedTuple

from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 7
PREFIX = "orderings"
COUNT_WORDS = ("one", "two", "three", "four", "five", "six", "seven")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh")
OPENING = ("The following paragraphs each describe a set of {n} objects arranged in a fixed order. The statements "
           "are logically consistent within each paragraph.")


class Scene(NamedTuple):
    where: str                  # "At a bakery, there are {n} cakes:"
    things: tuple[str, ...]
    article: bool               # "a fern" (True) or "Ines" (False)
    verb: str                   # "is" or "are" (plural things) or "finished" (a race)
    before: str                 # relation for a smaller place: "is to the left of"
    after: str
    place: tuple[str, str]      # (from the start, from the end): "the {k} from the left", "the {k} from the right"
    ends: tuple[str, str]       # "the leftmost", "the rightmost"


SCENES = (
    Scene("On a windowsill, there are {n} potted plants:", ("fern", "cactus", "orchid", "tulip", "bonsai", "lily",
          "ivy", "daisy", "aloe", "geranium"), True, "is", "to the left of", "to the right of",
          ("the {k} from the left", "the {k} from the right"), ("the leftmost", "the rightmost")),
    Scene("In a museum hall, there are {n} clocks:", ("cuckoo clock", "grandfather clock", "sundial", "egg timer",
          "pocket watch", "wall clock", "water clock", "alarm clock", "carriage clock"), True, "is", "older than",
          "newer than", ("the {k}-oldest", "the {k}-newest"), ("the oldest", "the newest")),
    Scene("At a bakery, there are {n} cakes:", ("sponge cake", "fruitcake", "carrot cake", "cheesecake",
          "lemon tart", "brownie", "muffin", "cupcake", "strudel"), True, "is", "less expensive than",
          "more expensive than", ("the {k}-cheapest", "the {k}-most expensive"), ("the cheapest", "the most expensive")),
    Scene("A market stall sells {n} vegetables:", ("leeks", "turnips", "radishes", "beets", "parsnips", "shallots",
          "artichokes", "yams", "carrots"), False, "are", "less expensive than", "more expensive than",
          ("the {k}-cheapest", "the {k}-most expensive"), ("the cheapest", "the most expensive")),
    Scene("In a swimming race, there were {n} swimmers:", ("Ines", "Omar", "Lena", "Tariq", "Sofia", "Kenji",
          "Nadia", "Ivan", "Priya"), False, "finished", "above", "below", ("{k}", "{k}-to-last"), ("first", "last")),
)


def _name(scene: Scene, thing: str, capital: bool = True) -> str:
    """How a clue names a thing: "The fern", "The leeks", "Ines"."""
    if scene.verb == "finished":
        return thing
    return f"{'The' if capital else 'the'} {thing}"


def _listed(scene: Scene, thing: str) -> str:
    if not scene.article:
        return thing
    return f"{'an' if thing[0] in 'aeiou' else 'a'} {thing}"


def _at(scene: Scene, place: int, n: int) -> tuple[str, str]:
    """(the words for `place` of `n`, its condition's right-hand side), counted from the nearer end."""
    from_end = n + 1 - place
    if place == 1:
        return scene.ends[0], "1"
    if from_end == 1:
        return scene.ends[1], "N"
    if place <= from_end or scene.verb == "finished" and place <= 3:
        return scene.place[0].format(k=ORDINALS[place - 1]), str(place)
    return scene.place[1].format(k=ORDINALS[from_end - 1]), f"N - {from_end - 1}"


def _absolute(scene: Scene, thing: str, place: int, n: int) -> tuple[str, str]:
    words, rhs = _at(scene, place, n)
    return f"{_name(scene, thing)} {scene.verb} {words}", f'pos[{_quoted(thing)}] == {rhs}'


def _relative(scene: Scene, a: str, b: str, a_first: bool) -> tuple[str, str]:
    relation = scene.before if a_first else scene.after
    return f"{_name(scene, a)} {scene.verb} {relation} {_name(scene, b, capital=False)}", \
        f'pos[{_quoted(a)}] {"<" if a_first else ">"} pos[{_quoted(b)}]'


def _quoted(thing: str) -> str:
    """A thing's name quoted with the space it has in the sentences, `" fern"`: inside a sentence " fern" is one
    token, and the model's line starts that token right after the quote, as it stands in the prompt (`"fern"`
    would make it spell the word from a start it never saw there; the program strips the space)."""
    return f'" {thing}"'


def holds(condition: str, pos: dict[str, int]) -> bool:
    """Whether one of this module's conditions holds for places `pos` (the gold steps' own text only)."""
    places = {f" {thing.strip()}": place for thing, place in pos.items()}  # names quoted as `_quoted` writes them
    return bool(eval(condition, {"__builtins__": {}}, {"pos": places, "N": len(pos)}))  # noqa: S307


def _item(rng: random.Random, depth: int, item_id: str):
    from engine.examples import Example

    scene = rng.choice(SCENES)
    things = rng.sample(scene.things, depth)
    order = things[:]
    rng.shuffle(order)
    place = {thing: i + 1 for i, thing in enumerate(order)}
    clues: list[tuple[str, str]] = []
    allowed = [{thing: i + 1 for i, thing in enumerate(o)} for o in itertools.permutations(things)]
    while len(allowed) > 1:
        if rng.random() < 0.4:
            thing = rng.choice(things)
            clue = _absolute(scene, thing, place[thing], depth)
        else:
            a, b = rng.sample(things, 2)
            clue = _relative(scene, a, b, place[a] < place[b])
        if clue not in clues and any(not holds(clue[1], other) for other in allowed):  # each clue rules some out
            clues.append(clue)
            allowed = [other for other in allowed if holds(clue[1], other)]
    asked = rng.randint(1, depth)
    options = [_absolute(scene, thing, asked, depth) for thing in things]
    letters = "ABCDEFG"[:depth]
    listed = (", ".join(_listed(scene, t) for t in things[:-1]) + ", and " + _listed(scene, things[-1])
              if depth > 1 else _listed(scene, things[0]))
    count = COUNT_WORDS[depth - 1]
    story = " ".join([OPENING.format(n=count), f"{scene.where.format(n=count)} {listed}."]
                     + [f"{text}." for text, _ in clues])
    question = story + "\nOptions:\n" + "\n".join(f"({letter}) {text}" for letter, (text, _) in zip(letters, options))
    gold_letter = letters[things.index(order[asked - 1])]
    steps = ["[" + ", ".join(_quoted(t) for t in things) + "]"]
    steps += [f"{text}. {condition}" for text, condition in clues]
    steps += [f"({letter}) {text}. {condition}" for letter, (text, condition) in zip(letters, options)]
    return Example(id=item_id, question=question, gold=f"({gold_letter})", fields={}, gold_steps=tuple(steps))


def generate(count: int, depth: int, seed: int = 0) -> list:
    """`count` items of `depth` things (BIG-Bench-Hard's files have 3, 5 and 7); the same arguments, the same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
