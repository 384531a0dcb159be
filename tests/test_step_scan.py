"""Per-step scoring of free-form reasoning: gold intermediate results found in order, list numbering ignored."""

from types import SimpleNamespace

import pytest

from engine.scoring.parsers import PARSERS
from engine.scoring.records import step_predictions


def predictions(text: str, gold_steps: list[str]) -> list[str | None]:
    run = SimpleNamespace(state={"answer_text": text})
    return step_predictions(run, SimpleNamespace(gold_steps=gold_steps), PARSERS["number"])


@pytest.mark.parametrize("text", [
    "1. Add 4 to 3 to get 7.\n2. Subtract 6 to get 1.\n3. Double it.",
    "Step 1: 3 plus 4 is 7.\nStep 2: 7 minus 6 is 1.\nStep 3: double it.",
    "- 1) 3 + 4 = 7\n- 2) 7 - 6 = 1\n- 3) doubled",
])
def test_list_numbering_is_not_a_computed_step(text):
    # gold: 3 + 4 = 7, 7 - 6 = 1, 1 * 2 = 2; the chain never computed the last, only numbered its lines with it
    assert predictions(text, ["7", "1", "2"]) == ["7", "1", None]


def test_numbers_at_a_line_opening_that_are_results_still_count():
    assert predictions("3 plus 4:\n7\n7 minus 6 gives\n1. Then\n2.", ["7", "1", "2"]) == ["7", None, "2"]
    assert predictions("Adding, 7. Taking 6 away, 1. Doubling: 2.", ["7", "1", "2"]) == ["7", "1", "2"]
    assert predictions("12 and 1.5 are not 1 or 2\n", ["1", "2"]) == ["1", "2"]
