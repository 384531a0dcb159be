r"""Walking instructions in BIG-Bench-Hard's navigate form, `depth` instructions: do you end where you started?

Two kinds of item, as in the benchmark: "Always face forward." then steps forward, backward, left or right; or
turns ("Turn left.", "Turn around.") between steps taken straight ahead. About half the items return to the
start (the last instructions are chosen to walk back), the other half do not.

The gold steps are what a careful walker writes after each instruction: the instruction, the calculator
annotation of the coordinate it changes (none for a turn), and the position and facing after it, starting from
`x 0, y 0, facing north`; the last step is the answer line.

One real item, `generate(1, 3, seed=0)[0]`:

    Example(id='navigate-d3-s0-0',
            question='If you follow these instructions, do you return to the starting point? Take 10 steps. '
                     'Turn around. Take 10 steps.\nOptions:\n- Yes\n- No',
            gold='Yes',
            fields={},
            gold_steps=('Take 10 steps. <<0+10=10>> x 0, y 10, facing north',
                        'Turn around. x 0, y 10, facing south',
                        'Take 10 steps. <<10-10=0>> x 0, y 0, facing south',
                        'The answer is Yes.'),
            sub_questions=None)
"""

from __future__ import annotations

import random

from engine.synthetic.args import check_args, seeded_items

MAX_DEPTH = 16
PREFIX = "navigate"
QUESTION = "If you follow these instructions, do you return to the starting point?"
START = "x 0, y 0, facing north"
HEADINGS = ("north", "east", "south", "west")
_STEP_OFFSET = {"forward": 0, "right": 1, "backward": 2, "left": 3}
_TURN = {"Turn right.": 1, "Turn around.": 2, "Turn left.": 3}
_MOVE = {"north": (0, 1), "east": (1, 0), "south": (0, -1), "west": (-1, 0)}


def _take(count: int, way: str | None) -> str:
    return f"Take {count} step{'s' if count != 1 else ''}{' ' + way if way else ''}."


def _text(kind: str, count: int, way: str | None) -> str:
    return "Always face forward." if kind == "always" else way if kind == "turn" else _take(count, way)


def walk(instructions: list[tuple[str, int, str | None]]) -> tuple[list[str], int, int]:
    """The gold step texts of `instructions` ((kind, count, way): kind "take", "turn" or "always"), and the end."""
    x, y, heading, steps = 0, 0, 0, []
    for kind, count, way in instructions:
        text, note = _text(kind, count, way), ""
        if kind == "turn":
            heading = (heading + _TURN[way]) % 4
        elif kind == "take":
            dx, dy = _MOVE[HEADINGS[(heading + _STEP_OFFSET[way or "forward"]) % 4]]
            old, axis_moves_x = (x, True) if dx else (y, False)
            sign = dx or dy
            new = old + sign * count
            note = f" <<{old}{'+' if sign > 0 else '-'}{count}={new}>>"
            x, y = (new, y) if axis_moves_x else (x, new)
        steps.append(f"{text}{note} x {x}, y {y}, facing {HEADINGS[heading]}")
    return steps, x, y


def _random_moves(rng: random.Random, count: int, turns: bool) -> list[tuple[str, int, str | None]]:
    moves = []
    for _ in range(count):
        if turns and rng.random() < 0.4:
            moves.append(("turn", 0, rng.choice(tuple(_TURN))))
        elif turns:
            moves.append(("take", rng.randint(1, 10), rng.choice((None, None, None, "forward", "backward"))))
        else:
            moves.append(("take", rng.randint(1, 10), rng.choice(tuple(_STEP_OFFSET))))
    return moves


def _walk_back(rng: random.Random, prefix: list, turns: bool) -> list | None:
    """Instructions that bring the walker of `prefix` back to the start, or None when no short way fits."""
    _, x, y = walk(prefix)
    if turns:
        heading = sum(_TURN[w] for k, _, w in prefix if k == "turn") % 4
        back = []
        for axis_value, plus, minus in ((x, 1, 3), (y, 0, 2)):  # east/west first, then north/south
            if axis_value == 0:
                continue
            target = minus if axis_value > 0 else plus
            turn = (target - heading) % 4
            if turn:
                back.append(("turn", 0, {1: "Turn right.", 2: "Turn around.", 3: "Turn left."}[turn]))
                heading = target
            back.append(("take", abs(axis_value), None))
        return back
    back = []
    if x:
        back.append(("take", abs(x), "left" if x > 0 else "right"))
    if y:
        back.append(("take", abs(y), "backward" if y > 0 else "forward"))
    rng.shuffle(back)
    return back


def _item(rng: random.Random, depth: int, item_id: str):
    from engine.examples import Example

    style = rng.choice(("always", "turns", "turns", "plain"))
    turns = style == "turns"
    lead = [("always", 0, None)] if style == "always" else []
    room = depth - len(lead)
    returns = rng.random() < 0.5
    body = None
    for _ in range(200 if returns else 0):  # a walk back that fits in `depth` instructions, if there is one
        candidate = _random_moves(rng, rng.randint(max(0, room - 4), room), turns)
        candidate += _walk_back(rng, lead + candidate, turns)
        if len(candidate) == room and all(c <= 12 for k, c, _ in candidate if k == "take"):
            body = candidate
            break
    instructions = lead + (body if body is not None else _random_moves(rng, room, turns))
    steps, x, y = walk(instructions)
    gold = "Yes" if (x, y) == (0, 0) else "No"
    texts = " ".join(_text(kind, count, way) for kind, count, way in instructions)
    question = f"{QUESTION} {texts}\nOptions:\n- Yes\n- No"
    return Example(id=item_id, question=question, gold=gold, fields={},
                   gold_steps=tuple(steps) + (f"The answer is {gold}.",))


def generate(count: int, depth: int, seed: int = 0) -> list:
    """`count` walks of `depth` instructions (BIG-Bench-Hard's have 3 to 10); same arguments, same items."""
    check_args(count, depth, seed, MAX_DEPTH)
    return seeded_items(PREFIX, count, depth, seed, lambda rng, item_id: _item(rng, depth, item_id))
