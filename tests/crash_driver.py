"""A killable evaluation for the crash test: `python tests/crash_driver.py OUT CACHE [DELAY]`.

It runs the real `run_eval` (run folder, samples.jsonl, step cache, summary) on the `stepwise` chain at depth 6
(eight waves), with a deterministic solver in place of a model that waits DELAY seconds per wave, so a kill
can land in any wave, between waves, or while records are written. The solver makes a mistake on some
items, so the run has right and wrong answers to preserve.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from fractions import Fraction

from engine.backends import ScriptedBackend
from engine import EvalSettings, run_eval

OPERATIONS = {"add": lambda v, x: v + x, "subtract": lambda v, x: v - x, "multiply by": lambda v, x: v * x,
              "divide by": lambda v, x: v / x}


def solve_step(request) -> str:
    """One stepwise step as a student writes it: every seventh item's first step is off by one, and some items
    are answered after fewer steps than they have, so items finish in different waves."""
    text = request.messages[-1][1]
    value = re.search(r"Value: (.*)", text).group(1).strip()
    left = re.search(r"Left: (.*)", text).group(1).strip()
    question_hash = int(hashlib.sha256(left.split("What is")[0].encode()).hexdigest(), 16)
    if value != "none yet" and len(left.split(".")) <= 2 + question_hash % 6:
        return f"The answer is {Fraction(value)}."  # gives up early: items finish in different waves
    start = re.match(r"Start with (\d+)\.", left)
    if start:
        number = int(start.group(1))
        slip = int(hashlib.sha256(left.encode()).hexdigest(), 16) % 7 == 0
        return f"Start with {number}. <<{number}+{1 if slip else 0}="
    for name, _ in OPERATIONS.items():
        match = re.match(rf"({name} (\d+)\.)", left, re.IGNORECASE)
        if match:
            symbol = {"add": "+", "subtract": "-", "multiply by": "*", "divide by": "/"}[name]
            return f"{match.group(1)} <<{value}{symbol}{match.group(2)}="
    return f"The answer is {Fraction(value)}."


class SlowSolver(ScriptedBackend):
    def __init__(self, delay: float):
        super().__init__(solve_step, identity="crash-test-solver-v1")
        self.delay = delay

    def generate(self, requests):
        time.sleep(self.delay)
        return super().generate(requests)


def settings(out: str, cache: str) -> EvalSettings:
    return EvalSettings(task="arithmetic", strategy="stepwise", depth=6, limit=40, out=out, cache=cache)


if __name__ == "__main__":
    out, cache = sys.argv[1], sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    summary = run_eval(settings(out, cache), backend=SlowSolver(delay), progress=False)
    print(f"accuracy {summary['accuracy']}")
