"""Things someone has, in BIG-Bench-Hard's object_counting form: `depth` kinds of thing, some of them several.

The question lists what "I" have ("I have a cello, two kettles, and a harp.") and asks how many of one kind
(musical instruments, fruits, vegetables, animals, or objects, which counts everything listed, all of them
household objects then). The gold steps are what a careful counter writes, one listed thing at a time: the thing,
how many of it count (`two kettles: 0.` when they are not of the asked kind), the calculator annotation of the
running total when some do (`a lute: 1. <<0+1=` and the calculator's `1>>`), the total, and the answer line.
Whether a thing is of a kind is the model's own knowledge at test time: this module's words are its own,
written for it (`KINDS`), and `tests/test_bbh_counting.py` reports how many of them the benchmark also uses.

One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='belongings-d3-s0-0',
            question='I have a melon, a lute, and a beet. How many musical instruments do I have?',
            gold='1',
            fields={'kind': 'musical instruments'},
            gold_steps=('a melon: 0. Total 0', 'a lute: 1. <<0+1=1>> Total 1', 'a beet: 0. Total 1',
                        'The answer is 1.'),
            sub_questions=None)
"""

from __future__ import annotations

import random

from engine.errors import EngineError
from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 14
PREFIX = "belongings"
KINDS = {  # singular -> plural, where the plural is not the singular with an "s"
    "musical instruments": {"cello": "cellos", "harp": "harps", "banjo": "banjos", "oboe": "oboes", "tuba": "tubas",
                            "bugle": "bugles", "mandolin": "mandolins", "ukulele": "ukuleles", "viola": "violas",
                            "xylophone": "xylophones", "bagpipe": "bagpipes", "harmonica": "harmonicas",
                            "bassoon": "bassoons", "sitar": "sitars", "lute": "lutes", "marimba": "marimbas",
                            "tambourine": "tambourines", "cornet": "cornets", "harpsichord": "harpsichords"},
    "fruits": {"pear": "pears", "mango": "mangoes", "kiwi": "kiwis", "lime": "limes", "apricot": "apricots",
               "fig": "figs", "papaya": "papayas", "guava": "guavas", "melon": "melons", "coconut": "coconuts",
               "pomegranate": "pomegranates", "lychee": "lychees", "tangerine": "tangerines", "quince": "quinces",
               "cranberry": "cranberries", "gooseberry": "gooseberries", "persimmon": "persimmons",
               "date": "dates", "mulberry": "mulberries"},
    "vegetables": {"leek": "leeks", "turnip": "turnips", "radish": "radishes", "beet": "beets", "parsnip": "parsnips",
                   "zucchini": "zucchinis", "eggplant": "eggplants", "artichoke": "artichokes", "yam": "yams",
                   "cucumber": "cucumbers", "pumpkin": "pumpkins", "squash": "squashes", "shallot": "shallots",
                   "rutabaga": "rutabagas", "kohlrabi": "kohlrabies", "okra pod": "okra pods",
                   "sweet potato": "sweet potatoes", "bell pepper": "bell peppers", "celeriac": "celeriacs"},
    "animals": {"horse": "horses", "sheep": "sheep", "goose": "geese", "mouse": "mice", "hamster": "hamsters",
                "parrot": "parrots", "turtle": "turtles", "lizard": "lizards", "goat": "goats", "owl": "owls",
                "deer": "deer", "ferret": "ferrets", "otter": "otters", "wolf": "wolves", "hedgehog": "hedgehogs",
                "llama": "llamas", "badger": "badgers", "beaver": "beavers", "moose": "moose"},
    "objects": {"kettle": "kettles", "toaster": "toasters", "sofa": "sofas", "desk": "desks", "mirror": "mirrors",
                "clock": "clocks", "rug": "rugs", "pillow": "pillows", "blender": "blenders", "stool": "stools",
                "shelf": "shelves", "vase": "vases", "bucket": "buckets", "ladder": "ladders", "heater": "heaters",
                "bookcase": "bookcases", "cupboard": "cupboards", "knife": "knives", "dishwasher": "dishwashers"},
}
NUMBERS = ("two", "three", "four", "five")
SAID_WITH_A = {"ukulele"}
"""Words spelt with a vowel first that take "a" (said "you-")."""


def things_of(kind: str) -> dict[str, str]:
    """The generator's words for `kind` (singular -> plural); EngineError naming a kind it does not know."""
    if kind not in KINDS:
        raise EngineError(f"the object-counting generator knows no kind {kind!r}: it knows "
                          f"{', '.join(sorted(KINDS))}")
    return KINDS[kind]


def _listed(rng: random.Random, name: str, plural: str) -> tuple[str, int]:
    if rng.random() < 0.7:
        return f"{'an' if name[0] in 'aeiou' and name not in SAID_WITH_A else 'a'} {name}", 1
    number = rng.randrange(len(NUMBERS))
    return f"{NUMBERS[number]} {plural}", number + 2


def _item(rng: random.Random, depth: int, item_id: str, kind: str | None):
    from engine.examples import Example

    kind = kind or rng.choice(sorted(KINDS))
    own = things_of(kind)
    if kind == "objects":
        names = rng.sample(sorted(own), depth)
        pool = {name: own[name] for name in names}
    else:
        asked = rng.randint(max(1, depth // 2), depth)
        others = {n: p for k, words in KINDS.items() if k != kind for n, p in words.items()}
        names = rng.sample(sorted(own), asked) + rng.sample(sorted(others), depth - asked)
        rng.shuffle(names)
        pool = {**own, **others}
    total, listed, steps = 0, [], []
    for name in names:
        text, many = _listed(rng, name, pool[name])
        listed.append(text)
        if name in own:
            steps.append(f"{text}: {many}. <<{total}+{many}={total + many}>> Total {total + many}")
            total += many
        else:
            steps.append(f"{text}: 0. Total {total}")
    things = listed[0] if depth == 1 else ", ".join(listed[:-1]) + ", and " + listed[-1]  # the benchmark's commas
    question = f"I have {things}. How many {kind} do I have?"
    return Example(id=item_id, question=question, gold=str(total), fields={"kind": kind},
                   gold_steps=(*steps, f"The answer is {total}."))


def generate(count: int, depth: int, seed: int = 0, kind: str | None = None) -> list:
    """`count` lists of `depth` things (BIG-Bench-Hard's have 2 to 12), each asking about a kind drawn at random,
    or about `kind` (one of `KINDS`; any other is refused with a line naming it)."""
    check_args(count, depth, seed, MAX_DEPTH)
    if kind is not None:
        things_of(kind)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id, kind))
