"""Paired comparison of two runs (A and B) scored on the same items: is B really better, or is it noise?

Because both runs see the same items, the right tests are paired: McNemar's exact test looks only at the
items where the runs disagree, and a paired bootstrap gives an interval for the accuracy difference. Unpaired
tests (two separate Wilson intervals that overlap) throw that pairing away and miss real differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest

from engine.errors import EngineError

__all__ = ["compare_runs", "mcnemar_exact", "paired_bootstrap"]


def _paired(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Both runs as boolean arrays, after checking they score the same number of items."""
    if len(a_correct) != len(b_correct):
        raise EngineError(
            f"run A has {len(a_correct)} items but run B has {len(b_correct)}; compare runs over the same items"
        )
    return np.asarray(a_correct, dtype=bool).reshape(-1), np.asarray(b_correct, dtype=bool).reshape(-1)


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict:
    """McNemar's exact test: are the items only A gets right and those only B gets right equally common?

    Returns {"b01": A right & B wrong, "b10": A wrong & B right, "p_value"}. The p-value is the exact two-sided
    binomial test of b01 against b01 + b10 trials at p = 0.5 (scipy.stats.binomtest); 1.0 when the runs never
    disagree. Items both runs get right (or both wrong) carry no information about which is better.
    """
    a, b = _paired(a_correct, b_correct)
    b01 = int(np.sum(a & ~b))
    b10 = int(np.sum(~a & b))
    discordant = b01 + b10
    p_value = float(binomtest(b01, discordant, 0.5).pvalue) if discordant else 1.0
    return {"b01": b01, "b10": b10, "p_value": min(1.0, p_value)}


def paired_bootstrap(
    a_correct: Sequence[bool],
    b_correct: Sequence[bool],
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Paired bootstrap of the accuracy difference B - A: resample items (keeping each item's pair together).

    Returns {"delta": mean(B) - mean(A), "ci95": [low, high] percentile interval at `confidence`, "p_value"}.

    p-value convention: two-sided, 2 x the share of resampled deltas on the other side of 0 from the observed
    delta (a resampled delta of exactly 0 counts as "other side", which is conservative), capped at 1. An
    observed delta of 0 gives 1.0. Its resolution is 1/resamples: 0.0 means "below that", not "impossible".

    Each item's difference is -1, 0 or +1, so resampling n items with replacement is the same as drawing the
    three counts from a multinomial; that is exact and costs O(resamples) however many items there are.
    """
    a, b = _paired(a_correct, b_correct)
    if not 0.0 < confidence < 1.0:
        raise EngineError(f"confidence must be strictly between 0 and 1, got {confidence!r}; use e.g. 0.95")
    if resamples < 1:
        raise EngineError(f"resamples must be at least 1, got {resamples}; use e.g. 10000")
    n = a.size
    if n == 0:
        raise EngineError("paired_bootstrap got no items; score both runs on at least one item")
    diff = b.astype(np.int64) - a.astype(np.int64)
    n_minus, n_plus = int(np.sum(diff < 0)), int(np.sum(diff > 0))
    delta = (n_plus - n_minus) / n
    rng = np.random.default_rng(seed)
    probs = np.array([n_minus, n - n_minus - n_plus, n_plus], dtype=float) / n
    counts = rng.multinomial(n, probs, size=resamples)
    deltas = (counts[:, 2] - counts[:, 0]) / n
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [tail, 1.0 - tail])
    if delta > 0:
        p_value = 2.0 * float(np.mean(deltas <= 0))
    elif delta < 0:
        p_value = 2.0 * float(np.mean(deltas >= 0))
    else:
        p_value = 1.0
    return {"delta": delta, "ci95": [float(low), float(high)], "p_value": min(1.0, p_value)}


def _format_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def compare_runs(a_correct: Sequence[bool], b_correct: Sequence[bool], alpha: float = 0.05) -> dict:
    """Everything needed to say whether run B beats run A, ending in one plain sentence.

    Returns {"n", "accuracy_a", "accuracy_b", "delta" (B - A, a fraction), "mcnemar": mcnemar_exact(...),
    "bootstrap": paired_bootstrap(...), "significant": McNemar p < alpha, "verdict": str}. The verdict rests
    on McNemar (exact, no resampling noise); the bootstrap interval says how large the difference might be.
    """
    if not 0.0 < alpha < 1.0:
        raise EngineError(f"alpha must be strictly between 0 and 1, got {alpha!r}; use e.g. 0.05")
    a, b = _paired(a_correct, b_correct)
    n = a.size
    if n == 0:
        raise EngineError("compare_runs got no items; score both runs on at least one item")
    mcnemar = mcnemar_exact(a, b)
    bootstrap = paired_bootstrap(a, b)
    accuracy_a, accuracy_b = float(a.mean()), float(b.mean())
    delta = accuracy_b - accuracy_a
    significant = mcnemar["p_value"] < alpha
    points = abs(delta) * 100.0
    p_text = f"McNemar {_format_p(mcnemar['p_value'])}"
    noise = "beyond noise" if significant else "within noise"
    if mcnemar["b01"] == mcnemar["b10"]:
        verdict = f"A and B have the same accuracy ({accuracy_a * 100:.1f}%, {p_text}): {noise}."
    else:
        direction = "better" if delta > 0 else "worse"
        verdict = f"B is {direction} than A by {points:.1f} points ({p_text}): {noise}."
    return {
        "n": n,
        "accuracy_a": accuracy_a,
        "accuracy_b": accuracy_b,
        "delta": delta,
        "mcnemar": mcnemar,
        "bootstrap": bootstrap,
        "significant": significant,
        "verdict": verdict,
    }
