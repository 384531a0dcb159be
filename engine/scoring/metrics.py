"""Accuracy and friends, each with an honest measure of its uncertainty.

A bare accuracy on a few hundred items hides how much of it is noise, so every headline number here comes with
an interval (Wilson for proportions, a percentile bootstrap for anything else). Answers arrive already extracted
(see `engine.scoring.answers`); `None` means the extractor found no answer, which always counts as wrong.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import norm

from engine.errors import EngineError

__all__ = [
    "accuracy_summary",
    "bootstrap_interval",
    "first_wrong_step",
    "maj_at_k",
    "majority_vote",
    "pass_at_k",
    "per_class_report",
    "per_step_accuracy",
    "wilson_interval",
]

Match = Callable[[str, str], bool]


def _exact(pred: str, gold: str) -> bool:
    return pred == gold


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise EngineError(f"confidence must be strictly between 0 and 1, got {confidence!r}; use e.g. 0.95")


def _check_same_length(name_a: str, a: Sequence, name_b: str, b: Sequence) -> None:
    if len(a) != len(b):
        raise EngineError(
            f"{name_a} has {len(a)} items but {name_b} has {len(b)}; pass one entry per item in both"
        )


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion correct/n.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and does not collapse to zero width at 0% or
    100%, which matters for the small eval sets this engine runs. n == 0 gives the uninformative (0.0, 1.0).
    """
    _check_confidence(confidence)
    if n < 0 or correct < 0 or correct > n:
        raise EngineError(f"wilson_interval needs 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    z = float(norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    p = correct / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    if correct == 0:  # the bounds are exact here; floating point would leave e.g. 1.7e-18
        return (0.0, min(1.0, center + half))
    if correct == n:
        return (max(0.0, center - half), 1.0)
    return (max(0.0, center - half), min(1.0, center + half))


def bootstrap_interval(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of `values` (for scores that are not plain proportions).

    Seeded, so that a report can be reproduced exactly. Resamples are drawn in chunks to bound memory on
    large runs.
    """
    _check_confidence(confidence)
    if resamples < 1:
        raise EngineError(f"resamples must be at least 1, got {resamples}; use e.g. 2000")
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise EngineError("bootstrap_interval needs a non-empty flat list of numbers; got none")
    rng = np.random.default_rng(seed)
    n = data.size
    chunk = max(1, 2_000_000 // n)
    means = np.empty(resamples)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = data[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def accuracy_summary(correct: Sequence[bool], unparsed: Sequence[bool]) -> dict:
    """Accuracy with its Wilson 95% interval, and how many answers could not be parsed at all.

    An unparsed item is never correct (even if `correct` says otherwise), but it is also counted on its own:
    a high unparsed_rate points at the prompt or the extractor rather than at the model's reasoning.
    With no items, accuracy and unparsed_rate are 0.0 and ci95 is [0.0, 1.0]; check `n`.
    """
    _check_same_length("correct", correct, "unparsed", unparsed)
    n = len(correct)
    n_unparsed = sum(1 for u in unparsed if u)
    n_correct = sum(1 for c, u in zip(correct, unparsed) if c and not u)
    low, high = wilson_interval(n_correct, n)
    return {
        "n": n,
        "correct": n_correct,
        "accuracy": n_correct / n if n else 0.0,
        "ci95": [low, high],
        "unparsed": n_unparsed,
        "unparsed_rate": n_unparsed / n if n else 0.0,
    }


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021).

    Computed as a running product, 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge binomials.
    """
    if n < 1 or c < 0 or c > n:
        raise EngineError(f"pass_at_k needs n >= 1 and 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise EngineError(f"pass_at_k needs 1 <= k <= n, got k={k} with n={n}; sample at least k completions")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most common non-None answer (self-consistency); a tie goes to the answer seen first.

    Answers are compared as exact strings, so pass them through the same normaliser first
    ("18" and "18.0" are different votes otherwise). All None (or no answers) gives None.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    # Counter keeps first-occurrence order and max() returns the first maximal key: ties go to the earliest.
    return max(counts, key=counts.__getitem__)


def maj_at_k(
    samples_per_item: Sequence[Sequence[str | None]],
    golds: Sequence[str],
    k: int,
    match: Match | None = None,
) -> float:
    """maj@k: share of items whose majority answer over their first k samples matches the gold answer.

    Every item needs at least k samples (a shorter vote would quietly measure something else). `match`
    defaults to exact string equality; pass e.g. `lambda p, g: answers_match(p, g, "number")`.
    No items gives 0.0.
    """
    _check_same_length("samples_per_item", samples_per_item, "golds", golds)
    if k < 1:
        raise EngineError(f"maj_at_k needs k >= 1, got k={k}")
    match = match or _exact
    hits = 0
    for i, (samples, gold) in enumerate(zip(samples_per_item, golds)):
        if len(samples) < k:
            raise EngineError(
                f"item {i} has {len(samples)} samples but k={k}; sample at least k completions per item"
            )
        vote = majority_vote(samples[:k])
        if vote is not None and match(vote, gold):
            hits += 1
    return hits / len(golds) if golds else 0.0


def per_class_report(
    preds: Sequence[str | None], golds: Sequence[str], classes: Sequence[str]
) -> dict:
    """Precision, recall, F1 and support per class, and their macro-F1.

    Accuracy alone hides a model that always answers the majority class; its macro-F1 (and the other class's
    recall) gives it away.

    Returns {"classes": {class: {"precision", "recall", "f1", "support"}}, "macro_f1": float}. A None
    prediction is a miss for its gold class and a false positive for none. Any 0/0 is 0.0. Labels compare as
    exact strings, so normalise them first.
    """
    _check_same_length("preds", preds, "golds", golds)
    if not classes:
        raise EngineError("per_class_report needs at least one class; pass the task's label set")
    report: dict[str, dict] = {}
    for cls in classes:
        tp = sum(1 for p, g in zip(preds, golds) if p == cls and g == cls)
        fp = sum(1 for p, g in zip(preds, golds) if p == cls and g != cls)
        support = sum(1 for g in golds if g == cls)
        fn = support - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[cls] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    macro_f1 = sum(r["f1"] for r in report.values()) / len(report)
    return {"classes": report, "macro_f1": macro_f1}


def _step_right(pred: Sequence[str | None], gold: Sequence[str], i: int, match: Match) -> bool:
    return i < len(pred) and pred[i] is not None and match(pred[i], gold[i])


def first_wrong_step(
    pred: Sequence[str | None], gold: Sequence[str], match: Match | None = None
) -> int | None:
    """Index of the first step whose prediction misses its gold step (a missing step is a miss); None if all right.

    Chains fail by compounding; the first wrong step says where to look.
    """
    match = match or _exact
    for i in range(len(gold)):
        if not _step_right(pred, gold, i, match):
            return i
    return None


def per_step_accuracy(
    pred_steps: Sequence[Sequence[str | None]],
    gold_steps: Sequence[Sequence[str]],
    match: Match | None = None,
) -> dict:
    """Accuracy at each step position of a multi-step chain, and where chains first go wrong.

    Returns {"accuracy": [float per position], "support": [items having that gold step], "first_wrong":
    [items whose first wrong step is that position], "all_right": count}. Items may have different depths:
    position i is scored only over items with a gold step i; a missing predicted step counts as wrong.
    """
    _check_same_length("pred_steps", pred_steps, "gold_steps", gold_steps)
    match = match or _exact
    depth = max((len(g) for g in gold_steps), default=0)
    right = [0] * depth
    support = [0] * depth
    first_wrong = [0] * depth
    all_right = 0
    for pred, gold in zip(pred_steps, gold_steps):
        first = None
        for i in range(len(gold)):
            support[i] += 1
            if _step_right(pred, gold, i, match):
                right[i] += 1
            elif first is None:
                first = i
        if first is None:
            all_right += 1
        else:
            first_wrong[first] += 1
    accuracy = [r / s if s else 0.0 for r, s in zip(right, support)]
    return {"accuracy": accuracy, "support": support, "first_wrong": first_wrong, "all_right": all_right}
