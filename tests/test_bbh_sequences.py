"""dyck_languages and word_sorting (part 2's sequence families): generators in the benchmark's form, chains
whose every state is the model's, gold chains that end at the gold, floors of zero, and answers scored exactly.

As for part 1 (`test_bbh_families.py`), the chains run on all 250 items of each real file with scripted
"models" that read only the prompt they are shown: one that does every step right scores 100%, one that writes
nothing scores the floor, and one that writes the right form but never changes its state gets what its state
says. Where the model errs (a word that is not left, a symbol it did not take) the item is wrong, not excused.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import gold_chain_steps

from engine.backends import ScriptedBackend
from engine.runs.evaluate import run_eval
from engine.runs.plan import EvalSettings
from engine.scoring.parsers import PARSERS, is_correct
from engine.synthetic import brackets, word_lists
from engine.tasks.spec import load_examples, load_spec

FILES = {"bbh-dyck_languages": ("dyck-gen", 13), "bbh-word_sorting": ("words-gen", 10)}


def _shown(request) -> tuple[str, str]:
    return re.match(r"\w+: (.*)\nLeft:\s(.*?)(?:\nClosed: .*)?$", request.messages[-1][1], re.DOTALL).groups()


def _closed(request) -> str:
    """The closing brackets the dyck chain shows as written so far ('' for none)."""
    closed = re.search(r"\nClosed: (.*)", request.messages[-1][1]).group(1)
    return "" if closed == "(none)" else closed


def perfect_step(request, stuck: bool = False) -> str:
    """What a model that does each step right writes, from the prompt alone (`stuck`: its state never changes)."""
    if "Spell the first four letters" in request.messages[0][1]:
        return " ".join(re.search(r"Word: (\S+)", request.messages[-1][1]).group(1)[:4])
    now, left = _shown(request)
    if "brackets still open" in request.messages[0][1]:
        stack = [] if now == "empty" else now.split()
        if left == "(none)":  # close the last one open, one a step; with none open, the closers written
            if not stack:
                return f"The answer is {_closed(request)}."
            return f"{brackets.PAIRS[stack[-1]]} -> {' '.join(stack[:-1]) or 'empty'}"
        symbol = left.split()[0]
        if not stuck:
            stack = stack + [symbol] if symbol in brackets.PAIRS else stack[:-1]
        return f"{symbol} -> {' '.join(stack) or 'empty'}"
    if left == "(none)":
        return f"The answer is {now}."
    if "lines left" in request.messages[0][1]:  # spell's picks: each line a word's letters, then the word
        lines = left.split("\n")
        return lines[0] if stuck else min(lines, key=lambda line: line.split()[-1])
    return left.split()[0] if stuck else min(left.split())  # stuck: the words in the order given


@pytest.mark.parametrize("task", FILES)
def test_a_model_that_does_each_step_right_scores_every_real_item(task, tmp_path):
    summary = run_eval(EvalSettings(task=task, out=str(tmp_path / "run"), floor=True),
                       backend=ScriptedBackend(perfect_step), progress=False)
    spec, _ = load_spec(task)
    assert summary["n"] == 250 and summary["accuracy"] == 1.0 and summary["strategy"] == spec.default_strategy
    assert summary["floor"]["accuracy"] == 0.0


def test_the_pick_chain_without_spelling_still_sorts_every_real_item(tmp_path):
    summary = run_eval(EvalSettings(task="bbh-word_sorting", strategy="pick", out=str(tmp_path / "run"), floor=True),
                       backend=ScriptedBackend(perfect_step), progress=False)
    assert summary["n"] == 250 and summary["accuracy"] == 1.0 and summary["floor"]["accuracy"] == 0.0


@pytest.mark.parametrize("task", FILES)
def test_the_answer_is_the_models_own_state_not_the_chains(task, tmp_path):
    summary = run_eval(EvalSettings(task=task, out=str(tmp_path / "run")),
                       backend=ScriptedBackend(lambda request: perfect_step(request, stuck=True)), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert summary["accuracy"] < 0.2 and summary["unparsed_rate"] == 0.0
    for row in rows:
        if task == "bbh-word_sorting":  # never sorted: the words come back in the order given
            assert row["answer"] == row["question"].rsplit("List: ", 1)[1]
        else:  # the stack stayed empty, so the model closed nothing
            assert not row["correct"] and not re.search(r"[)\]}>]", row["answer"] or "")


@pytest.mark.parametrize("task", FILES)
def test_gold_chains_of_generated_items_end_at_their_gold(task, default_model_dir):
    completions, steps = gold_chain_steps(task, *FILES[task], default_model_dir)
    assert completions == steps


def test_picks_gold_chains_are_the_generators_without_the_spelling(default_model_dir):
    completions, steps = gold_chain_steps("bbh-word_sorting", "words-gen", 10, default_model_dir, strategy="pick")
    # a picked line ends at its word; a spelling is single letters (the generator's words are longer than one)
    kept = [step.split()[-1] for step in steps if not step.startswith("The answer") and len(step.split()[-1]) > 1]
    assert [c for c in completions if not c.startswith("The answer")] == kept
    assert sum(c.startswith("The answer") for c in completions) == 12


def _bbh(task: str):
    spec, base = load_spec(task)
    return spec, load_examples(spec, base, 250)


def test_the_generators_rules_reach_every_bbh_answer():
    _, items = _bbh("bbh-dyck_languages")
    for item in items:
        assert brackets.closing(brackets.open_after(item.question.rsplit("Input:", 1)[1].split())) == item.gold
    _, items = _bbh("bbh-word_sorting")
    for item in items:
        assert " ".join(sorted(item.question.rsplit("List:", 1)[1].split())) == item.gold


def test_a_word_missing_doubled_or_misspelt_is_wrong():
    spec, items = _bbh("bbh-word_sorting")
    parse = PARSERS[spec.parser]
    checked = 0
    for item in items:
        words = item.gold.split()
        if len(words) < 3:
            continue
        right = f"The answer is {item.gold}."
        assert is_correct(parse(right), item, spec.answer_type)
        for wrong in (words[1:], words[:2] + words[1:], [words[0][:-1] + "q"] + words[1:]):
            assert not is_correct(parse(f"The answer is {' '.join(wrong)}."), item, spec.answer_type), wrong
        checked += 1
    assert checked > 200


def test_dyck_closers_are_the_models_own_one_a_step(tmp_path):
    """With no symbol left the model closes one bracket a step; the chain keeps the closer it wrote, of whatever
    kind (it never matches one itself), and a step that writes no closer ends the item."""
    def closer(kind: str):
        def write(request):
            now, left = _shown(request)
            if left != "(none)" or now == "empty":
                return perfect_step(request)
            return f"{kind} -> {' '.join(now.split()[:-1]) or 'empty'}"
        return write

    always = run_eval(EvalSettings(task="bbh-dyck_languages", limit=40, out=str(tmp_path / "paren")),
                      backend=ScriptedBackend(closer(")")), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "paren" / "samples.jsonl").read_text().splitlines()]
    assert all(row["answer"] == " ".join(")" * len(row["gold"].split())) for row in rows)
    assert always["accuracy"] == sum(set(row["gold"].split()) == {")"} for row in rows) / 40 < 0.5
    summary = run_eval(EvalSettings(task="bbh-dyck_languages", limit=10, out=str(tmp_path / "open")),
                       backend=ScriptedBackend(closer("(")), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "open" / "samples.jsonl").read_text().splitlines()]
    errors = [step["error"] for row in rows for step in row["steps"] if step.get("error")]
    assert summary["accuracy"] == 0.0 and len(errors) == 10 and all("closing bracket" in e for e in errors)


def test_a_dyck_answer_with_an_unmatched_bracket_is_wrong():
    spec, items = _bbh("bbh-dyck_languages")
    parse = PARSERS[spec.parser]
    swap = {")": "]", "]": "}", "}": ">", ">": ")"}
    for item in items:
        closers = item.gold.split()
        assert is_correct(parse(f"The answer is {item.gold}."), item, spec.answer_type)
        for wrong in ([swap[closers[0]]] + closers[1:], closers[:-1] or [swap[closers[0]]], closers + [")"]):
            assert not is_correct(parse(f"The answer is {' '.join(wrong)}."), item, spec.answer_type), wrong


@pytest.mark.parametrize("task, bad", [("bbh-word_sorting", "zzzzz"), ("bbh-dyck_languages", "} -> empty")])
def test_a_step_the_chain_cannot_follow_ends_the_item_wrong(task, bad, tmp_path):
    """A word that is not among those left (misspelt, or made up), or a symbol other than the first left: the
    step's error is recorded and the item is scored wrong, never skipped."""
    def erring(request):
        if "Spell the first four letters" in request.messages[0][1] or _shown(request)[1] == "(none)":
            return perfect_step(request)
        return bad

    summary = run_eval(EvalSettings(task=task, limit=20, out=str(tmp_path / "run")),
                       backend=ScriptedBackend(erring), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert summary["n"] == 20 and summary["accuracy"] == 0.0
    errors = [step["error"] for row in rows for step in row["steps"] if step.get("error")]
    assert len(errors) >= 19 and all("not one of the lines left" in e or "first symbol left" in e for e in errors)


def test_generated_items_take_the_benchmarks_form():
    for item in brackets.generate(40, 13, 1):
        symbols = item.question.rsplit("Input: ", 1)[1].split()
        assert len(symbols) == 13 and set(symbols) <= set("()[]{}<>") and 1 <= len(item.gold.split()) <= 3
        assert item.question.startswith("Complete the rest of the sequence, making sure that the parentheses")
    for item in word_lists.generate(40, 10, 1):
        words = item.question.rsplit("List: ", 1)[1].split()
        assert len(set(words)) == 10 and item.gold == " ".join(sorted(words))


def test_the_word_list_is_its_own():
    """The generator's words were written for it; those it shares with BBH's 2,741 are ordinary English words."""
    _, items = _bbh("bbh-word_sorting")
    theirs = {word for item in items for word in item.question.rsplit("List:", 1)[1].split()}
    shared = set(word_lists.WORDS) & theirs
    assert len(shared) / len(word_lists.WORDS) < 0.15, sorted(shared)


def _by_letters_shown(request, spell=None) -> str:
    """A model that spells with `spell` (right by default) and picks the line whose letters come first."""
    if "Spell the first four letters" in request.messages[0][1]:
        word = re.search(r"Word: (\S+)", request.messages[-1][1]).group(1)
        return spell(word) if spell else perfect_step(request)
    now, left = _shown(request)
    if left == "(none)":
        return f"The answer is {now}."
    return min(left.split("\n"), key=lambda line: (line.split()[:-1], line.split()[-1]))


def test_spell_sorts_by_the_models_letters_not_the_words(tmp_path):
    """The chain never spells a word: a model that spells every word starting with "s" as "a" puts those words
    first, and that wrong order is its answer; the one that spells right sorts every item."""
    right = run_eval(EvalSettings(task="bbh-word_sorting", limit=60, out=str(tmp_path / "right")),
                     backend=ScriptedBackend(_by_letters_shown), progress=False)
    assert right["accuracy"] == 1.0

    def s_as_a(word: str) -> str:
        return " ".join(("a" + word[1:] if word.startswith("s") else word)[:4])

    wrong = run_eval(EvalSettings(task="bbh-word_sorting", limit=60, out=str(tmp_path / "wrong")),
                     backend=ScriptedBackend(lambda r: _by_letters_shown(r, s_as_a)), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "wrong" / "samples.jsonl").read_text().splitlines()]
    assert wrong["unparsed_rate"] == 0.0
    for row in rows:
        words = row["question"].rsplit("List: ", 1)[1].split()
        expected = sorted(words, key=lambda w: (s_as_a(w).split(), w))
        assert row["answer"] == " ".join(expected)
        assert row["correct"] == (expected == sorted(words))
    assert wrong["accuracy"] < 0.7


@pytest.mark.parametrize("spelt", ["lant", "l a n t e", "la n t"])
def test_a_spelling_that_is_not_up_to_four_single_letters_ends_the_item(spelt, tmp_path):
    summary = run_eval(EvalSettings(task="bbh-word_sorting", limit=5, out=str(tmp_path / "run")),
                       backend=ScriptedBackend(lambda r: _by_letters_shown(r, lambda word: spelt)), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    errors = [step["error"] for row in rows for step in row["steps"] if step.get("error")]
    assert summary["accuracy"] == 0.0 and len(errors) == 5 and all("did not spell" in e for e in errors)
    assert all(len([s for s in row["steps"] if s["kind"] == "model"]) == 1 for row in rows)  # stopped at once


def _compares_wrong(request) -> str:
    """Spells right, then picks the last line by its letters: a wrong comparison, not a wrong spelling."""
    if "Spell the first four letters" in request.messages[0][1]:
        return perfect_step(request)
    now, left = _shown(request)
    return f"The answer is {now}." if left == "(none)" else max(left.split("\n"))


def _s_as_a(request) -> str:
    return _by_letters_shown(request, lambda word: " ".join(("a" + word[1:] if word.startswith("s") else word)[:4]))


@pytest.mark.parametrize("model, where", [(perfect_step, "right"), (_s_as_a, "pick: misspelt"),
                                          (_compares_wrong, "pick: compared wrong"),
                                          (lambda request: perfect_step(request).replace(" ", "") or "x",
                                           "spelling stopped")])
def test_words_failures_tells_a_misspelling_from_a_wrong_comparison(model, where, tmp_path):
    """eval/words_failures.py says whether the first wrong pick came from the letters the model spelt or from
    how it compared them, and counts the spelling."""
    from test_bench_tables import load

    failures = load("words_failures")
    run_eval(EvalSettings(task="bbh-word_sorting", limit=30, out=str(tmp_path / "run")),
             backend=ScriptedBackend(model), progress=False)
    result = failures.summarize(tmp_path / "run")
    assert result["items"] == 30 and result["first_wrong"].get(where, 0) > 0
    assert set(result["first_wrong"]) <= {"right", where}
    spelling = result["spelling"]
    if where == "right":
        assert spelling["words"] == spelling["exact"] == spelling["first_letter"] > 60
    if where == "pick: misspelt":  # only the words that start with "s" are misspelt, at their first letter
        assert spelling["first_letter"] == spelling["exact"] < spelling["words"]
