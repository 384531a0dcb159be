r"""People trading things, in BIG-Bench-Hard's tracking_shuffled_objects form: `depth` people, `depth` swaps.

The surface form is the benchmark's (a line that says who starts with what, a line of swaps "First, ... Then,
... Finally, ..." ending with a question about one person, then lettered options in the order the things were
first named); the people, the scenes and the things are this module's own words, none taken from the
benchmark. The gold steps are what a careful reader writes, one sentence of the question at a time: each
"X has Y" with the letter of Y's option, each swap with what the two had and have now, then the answer line.

One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='trading-d3-s0-0',
            question='Mei, Ravi, and Mirela are kids at a summer camp. At the start of the week, each of them has '
                     'a hat: Mei has a Tyrolean hat, Ravi has a ten-gallon hat, and Mirela has a beret.\nDuring '
                     'the week, the hats get passed around. First, Mirela and Mei exchange hats. Then, Mirela and '
                     'Ravi exchange hats. Finally, Mei and Mirela exchange hats. At the end of the week, Mei has '
                     'the\nOptions:\n(A) Tyrolean hat\n(B) ten-gallon hat\n(C) beret',
            gold='(B)',
            fields={},
            gold_steps=('Mei has a Tyrolean hat. Mei A.',
                        'Ravi has a ten-gallon hat. Ravi B.',
                        'Mirela has a beret. Mirela C.',
                        'First, Mirela and Mei exchange hats. Mirela had C, Mei had A, so Mirela A, Mei C.',
                        'Then, Mirela and Ravi exchange hats. Mirela had A, Ravi had B, so Mirela B, Ravi A.',
                        'Finally, Mei and Mirela exchange hats. Mei had C, Mirela had B, so Mei B, Mirela C.',
                        'So Mei B. The answer is (B).'),
            sub_questions=None)
"""

from __future__ import annotations

import random
from typing import NamedTuple

from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 12
PREFIX = "trading"
LETTERS = "ABCDEFGHIJKL"
PEOPLE = (  # short and long, one token to four: the model learns to copy any name, not to spell twenty
    "Maya", "Omar", "Lena", "Tariq", "Sofia", "Kenji", "Nadia", "Ivan", "Priya", "Hugo", "Zara", "Felix", "Ines",
    "Ravi", "Olga", "Pablo", "Mei", "Jonas", "Amara", "Luis", "Bartholomew", "Evangeline", "Wilhelmina",
    "Cornelius", "Ottoline", "Leopold", "Rosalind", "Thaddeus", "Philippa", "Augustin", "Ignatius", "Persephone",
    "Benedikt", "Marguerite", "Anastasia", "Maximilian", "Genevieve", "Sebastian", "Theodora", "Octavia",
    "Florian", "Isadora", "Lucian", "Seraphina", "Valentin", "Cordelia", "Ambrose", "Clementine", "Desmond",
    "Henrietta", "Barnaby", "Winifred", "Percival", "Guinevere", "Horatio", "Esperanza", "Magdalena", "Rupert",
    "Josephine", "Lysander", "Beatrix", "Ezekiel", "Rosamund", "Anselm", "Tatiana", "Caspian", "Imogen",
    "Bertrand", "Ludmila", "Aurelio", "Soledad", "Quentin", "Ingeborg", "Dashiell", "Yevgenia", "Obadiah",
    "Kassandra", "Emeric", "Zenobia", "Leander", "Priyanka", "Siddharth", "Oluwaseun", "Chidinma", "Akosua",
    "Kwabena", "Nkechi", "Tendai", "Ngozi", "Xiomara", "Joaquim", "Ximena", "Rafferty", "Mirela", "Bogdan",
    "Svetlana", "Anneliese", "Giuseppe", "Raimund", "Hyacinth", "Eugenio", "Fenella")


class Scene(NamedTuple):
    who: str        # "are roommates who ..."
    start: str      # "At the start of the month, each of them owns one game"
    holds: str      # "{person} owns {thing}"
    middle: str     # the sentence before the swaps
    swap: str       # "{a} and {b} swap games."
    ask: str        # "At the end of the month, {person} owns"
    things: tuple[str, ...]


SCENES = (
    Scene("are roommates who lend each other board games", "At the start of the month, each of them owns one game",
          "{person} owns {thing}", "Over the month, the games change hands.", "{a} and {b} swap games.",
          "At the end of the month, {person} owns",
          ("chess", "checkers", "backgammon", "dominoes", "mahjong", "scrabble", "cribbage", "go", "ludo", "bingo", "othello",
           "mancala", "nine men's morris", "Chinese checkers", "tic-tac-toe", "pachisi")),
    Scene("are musicians in a street band", "At the start of the rehearsal, each of them plays one instrument",
          "{person} plays the {thing}", "During the rehearsal, they keep handing instruments around.",
          "{a} and {b} switch instruments.", "At the end of the rehearsal, {person} plays the",
          ("violin", "cello", "flute", "trumpet", "banjo", "harp", "oboe", "tuba", "ukulele", "accordion", "clarinet",
           "saxophone", "hurdy-gurdy", "glockenspiel", "French horn", "double bass")),
    Scene("are pupils in a ballroom class", "At the start of the lesson, each of them has a partner",
          "{person} is paired with {thing}", "During the lesson, the pupils change partners now and then.",
          "{a} and {b} trade partners.", "At the end of the lesson, {person} is paired with",
          ("Marco", "Yuki", "Tomas", "Leila", "Anya", "Bruno", "Chiara", "Dmitri", "Esme", "Farid", "Gustav", "Hana",
           "Wenceslas", "Konstantina", "Fiorella", "Radomir")),
    Scene("are players on a baseball team", "At the start of the inning, each of them has a position",
          "{person} plays {thing}", "As the inning goes on, the coach moves them around.",
          "{a} and {b} trade positions.", "At the end of the inning, {person} plays",
          ("pitcher", "catcher", "shortstop", "first base", "second base", "third base", "left field",
           "center field", "right field", "designated hitter", "pinch runner", "relief pitcher")),
    Scene("are neighbours who grow plants on a shared balcony", "At the start of spring, each of them grows one plant",
          "{person} grows {thing}", "As spring goes on, they keep swapping pots.", "{a} and {b} swap plants.",
          "At the end of spring, {person} grows",
          ("a fern", "a cactus", "an orchid", "a tulip", "a bonsai", "a lily", "a daisy", "an ivy", "a lemon tree",
           "a mint plant", "a sunflower", "a bamboo", "a weeping willow sapling", "a Venus flytrap", "a spider plant",
           "a rubber fig")),
    Scene("are kids at a summer camp", "At the start of the week, each of them has a hat",
          "{person} has a {thing}", "During the week, the hats get passed around.",
          "{a} and {b} exchange hats.", "At the end of the week, {person} has the",
          ("straw hat", "woolly hat", "cowboy hat", "bucket hat", "sailor hat", "baseball cap", "top hat", "beret",
           "fedora", "sun hat", "panama hat", "beanie", "ten-gallon hat", "Tyrolean hat", "deerstalker", "balaclava")),
    Scene("are colleagues who each brought a snack to share", "At the start of the meeting, each of them holds a snack",
          "{person} holds {thing}", "While the meeting drags on, the snacks go back and forth.",
          "{a} and {b} swap snacks.", "At the end of the meeting, {person} holds",
          ("a muffin", "a pretzel", "a bagel", "a croissant", "a cookie", "a donut", "a scone", "a brownie",
           "a waffle", "a samosa", "a churro", "a crepe", "a cinnamon roll", "a pain au chocolat", "a Bakewell tart",
           "a slice of banana bread")),
    Scene("are friends in a reading circle who pass novels around", "At the start of the term, each of them is "
          "reading one novel", "{person} is reading {thing}", "Over the term, the novels keep changing hands.",
          "{a} and {b} swap novels.", "At the end of the term, {person} is reading",
          ("The Lantern Under the Pier", "A Winter of Small Birds", "The Cartographer's Last Map",
           "Nine Bridges to Nowhere", "The Quiet Orchard", "Letters from the Salt Flats", "The Glass Harbour",
           "Ashes over Vellmar", "The Tin Astronomer", "A Season of Lost Kites", "The Ninth Lighthouse",
           "Midnight on the Ferry")),
)


def _names(items: list[str]) -> str:
    """'A, B, and C' (the benchmark's serial comma), 'A and B' for two."""
    return items[0] if len(items) == 1 else " and ".join(items) if len(items) == 2 else \
        ", ".join(items[:-1]) + ", and " + items[-1]


def _exchange(a: str, b: str, holding: dict[str, int]) -> str:
    """A swap worked out: "Ravi had C, Sofia had A, so Ravi A, Sofia C."

    Each letter in it is one look-up (in the letters shown, then in the words just written), so the model never
    has to find a person's letter and exchange it in the same token, and never writes the whole list: with
    three-letter lists written whole, the first wrong step was nearly always a swap, and the seven-person list
    (never trained on) came out with a person missing."""
    x, y = LETTERS[holding[a]], LETTERS[holding[b]]
    return f"{a} had {x}, {b} had {y}, so {a} {y}, {b} {x}."


def _item(rng: random.Random, depth: int, item_id: str):
    from engine.examples import Example

    scene = rng.choice(SCENES)
    people = rng.sample(PEOPLE, max(2, depth))  # depth 1: two people, one swap
    things = rng.sample(scene.things, len(people))
    holding = {person: i for i, person in enumerate(people)}
    clauses = [scene.holds.format(person=p, thing=t) for p, t in zip(people, things)]
    steps = [f"{clause}. {person} {LETTERS[i]}." for i, (clause, person) in enumerate(zip(clauses, people))]
    swaps, connectors = [], ["First"] + ["Then"] * (depth - 2) + ["Finally"] if depth > 1 else ["First"]
    for connector in connectors:
        while True:
            a, b = rng.sample(people, 2)
            # never undo the swap just made, unless there are only two people (and so only one swap)
            if not swaps or {a, b} != set(swaps[-1]) or len(people) == 2:
                break
        swaps.append((a, b))
        sentence = f"{connector}, {scene.swap.format(a=a, b=b)}"
        steps.append(f"{sentence} {_exchange(a, b, holding)}")
        holding[a], holding[b] = holding[b], holding[a]
    target = rng.choice(people)
    answer = LETTERS[holding[target]]
    # "So Mei": the name follows a space, as everywhere in the prompt; an answer that starts with it made "Eve"
    # the tokens "E|ve", and the model wrote the option letter E on the five-object file
    steps.append(f"So {target} {answer}. The answer is ({answer}).")
    moves = " ".join(_swap_text(step) for step in steps[len(people):-1])
    options = "\n".join(f"({LETTERS[i]}) {thing}" for i, thing in enumerate(things))
    question = (f"{_names(people)} {scene.who}. {scene.start}: {_names(clauses)}.\n{scene.middle} {moves} "
                f"{scene.ask.format(person=target)}\nOptions:\n{options}")
    return Example(id=item_id, question=question, gold=f"({answer})", fields={}, gold_steps=tuple(steps))


def _swap_text(step: str) -> str:
    """The swap sentence a gold step starts with ("First, A and B swap games.")."""
    return step[: step.index(".") + 1]


def generate(count: int, depth: int, seed: int = 0) -> list:
    """`count` items of `depth` people and as many swaps (1..12; depth 1 is two people and one swap); the same
    arguments give the same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
