"""Lists of words to sort, in BIG-Bench-Hard's word_sorting form, `depth` words long.

The question is "Sort the following words alphabetically: List: ..." and the answer the same words in
alphabetical order, separated by spaces. The gold steps are what a careful sorter writes (the `spell` chain of
`prompts/bbh-words/chain.py`): each word's first four letters, one word a step, in the order given (`s t a b`);
then one line at a time, the alphabetically first of those left, its spelling and then its word (`r a t t
rattle`: `Python`'s string order on lower-case words, which is the benchmark's: its 250 targets are exactly
that order); and with none left the answer line, the whole list. The words are this module's own list (many
share their first letters, so a step must read past the first one), not the benchmark's.

One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='wordlist-d3-s0-0',
            question='Sort the following words alphabetically: List: stable rattle teapot',
            gold='rattle stable teapot',
            fields={'words': 'stable rattle teapot'},
            gold_steps=('s t a b', 'r a t t', 't e a p', 'r a t t rattle', 's t a b stable', 't e a p teapot',
                        'The answer is rattle stable teapot.'),
            sub_questions=None)
"""

from __future__ import annotations

import random

from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 24
PREFIX = "wordlist"
LETTERS = 4
"""Letters a gold step spells of each word (`prompts/bbh-words/chain.py` shows them before the word)."""
QUESTION = "Sort the following words alphabetically: List: "
WORDS = tuple("""
acorn admiral almond amber anchor angle ankle apron arch arrow attic autumn avenue axle
bacon badge bakery bamboo banner barley barrel basket beacon beetle bench bicycle biscuit blanket blossom bonnet
border bottle bracket breeze bridge bronze bucket buckle bundle butter button
cabin cactus camel candle canoe canvas carpet carrot castle cattle cedar cellar chalk cherry chimney cinder
circle clover cobble comet copper cotton cradle crayon cricket crystal cushion
dagger daisy dawn desert diamond dinner dolphin donkey dragon drawer drizzle dune dust
eagle easel ember emerald engine envelope estate evening
fabric falcon feather fence fern fiddle finch flannel flute forest fossil fountain fox frost
galaxy garden garlic gazelle ginger glacier glove goblet granite gravel guitar gully
hammer harbor harvest hatchet hazel helmet hermit hickory hollow honey horizon hornet
iceberg igloo indigo inkwell island ivory
jacket jasmine jelly jigsaw journal jungle juniper
kayak kernel kettle kitten knapsack knuckle
ladder lagoon lantern lattice lemon lettuce lilac linen lizard lobster locket lumber
magnet mallet maple marble meadow melon mirror mitten monsoon mosaic muffin mustard
napkin nectar needle nettle nickel noodle nutmeg
oasis oatmeal orchard otter oven oyster
paddle pansy parcel parrot pebble pencil pepper pickle pillow pistachio plank plum pocket puddle pumpkin
quarry quartz quill quilt
rabbit radish raisin rattle raven ribbon riddle ripple rocket rooster rubble
saddle salmon sandal satchel scarf shovel silver sketch sparrow spindle squirrel stable starling stencil
table tablet tangle teapot thimble thistle thunder timber toffee tulip tunnel turnip
umber umbrella urchin
valley velvet violet vinegar voyage vulture
waffle walnut walrus whistle willow window wizard
yarrow yeast yodel
zebra zephyr zigzag zipper
""".split())


def _item(rng: random.Random, depth: int, item_id: str):
    from engine.examples import Example

    words = rng.sample(WORDS, depth)
    ordered = sorted(words)
    gold = " ".join(ordered)
    spelt = [spelling(word) for word in words]
    picked = [f"{spelling(word)} {word}" for word in ordered]
    return Example(id=item_id, question=QUESTION + " ".join(words), gold=gold, fields={"words": " ".join(words)},
                   gold_steps=(*spelt, *picked, f"The answer is {gold}."))


def spelling(word: str) -> str:
    """A word's first letters, one a token: `spelling("lantern") == "l a n t"`."""
    return " ".join(word[:LETTERS])


def generate(count: int, depth: int, seed: int = 0) -> list:
    """`count` lists of `depth` different words (BIG-Bench-Hard's have 2 to 20)."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
