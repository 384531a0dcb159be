"""Where word_sorting's `spell` chain goes wrong on BIG-Bench-Hard's items: the spelling, or the picking.

The chain never spells or compares a word itself, so a run's records say only that an item ended wrong. This
script works the truth out for the check alone (never inside the chain): each word's first four letters and
the words' alphabetical order. From a run's `samples.jsonl` it counts how well the model spelt (words spelt
exactly, first letter right) and, per item, where the first wrong step is:

- `spelling stopped`: a spelling the chain could not take (not one to four single letters);
- `pick: misspelt`: the model picked the line that comes first by the letters shown, but a wrong spelling put
  it there (the comparison was right, the spelling was not);
- `pick: compared wrong`: the line it picked does not come first even by the letters shown;
- `pick: not a line left`: what it wrote is none of the lines (the chain stopped the item);
- `answer`: every pick right, the answer line not (a word dropped or miscopied).

    python eval/words_failures.py runs/ft-bbh2/test/bbh-word_sorting/tuned/all --out eval/results/words-failures.json

Several run folders may be given; each gets its own counts.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

LETTERS = 4


def _model_steps(row: dict) -> list[tuple[str, str]]:
    return [(s["prompt"] or "", (s["outputs"] or [""])[0]) for s in row["steps"] if s["kind"] == "model"]


def _lines_left(prompt: str) -> list[str]:
    return prompt.split("\nLeft:\n", 1)[1].strip().split("\n") if "\nLeft:\n" in prompt else []


def first_wrong(row: dict) -> str:
    """'right', or where the item first went wrong (the classes in the module's docstring)."""
    if row["correct"]:
        return "right"
    for prompt, output in _model_steps(row):
        word = re.search(r"\nWord: (\S+)$", prompt)
        if word:
            letters = output.split()
            if not 1 <= len(letters) <= LETTERS or any(len(letter) != 1 for letter in letters):
                return "spelling stopped"
            continue
        lines = _lines_left(prompt)
        if not lines or lines == ["(none)"]:
            return "answer"
        picked = " ".join(output.split()).rstrip(".")
        if picked not in lines:
            return "pick: not a line left"
        truly_first = min(lines, key=lambda line: line.split()[-1])
        if picked.split()[-1] != truly_first.split()[-1]:
            by_letters = min(lines, key=lambda line: (line.split()[:-1], line.split()[-1]))
            return "pick: misspelt" if picked == by_letters else "pick: compared wrong"
    return "answer"


def spelling_counts(rows: list[dict]) -> dict:
    """Words spelt, spelt exactly (their first four letters), and with the first letter right."""
    spelt = exact = first = 0
    for row in rows:
        for prompt, output in _model_steps(row):
            word = re.search(r"\nWord: (\S+)$", prompt)
            if word:
                spelt += 1
                letters = output.split()
                exact += letters == list(word.group(1)[:LETTERS])
                first += bool(letters) and letters[0] == word.group(1)[0]
    return {"words": spelt, "exact": exact, "first_letter": first}


def summarize(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    return {"run": str(run), "items": len(rows), "first_wrong": dict(Counter(first_wrong(row) for row in rows)),
            "spelling": spelling_counts(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of the spell chain (each with samples.jsonl)")
    parser.add_argument("--out", type=Path, help="write the counts here as JSON")
    args = parser.parse_args()
    results = [summarize(run) for run in args.runs]
    for result in results:
        print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
