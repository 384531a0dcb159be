"""Real run folders for the explorer's tests, written by `run_eval` with scripted models (milliseconds each).

`paired_runs`: two `cot` runs of the same eight depth-2 arithmetic items, right and wrong on different items, B
with one unparsed item and one hostile completion. `demo_folder`: a demo-like folder, `direct` and `cot` at
depths 1-3.
"""

from __future__ import annotations

from pathlib import Path

from engine.backends import ScriptedBackend
from engine import EvalSettings, run_eval
from engine.synthetic import arithmetic

HOSTILE = '</script><script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1">'


def _prompt(request) -> str:
    return request.messages[-1][1] if request.messages else request.prompt


def answering(depth: int, count: int, answer) -> ScriptedBackend:
    """A model that answers item i (in the task's order) with `answer(i, gold)`."""
    items = arithmetic.generate(count, depth, 0)

    def reply(request) -> str:
        index = next(i for i, item in enumerate(items) if item.question in _prompt(request))
        return answer(index, items[index].gold)

    return ScriptedBackend(reply)


def _wrong(gold: str) -> str:
    return str(int(float(gold)) + 1)


def paired_runs(root: Path, count: int = 8) -> tuple[Path, Path]:
    """A right on items i % 3 != 0; B right on even items, item 3 unparsed, item 1 wrong with a hostile text."""
    def a(i, gold):
        return f"Let's see. The answer is {gold if i % 3 else _wrong(gold)}."

    def b(i, gold):
        if i == 3:
            return "I do not know."
        if i == 1:
            return f"{HOSTILE} The answer is {_wrong(gold)}."
        return f"Step by step. The answer is {gold if i % 2 == 0 else _wrong(gold)}."

    folders = root / "A", root / "B"
    for folder, answer in zip(folders, (a, b)):
        run_eval(EvalSettings(task="arithmetic", strategy="cot", depth=2, limit=count, out=str(folder), no_cache=True),
                 backend=answering(2, count, answer), progress=False)
    return folders


def demo_folder(root: Path, depths=(1, 2, 3), count: int = 4) -> Path:
    """A demo-like folder: `direct` right on item 0 only, `cot` right on items 0-1, at each depth."""
    for depth in depths:
        for strategy, right in (("direct", 1), ("cot", 2)):
            run_eval(EvalSettings(task="arithmetic", strategy=strategy, depth=depth, limit=count,
                                  out=str(root / f"{strategy}-d{depth}"), no_cache=True),
                     backend=answering(depth, count, lambda i, gold, right=right:
                                       f"The answer is {gold if i < right else _wrong(gold)}."),
                     progress=False)
    return root
