"""The twelve algorithmic BIG-Bench-Hard files the engine has chains for, and the paper's figures to read them by.

Each name is a task file under `tasks/` whose `default_strategy` is the file's own chain. Both the demo's BBH
part and `eval/bbh_table.py` read this one list, so a figure quoted beside a run is always the paper's figure
for that same file.
"""

from __future__ import annotations

CODEX_COT = {  # BBH paper (Suzgun et al. 2022), code-davinci-002, 3-shot chain-of-thought, all items of each file
    "bbh-multistep_arithmetic_two": 0.476, "bbh-boolean_expressions": 0.928, "bbh-navigate": 0.964,
    "bbh-tracking_shuffled_objects_three_objects": 0.784, "bbh-tracking_shuffled_objects_five_objects": 0.896,
    "bbh-tracking_shuffled_objects_seven_objects": 0.856,
    "bbh-object_counting": 0.932, "bbh-dyck_languages": 0.568, "bbh-word_sorting": 0.404,
    "bbh-logical_deduction_three_objects": 0.876, "bbh-logical_deduction_five_objects": 0.548,
    "bbh-logical_deduction_seven_objects": 0.388,
}
ALGORITHMIC_FILES = tuple(CODEX_COT)

_SIZES = ("_three_objects", "_five_objects", "_seven_objects")


def family(task: str) -> str:
    """A file's family: the three tracking files are one family, as are the three logical_deduction files (a
    model trained on three objects meets five and seven only in evaluation)."""
    for size in _SIZES:
        if task.endswith(size):
            return task.removesuffix(size)
    return task
