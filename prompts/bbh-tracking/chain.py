"""BIG-Bench-Hard tracking_shuffled_objects (three, five or seven objects), one swap at a time: `--strategy swaps`.

What the model writes: first, from the line that says who starts with what and the options, each person with
the letter of the option they hold (`Alice A, Bob B, Claire C`); then at each step the first swap left, word
for word, and everyone's letters after it (`First, Claire and Bob swap books. Alice A, Bob C, Claire B`); with
only the question left, the asked person's letter and the answer (`Bob C. The answer is (C).`). What the
chain's code does: it splits the question into its first line, its swaps (from "First," on) and its options,
cuts the swap the model repeated from those left and keeps the letters the model wrote; it never swaps
anything itself. Trained on items of `tasks/tracking-gen.yaml` (`engine.synthetic.trading`).
"""

from engine import SamplingSettings, Step, gold_from_steps, state_loop

MAX_STEPS = 14
"""Swaps of the seven-object items (7), the answer, and slack."""


def _start(state: dict) -> None:
    body, _, options = state["question"].partition("\nOptions:")
    setup, _, moves = body.partition("\n")
    at = moves.find("First,")
    state.update(setup=setup.strip(), options=options.strip(), left=" ".join(moves[max(at, 0):].split()))


def swaps(spec):
    holdings = Step("holdings", "holdings.jinja", SamplingSettings(max_tokens=64, stop=("\n",)))
    step = Step("step", "step.jinja", SamplingSettings(max_tokens=96, stop=("\n",)))
    return state_loop(step, _start, spec.parser, MAX_STEPS, first=holdings,  # each swap follows the first left
                      lays_out={"setup", "options"})


gold = gold_from_steps
