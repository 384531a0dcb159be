"""Where the `swaps` chain goes wrong on BIG-Bench-Hard's tracking_shuffled_objects items: the first wrong state.

BBH's items carry no gold steps, so the explorer's per-step accuracy cannot be read for them. This script
works them out for the check alone (never inside the chain): who starts with which option (the order the
question names them in, A first), the swaps "X and Y swap/switch/trade ...", and after each swap the letters
everyone holds. It compares them with the states each step of a run was shown (its `samples.jsonl`: the state
the model wrote before) and counts, per item, where the first wrong one is: the starting state, swap N, the
answer step (every state right, the answer not), or a step the chain could not follow.

    python eval/tracking_failures.py runs/ft-bbh-900/test/bbh-tracking_shuffled_objects_three_objects/tuned/all \
        --out eval/results/tracking-failures.json

Several run folders may be given; each gets its own counts.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

_SWAP = re.compile(r"(?:First|Then|Finally), (\w+) and (\w+) (?:swap|switch|trade)")
_PEOPLE = re.compile(r"^(.*?) (?:are|is) ")
_PAIR = re.compile(r"(\S.*) ([A-L])")
LETTERS = "ABCDEFGHIJKL"


def true_states(question: str) -> list[dict[str, str]]:
    """The letters everyone holds at the start and after each swap, worked out from the question."""
    people = _PEOPLE.match(question).group(1).replace(", and ", ", ").replace(" and ", ", ").split(", ")
    holding = {person: LETTERS[i] for i, person in enumerate(people)}
    states = [dict(holding)]
    for a, b in _SWAP.findall(question.split("\n", 1)[1]):
        holding[a], holding[b] = holding[b], holding[a]
        states.append(dict(holding))
    return states


def shown_state(prompt: str) -> dict[str, str]:
    """The letters a step was shown ("Now: Alice A, Bob B"; nothing yet is {})."""
    now = re.search(r"Now: (.*)", prompt).group(1).strip()
    pairs = [_PAIR.fullmatch(pair.strip()) for pair in now.split(",")]
    return {pair.group(1): pair.group(2) for pair in pairs} if all(pairs) else {}


def first_wrong(row: dict) -> str:
    """'right', 'start', 'swap N', 'answer' (every state right, the answer wrong) or 'stopped at step N'.

    The state after a step is what the next step is shown. Chains that write who has what one person at a
    time show the letters so far before each of those steps; chains whose first step writes everyone (a
    `holdings` step) show the whole starting state to the first swap."""
    if row["correct"]:
        return "right"
    truth = true_states(row["question"])
    prompts = [s["prompt"] for s in row["steps"] if s["kind"] == "model" and s["step"] == "step"]
    one_at_a_time = not any(s["step"] == "holdings" for s in row["steps"])
    people = list(truth[0])
    before = [{p: truth[0][p] for p in people[:k]} for k in range(len(people))] if one_at_a_time else []
    expected = before + truth
    for i, prompt in enumerate(prompts):
        if shown_state(prompt) != expected[i]:
            swap = i - len(before)
            return "start" if swap <= 0 else f"swap {swap}"
    return "answer" if len(prompts) == len(expected) else f"stopped at step {len(prompts) + 1}"


def count(folder: Path) -> dict:
    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines() if line.strip()]
    counts: dict[str, int] = {}
    for row in rows:
        where = first_wrong(row)
        counts[where] = counts.get(where, 0) + 1
    return {"run": str(folder), "n": len(rows), "first_wrong": dict(sorted(counts.items()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders holding samples.jsonl of a tracking file")
    parser.add_argument("--out", help="write the counts as JSON here")
    args = parser.parse_args()
    missing = [folder for folder in args.runs if not (Path(folder) / "samples.jsonl").is_file()]
    if missing:
        parser.error(f"{missing[0]} holds no samples.jsonl: pass run folders of `python -m engine eval` (DIR/*/)")
    results = [count(Path(folder)) for folder in args.runs]
    for result in results:
        print(result["run"], result["n"], result["first_wrong"])
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
