"""Paired comparisons: p-values are exact binomial sums worked by hand; bootstrap bounds from binomial quantiles."""

import pytest

from engine.errors import EngineError
from engine.scoring.stats import compare_runs, mcnemar_exact, paired_bootstrap


def _runs(both_right: int, only_a: int, only_b: int, both_wrong: int) -> tuple[list[bool], list[bool]]:
    a = [True] * both_right + [True] * only_a + [False] * only_b + [False] * both_wrong
    b = [True] * both_right + [False] * only_a + [True] * only_b + [False] * both_wrong
    return a, b


@pytest.mark.parametrize(
    ("only_a", "only_b", "p_value"),
    [
        (0, 6, 0.03125),  # 2 * (1/2)^6
        (1, 5, 0.21875),  # 2 * (1 + 6) / 64
        (3, 3, 1.0),
        (0, 0, 1.0),  # no discordant pairs
    ],
)
def test_mcnemar_exact(only_a, only_b, p_value):
    a, b = _runs(4, only_a, only_b, 2)
    result = mcnemar_exact(a, b)
    assert result["b01"] == only_a
    assert result["b10"] == only_b
    assert result["p_value"] == pytest.approx(p_value)


def test_mcnemar_rejects_length_mismatch():
    with pytest.raises(EngineError, match="same items"):
        mcnemar_exact([True, False], [True])


def test_paired_bootstrap_identical_runs():
    a, b = _runs(5, 0, 0, 5)
    result = paired_bootstrap(a, b)
    assert result["delta"] == 0.0
    assert result["ci95"] == [0.0, 0.0]
    assert result["p_value"] == 1.0


def test_paired_bootstrap_b_better():
    # 6 items only B gets right, 4 ties: resampled delta = Binomial(10, 0.6) / 10, whose 2.5% and 97.5%
    # quantiles are 3 and 9 (P(X<=2)=0.012, P(X<=3)=0.055; P(X>=9)=0.046, P(X=10)=0.006).
    a, b = _runs(2, 0, 6, 2)
    result = paired_bootstrap(a, b)
    assert result["delta"] == pytest.approx(0.6)
    assert result["ci95"] == pytest.approx([0.3, 0.9])
    # P(resampled delta <= 0) = 0.4^10 ~ 1e-4, doubled
    assert result["p_value"] < 0.01


def test_paired_bootstrap_b_worse_is_mirror_image():
    a, b = _runs(2, 6, 0, 2)
    result = paired_bootstrap(a, b)
    assert result["delta"] == pytest.approx(-0.6)
    assert result["ci95"] == pytest.approx([-0.9, -0.3])
    assert result["p_value"] < 0.01


def test_paired_bootstrap_matches_normal_approximation():
    # 400 items, 60 only B, 40 only A: delta 0.05; var(d) = 100/400 - 0.05^2 = 0.2475, se = 0.02487,
    # so CI ~ 0.05 +- 0.0488 and a two-sided normal p ~ 0.044.
    a, b = _runs(200, 40, 60, 100)
    result = paired_bootstrap(a, b)
    assert result["delta"] == pytest.approx(0.05)
    assert result["ci95"][0] == pytest.approx(0.0012, abs=0.01)
    assert result["ci95"][1] == pytest.approx(0.0988, abs=0.01)
    assert 0.025 < result["p_value"] < 0.07


def test_paired_bootstrap_is_seeded_and_validates():
    a, b = _runs(3, 2, 4, 1)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    with pytest.raises(EngineError):
        paired_bootstrap([], [])
    with pytest.raises(EngineError):
        paired_bootstrap(a, b, confidence=95)


def test_compare_runs_significant_improvement():
    a, b = _runs(4, 0, 6, 0)
    result = compare_runs(a, b)
    assert result["n"] == 10
    assert result["accuracy_a"] == pytest.approx(0.4)
    assert result["accuracy_b"] == pytest.approx(1.0)
    assert result["delta"] == pytest.approx(0.6)
    assert result["mcnemar"]["p_value"] == pytest.approx(0.03125)
    assert result["significant"] is True
    assert result["verdict"] == "B is better than A by 60.0 points (McNemar p=0.031): beyond noise."
    assert set(result["bootstrap"]) == {"delta", "ci95", "p_value"}


def test_compare_runs_worse_within_noise():
    a, b = _runs(1, 1, 0, 1)  # p = binomtest(1, 1) = 1.0
    result = compare_runs(a, b)
    assert result["significant"] is False
    assert result["verdict"] == "B is worse than A by 33.3 points (McNemar p=1.000): within noise."


def test_compare_runs_same_accuracy_and_alpha():
    a, b = _runs(2, 1, 1, 0)  # both get 3 of 4 right
    assert compare_runs(a, b)["verdict"] == "A and B have the same accuracy (75.0%, McNemar p=1.000): within noise."
    # p = 0.03125 is beyond noise at alpha 0.05 but within it at alpha 0.01
    a, b = _runs(4, 0, 6, 0)
    assert compare_runs(a, b, alpha=0.01)["significant"] is False
    with pytest.raises(EngineError):
        compare_runs(a, b, alpha=0)
    with pytest.raises(EngineError):
        compare_runs([], [])
