"""Metrics: expected values are hand-computed (formulas worked on paper) or known textbook values."""

import pytest

from engine.scoring.answers import answers_match
from engine.errors import EngineError
from engine.scoring.metrics import (
    accuracy_summary,
    bootstrap_interval,
    first_wrong_step,
    maj_at_k,
    majority_vote,
    pass_at_k,
    per_class_report,
    per_step_accuracy,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("correct", "n", "expected"),
    [
        (5, 10, (0.2366, 0.7634)),  # center 0.5, half-width 1.96*sqrt(0.025 + 0.0096)/1.3841
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (3, 5, (0.2307, 0.8824)),
    ],
)
def test_wilson_interval_known_values(correct, n, expected):
    low, high = wilson_interval(correct, n)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


def test_wilson_interval_empty_and_wider_at_higher_confidence():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low95, high95 = wilson_interval(5, 10, 0.95)
    low99, high99 = wilson_interval(5, 10, 0.99)
    assert low99 < low95 and high99 > high95


@pytest.mark.parametrize(("correct", "n", "confidence"), [(11, 10, 0.95), (-1, 10, 0.95), (1, 10, 1.5)])
def test_wilson_interval_rejects_bad_arguments(correct, n, confidence):
    with pytest.raises(EngineError):
        wilson_interval(correct, n, confidence)


def test_bootstrap_interval_constant_values_have_zero_width():
    assert bootstrap_interval([0.7] * 5) == pytest.approx((0.7, 0.7))


def test_bootstrap_interval_matches_normal_approximation():
    # mean 0.5, standard error sqrt(0.25/100) = 0.05, so roughly 0.5 +- 1.96 * 0.05 = (0.402, 0.598)
    low, high = bootstrap_interval([0.0] * 50 + [1.0] * 50)
    assert low == pytest.approx(0.402, abs=0.02)
    assert high == pytest.approx(0.598, abs=0.02)


def test_bootstrap_interval_is_seeded():
    values = [0.1, 0.9, 0.4, 0.3, 0.8]
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)


def test_bootstrap_interval_rejects_empty():
    with pytest.raises(EngineError):
        bootstrap_interval([])


def test_accuracy_summary_counts_unparsed_separately():
    summary = accuracy_summary([True, True, False, False, True], [False, False, True, False, False])
    assert summary["n"] == 5
    assert summary["correct"] == 3
    assert summary["accuracy"] == pytest.approx(0.6)
    assert summary["unparsed"] == 1
    assert summary["unparsed_rate"] == pytest.approx(0.2)
    assert summary["ci95"] == pytest.approx([0.2307, 0.8824], abs=1e-4)


def test_accuracy_summary_unparsed_is_never_correct():
    summary = accuracy_summary([True, True], [True, False])
    assert summary["correct"] == 1
    assert summary["accuracy"] == pytest.approx(0.5)


def test_accuracy_summary_empty_and_mismatched():
    empty = accuracy_summary([], [])
    assert empty["n"] == 0 and empty["accuracy"] == 0.0 and empty["ci95"] == [0.0, 1.0]
    with pytest.raises(EngineError):
        accuracy_summary([True], [])


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 1, 0.3),  # pass@1 = c/n
        (4, 4, 2, 1.0),
        (4, 0, 2, 0.0),
        (5, 3, 3, 1.0),  # only 2 wrong samples: any 3 include a right one
        (200, 1, 100, 0.5),  # 1 - C(199,100)/C(200,100) = 1 - 100/200
    ],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 4), (3, 1, 0), (3, 4, 1), (0, 0, 1)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(EngineError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        (["5", "3", "5"], "5"),
        (["3", "5"], "3"),  # tie: first seen wins
        (["a", "b", "b", "a"], "a"),
        ([None, "4", None], "4"),  # None never wins, however many
        ([None, None], None),
        ([], None),
    ],
)
def test_majority_vote(votes, expected):
    assert majority_vote(votes) == expected


def test_maj_at_k():
    samples = [["1", "2", "2"], ["3", "3", "4"], ["5", "6", "7"]]
    golds = ["2", "3", "7"]
    assert maj_at_k(samples, golds, k=3) == pytest.approx(2 / 3)  # third item's tie goes to "5"
    assert maj_at_k(samples, golds, k=1) == pytest.approx(1 / 3)  # first samples: 1, 3, 5


def test_maj_at_k_custom_match_and_errors():
    number = lambda p, g: answers_match(p, g, "number")  # noqa: E731
    assert maj_at_k([["18.0"]], ["18"], k=1, match=number) == 1.0
    assert maj_at_k([["18.0"]], ["18"], k=1) == 0.0
    with pytest.raises(EngineError, match="k=2"):
        maj_at_k([["1"]], ["1"], k=2)
    with pytest.raises(EngineError):
        maj_at_k([["1"]], ["1", "2"], k=1)


def test_per_class_report():
    report = per_class_report(["yes", "yes", "no", "no"], ["yes", "yes", "yes", "no"], ["yes", "no"])
    yes, no = report["classes"]["yes"], report["classes"]["no"]
    # yes: tp 2, fp 0, fn 1 -> precision 1, recall 2/3, f1 0.8
    assert (yes["precision"], yes["recall"], yes["f1"], yes["support"]) == pytest.approx((1.0, 2 / 3, 0.8, 3))
    # no: tp 1, fp 1, fn 0 -> precision 1/2, recall 1, f1 2/3
    assert (no["precision"], no["recall"], no["f1"], no["support"]) == pytest.approx((0.5, 1.0, 2 / 3, 1))
    assert report["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_per_class_report_none_and_empty_class():
    report = per_class_report(["yes", None, "no"], ["yes", "yes", "yes"], ["yes", "no", "maybe"])
    yes = report["classes"]["yes"]
    # yes: tp 1, fp 0, fn 2 -> precision 1, recall 1/3, f1 0.5
    assert (yes["precision"], yes["recall"], yes["f1"]) == pytest.approx((1.0, 1 / 3, 0.5))
    assert report["classes"]["no"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["classes"]["maybe"]["f1"] == 0.0
    assert report["macro_f1"] == pytest.approx(0.5 / 3)


def test_per_step_accuracy_mixed_depths():
    preds = [["a", "b", "c"], ["a", "x"], ["a"], ["z", "b"]]
    golds = [["a", "b", "c"], ["a", "b", "c"], ["a", "b"], ["a", "b"]]
    result = per_step_accuracy(preds, golds)
    assert result["support"] == [4, 4, 2]
    assert result["accuracy"] == pytest.approx([3 / 4, 2 / 4, 1 / 2])
    assert result["first_wrong"] == [1, 2, 0]
    assert result["all_right"] == 1


def test_per_step_accuracy_empty():
    assert per_step_accuracy([], []) == {"accuracy": [], "support": [], "first_wrong": [], "all_right": 0}


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        (["a", "x"], ["a", "b", "c"], 1),
        (["a", "b", "c", "extra"], ["a", "b", "c"], None),
        ([None], ["a"], 0),
        ([], ["a"], 0),
        ([], [], None),
    ],
)
def test_first_wrong_step(pred, gold, expected):
    assert first_wrong_step(pred, gold) == expected


def test_first_wrong_step_custom_match():
    number = lambda p, g: answers_match(p, g, "number")  # noqa: E731
    assert first_wrong_step(["2.0", "4"], ["2", "5"], match=number) == 1
