"""Turning finished chains into scored records, and records into a run's summary figures."""

from __future__ import annotations

import re
from dataclasses import asdict

from engine.scoring.answers import answers_match
from engine.scoring.metrics import accuracy_summary, majority_vote, maj_at_k, pass_at_k, per_class_report, per_step_accuracy
from engine.scoring.parsers import PARSERS, is_correct


def _as_list(value) -> list:
    return list(value) if isinstance(value, list) else [value]


def step_predictions(run, example, parse) -> list[str | None] | None:
    """Predicted intermediate results: decomposition sub-answers, else gold steps found in order in the text.

    The text searched is that of a step named `working` when the chain has one (a custom chain that works
    first and answers after), else the answer's. For free-form reasoning, step i counts as reached when its gold value appears in the text after step
    i-1's value; the first one not found is the first step that went wrong. When a program computed the
    answer (pal), its intermediate values are in no text, so there are no step predictions (None).
    """
    solved = run.state.get("solved")
    if solved is not None:
        return [parse(str(s["answer"])) if s["answer"] is not None else None for s in solved]
    if any(key.endswith("_program") for key in run.state):
        return None
    text = _as_list(run.state.get("working_text") or run.state.get("answer_text"))[0] or ""
    predictions, position = [], 0
    for gold in example.gold_steps:
        found = _find_value(text, gold, position)
        if found < 0:
            predictions.append(None)
            continue
        predictions.append(gold)
        position = found + len(gold)
    return predictions


def _find_value(text: str, value: str, start: int) -> int:
    """Index of `value` as a whole token (so "1" is not found inside "12"), or -1.

    A list marker is not a result: the "1." of "1. Add 3 to 2" or the "2" of "Step 2:" numbers the reasoning,
    and counting it would credit a chain with a gold step of 1 or 2 that it never computed.
    """
    for match in re.compile(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)").finditer(text, start):
        if not _is_list_marker(text, match.start(), match.end()):
            return match.start()
    return -1


_LINE_OPENING = re.compile(r"(?:^|\n)[ \t]*(?:[-*][ \t]*)?(?:step[ \t]*)?$", re.IGNORECASE)
_MARKER_CLOSE = re.compile(r"[.):][ \t]+\S")  # a marker has its item after it; "14." alone on a line is a value


def _is_list_marker(text: str, begin: int, end: int) -> bool:
    """True for a number that opens a line (after an optional bullet or "Step") and is closed by ".", ")" or ":"
    with text after it."""
    line_start = text.rfind("\n", 0, begin) + 1
    return bool(_LINE_OPENING.search(text[max(0, line_start - 1):begin]) and _MARKER_CLOSE.match(text, end))


def score_example(example, run, spec) -> dict:
    """One samples.jsonl line: gold, answer, correctness, every extraction, and every step's record."""
    answer = run.state.get("answer")
    texts = _as_list(run.state.get("answer_text"))
    extractions = {}
    for name in [spec.parser, *spec.extra_parsers]:
        values = [PARSERS[name](t) if t is not None else None for t in texts]
        value = majority_vote(values)
        extractions[name] = {"answer": value, "correct": is_correct(value, example, spec.answer_type)}
    record = {
        "id": example.id,
        "question": example.question,
        "gold": example.gold,
        "answer": answer,
        "correct": is_correct(answer, example, spec.answer_type),
        "unparsed": answer is None,
        "extractions": extractions,
        "error": run.error,
        "steps": [asdict(r) for r in run.records],
    }
    if "answer_samples" in run.state:
        record["samples"] = run.state["answer_samples"]
        record["samples_correct"] = [is_correct(v, example, spec.answer_type) for v in record["samples"]]
    predicted = step_predictions(run, example, PARSERS[spec.parser]) if example.gold_steps else None
    if predicted is not None:
        record["gold_steps"] = list(example.gold_steps)
        record["pred_steps"] = predicted
    return record


def summarize(records: list[dict], spec) -> dict:
    """Accuracy with its interval, unparsed rate, every extraction side by side, tokens, and extras."""
    summary = accuracy_summary([r["correct"] for r in records], [r["unparsed"] for r in records])
    # errors: items that failed (an exception, a refused prompt) or had a tool step fail (program, calculation)
    failed_steps = [s for r in records for s in r["steps"] if s.get("error")]
    summary["errors"] = sum(1 for r in records if r["error"] or any(s.get("error") for s in r["steps"]))
    summary["step_errors"] = {kind: sum(1 for s in failed_steps if s["kind"] == kind)
                              for kind in sorted({s["kind"] for s in failed_steps})}
    summary["truncated_rate"] = (sum(1 for r in records if _truncated(r)) / len(records)) if records else 0.0
    summary["extractions"] = {}
    for name in [spec.parser, *spec.extra_parsers]:
        part = accuracy_summary([r["extractions"][name]["correct"] for r in records],
                                [r["extractions"][name]["answer"] is None for r in records])
        summary["extractions"][name] = {k: part[k] for k in ("accuracy", "ci95", "unparsed_rate")}
    steps = [s for r in records for s in r["steps"]]
    summary["prompt_tokens"] = sum(s["prompt_tokens"] for s in steps)
    summary["completion_tokens"] = sum(s["completion_tokens"] for s in steps)
    reused = sum(s.get("cached_prompt_tokens", 0) for s in steps)
    summary["prefix_cache"] = {"prompt_tokens": summary["prompt_tokens"], "cached_prompt_tokens": reused,
                               "hit_rate": round(reused / summary["prompt_tokens"], 4) if summary["prompt_tokens"] else 0.0}
    def match(pred, gold):
        return answers_match(pred, gold, _match_type(spec))

    if records and "samples" in records[0]:
        k = len(records[0]["samples"])
        if spec.answer_type != "sudoku":  # a verifier-scored task has no gold string to vote towards
            summary[f"maj@{k}"] = maj_at_k([r["samples"] for r in records], [r["gold"] for r in records], k, match)
        for at in sorted({1, k}):  # unbiased estimates from the one pool of k samples per item
            summary[f"pass@{at}"] = sum(pass_at_k(len(r["samples_correct"]), sum(r["samples_correct"]), at)
                                        for r in records) / len(records)
    stepped = [r for r in records if "pred_steps" in r]
    if stepped:
        summary["per_step"] = per_step_accuracy([r["pred_steps"] for r in stepped], [r["gold_steps"] for r in stepped],
                                                match)
    if spec.classes:
        summary["per_class"] = per_class_report([r["answer"] for r in records], [r["gold"] for r in records],
                                                [c.lower() for c in spec.classes])
    return summary


def _truncated(record: dict) -> bool:
    """Some model output of this item stopped at its token limit rather than at an end of its own."""
    return any(reason == "length" for step in record["steps"] for reason in step.get("finish_reasons", ()))


def _match_type(spec) -> str:
    return "free-text" if spec.answer_type in ("nli", "sudoku") else spec.answer_type
