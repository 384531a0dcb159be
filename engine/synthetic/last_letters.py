"""Last-letter concatenation: take the last letter of each of `depth` first names and join them in order.

Names are drawn without repetition from a built-in list of 100 common first names; the gold is lower case.
One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='letters-d3-s0-0',
            question='Take the last letters of the words in "James Samantha William" and concatenate them.',
            gold='sam',
            fields={'words': ['James', 'Samantha', 'William']},
            gold_steps=('s', 'sa', 'sam'),
            sub_questions=('What is the last letter of "James"?',
                           'What is the last letter of "Samantha"?',
                           'What is the last letter of "William"?'))
"""

from __future__ import annotations

import random

from engine.examples import Example
from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 20
PREFIX = "letters"

NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Margaret",
    "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily", "Paul", "Donna", "Joshua", "Michelle",
    "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie",
    "Ronald", "Rebecca", "Jason", "Sharon", "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Dorothy",
    "Jacob", "Amy", "Gary", "Kathleen", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Emma",
    "Stephen", "Brenda", "Larry", "Pamela", "Justin", "Nicole", "Scott", "Anna", "Brandon", "Samantha",
    "Benjamin", "Katherine", "Samuel", "Christine", "Gregory", "Debra", "Alexander", "Rachel", "Patrick", "Carolyn",
    "Frank", "Janet", "Raymond", "Maria", "Jack", "Olivia", "Dennis", "Heather", "Jerry", "Helen",
)


def _item(rng: random.Random, depth: int, item_id: str) -> Example:
    words = rng.sample(NAMES, depth)
    steps: list[str] = []
    joined = ""
    for word in words:
        joined += word[-1].lower()
        steps.append(joined)
    question = f'Take the last letters of the words in "{" ".join(words)}" and concatenate them.'
    return Example(
        id=item_id,
        question=question,
        gold=joined,
        fields={"words": words},
        gold_steps=tuple(steps),
        sub_questions=tuple(f'What is the last letter of "{word}"?' for word in words),
    )


def generate(count: int, depth: int, seed: int = 0) -> list[Example]:
    """`count` items of `depth` names each; the same arguments always give the same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
