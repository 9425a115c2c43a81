"""Tests for the SPRT and the beta-binomial confidence sequence (ambs_verify/estimators/sequential.py).

Every random draw uses a fixed seed and hypothesis runs derandomized, so the file is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ambs_verify.estimators.errors import EstimatorInputError
from ambs_verify.estimators.sequential import (
    SPRT,
    ConfidenceSequence,
    Decision,
    OperatingCharacteristic,
    SPRTResult,
    confidence_sequence,
    cs_bounds,
    cs_excludes,
)

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)

# (theta0, theta1, alpha, beta, max_n): max_n leaves < 1e-6 undecided mass at theta0 and theta1.
USUAL_CASES = [
    (0.05, 0.10, 0.05, 0.05, 3000),
    (0.10, 0.30, 0.05, 0.10, 400),
    (0.01, 0.05, 0.01, 0.05, 2000),
    (0.20, 0.40, 0.10, 0.10, 400),
]
# Rare violations with a 10x indifference ratio: the overshoot at the lower boundary is large enough that
# the exact type II error exceeds its target beta (0.0511 > 0.05) while respecting beta / (1 - alpha).
OVERSHOOT_CASE = (0.001, 0.01, 0.05, 0.05, 4000)


def _errors(case) -> tuple[OperatingCharacteristic, float, float]:
    theta0, theta1, alpha, beta, max_n = case
    oc = SPRT(theta0, theta1, alpha, beta).operating_characteristic([theta0, theta1], max_n)
    return oc, float(oc.accept_h1[0]), float(oc.accept_h0[1])


def _assert_one_line_error(call, match: str) -> None:
    with pytest.raises(EstimatorInputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------------
# SPRT: exact operating characteristics


@pytest.mark.parametrize("case", [*USUAL_CASES, OVERSHOOT_CASE])
def test_exact_errors_respect_walds_bounds(case):
    _, _, alpha, beta, _ = case
    oc, alpha_exact, beta_exact = _errors(case)
    assert np.all(oc.undecided < 1e-6)
    np.testing.assert_allclose(oc.accept_h1 + oc.accept_h0 + oc.undecided, 1.0, atol=1e-12)
    assert alpha_exact <= alpha / (1 - beta)
    assert beta_exact <= beta / (1 - alpha)
    assert alpha_exact + beta_exact <= alpha + beta


@pytest.mark.parametrize("case", USUAL_CASES)
def test_usual_cases_meet_the_targets_themselves(case):
    # Moderate indifference ratios (theta1/theta0 <= 5) and targets <= 0.1: Wald's approximation is
    # conservative here, e.g. (0.05, 0.10, 0.05, 0.05) gives alpha' = 0.0395, beta' = 0.0491.
    _, _, alpha, beta, _ = case
    _, alpha_exact, beta_exact = _errors(case)
    assert alpha_exact <= alpha
    assert beta_exact <= beta


def test_overshoot_case_exceeds_beta_but_not_walds_bound():
    _, _, alpha, beta, _ = OVERSHOOT_CASE
    _, alpha_exact, beta_exact = _errors(OVERSHOOT_CASE)
    assert alpha_exact <= alpha
    assert beta < beta_exact <= beta / (1 - alpha)


@PROPERTY
@given(
    theta0=st.floats(0.05, 0.2),
    ratio=st.floats(2.0, 4.0),
    alpha=st.floats(0.01, 0.2),
    beta=st.floats(0.01, 0.2),
)
def test_total_error_at_most_alpha_plus_beta(theta0, ratio, alpha, beta):
    # The inequalities hold for the truncated test too (its acceptance probabilities only shrink); in these
    # ranges 1500 observations leave < 1e-4 undecided, so the exact errors are essentially Wald's.
    sprt = SPRT(theta0, theta0 * ratio, alpha, beta)
    oc = sprt.operating_characteristic([sprt.theta0, sprt.theta1], 1500)
    assert np.all(oc.undecided < 1e-3)
    alpha_exact, beta_exact = oc.accept_h1[0], oc.accept_h0[1]
    assert alpha_exact + beta_exact <= alpha + beta
    assert alpha_exact <= alpha / (1 - beta)
    assert beta_exact <= beta / (1 - alpha)


def test_acceptance_of_h1_rises_with_theta():
    oc = SPRT(0.05, 0.10, 0.05, 0.05).operating_characteristic(np.linspace(0.0, 0.3, 31), 3000)
    assert np.all(np.diff(oc.accept_h1) >= 0)
    assert oc.accept_h1[0] == 0.0  # p = 0: every observation pushes towards H0
    assert oc.expected_n.shape == (31,)


@pytest.mark.parametrize("theta", [0.0, 0.1, 0.2, 0.35, 1.0])
def test_exact_characteristic_matches_enumeration_of_all_paths(theta):
    # All 2**16 streams of length 16, weighted by their probability: an independent exact computation.
    sprt = SPRT(0.1, 0.3, 0.05, 0.1)
    length = 16
    xs = (np.arange(2**length)[:, None] >> np.arange(length)) & 1
    violations = xs.sum(axis=1)
    weight = theta**violations * (1 - theta) ** (length - violations)
    result = sprt.run(xs)
    oc = sprt.operating_characteristic(theta, length)
    assert np.sum(weight[result.decision == Decision.ACCEPT_H1]) == pytest.approx(oc.accept_h1, abs=1e-12)
    assert np.sum(weight[result.decision == Decision.ACCEPT_H0]) == pytest.approx(oc.accept_h0, abs=1e-12)
    assert np.sum(weight[result.decision == Decision.CONTINUE]) == pytest.approx(oc.undecided, abs=1e-12)
    assert np.sum(weight * result.n) == pytest.approx(oc.expected_n, rel=1e-12)


@pytest.mark.parametrize(("theta", "length"), [(0.1, 200), (0.2, 200), (0.3, 200), (0.2, 30)])
def test_exact_characteristic_matches_simulation(theta, length):
    # theta = 0.2 lies in the indifference region, where both decisions are likely and the test runs
    # longest; length = 30 truncates it so the undecided mass is checked as well (seed 0 lands at 3.1
    # standard errors there, the largest of these checks; the enumeration test above is the exact one).
    sprt = SPRT(0.1, 0.3, 0.05, 0.1)
    oc = sprt.operating_characteristic(theta, length)
    streams = 20_000
    xs = np.random.default_rng(0).random((streams, length)) < theta
    result = sprt.run(xs)
    for code, exact in [
        (Decision.ACCEPT_H1, oc.accept_h1),
        (Decision.ACCEPT_H0, oc.accept_h0),
        (Decision.CONTINUE, oc.undecided),
    ]:
        observed = np.mean(result.decision == code)
        se = max(np.sqrt(exact * (1 - exact) / streams), 1 / streams)
        assert abs(observed - exact) <= 4 * se, (code.name, observed, exact)
    se_n = np.std(result.n) / np.sqrt(streams)
    assert abs(np.mean(result.n) - oc.expected_n) <= 4 * se_n


# --------------------------------------------------------------------------------------------------------
# SPRT: decisions and runs


def test_boundaries_and_decide():
    sprt = SPRT(0.1, 0.3, 0.05, 0.1)
    assert sprt.upper_boundary == pytest.approx(np.log(0.9 / 0.05))
    assert sprt.lower_boundary == pytest.approx(np.log(0.1 / 0.95))
    # One violation moves the ratio by ln 3 = 1.10; one clean observation by ln(0.7/0.9) = -0.25.
    assert sprt.decide(0, 0) == Decision.CONTINUE
    assert sprt.decide(3, 3) == Decision.ACCEPT_H1  # 3.30 >= A = 2.89
    assert sprt.decide(0, 9) == Decision.ACCEPT_H0  # -2.26 <= B = -2.25
    assert sprt.decide(0, 8) == Decision.CONTINUE
    codes = sprt.decide(np.array([[0, 3], [1, 1]]), np.array([9, 3]))
    assert codes.shape == (2, 2)
    np.testing.assert_array_equal(codes, [[Decision.ACCEPT_H0, Decision.ACCEPT_H1], [Decision.CONTINUE] * 2])


def test_run_agrees_with_decide_along_each_stream():
    sprt = SPRT(0.1, 0.3, 0.05, 0.1)
    length = 60
    xs = np.random.default_rng(1).random((3, 500, length)) < 0.2
    result = sprt.run(xs)
    assert result.decision.shape == result.n.shape == result.k.shape == (3, 500)
    k = np.cumsum(xs, axis=-1)
    codes = sprt.decide(k, np.arange(1, length + 1))
    before_stop = np.arange(1, length + 1) < result.n[..., None]
    assert np.all(codes[before_stop] == Decision.CONTINUE)
    np.testing.assert_array_equal(result.k, np.take_along_axis(k, result.n[..., None] - 1, -1)[..., 0])
    np.testing.assert_array_equal(result.decision, sprt.decide(result.k, result.n))
    # Streams that never cross report the full length; some do at this length and theta.
    undecided = result.decision == Decision.CONTINUE
    assert undecided.any() and np.all(result.n[undecided] == length)


def test_run_on_one_stream_returns_plain_ints():
    sprt = SPRT(0.1, 0.3, 0.05, 0.1)
    result = sprt.run([1, 0, 1, 1, 0, 0])
    assert result == SPRTResult(decision=Decision.ACCEPT_H1, n=4, k=3)
    assert sprt.run([0] * 5) == SPRTResult(decision=Decision.CONTINUE, n=5, k=0)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.3, 0.1, 0.05, 0.1), "0 < theta0 < theta1 < 1"),
        ((0.0, 0.1, 0.05, 0.1), "0 < theta0 < theta1 < 1"),
        ((0.1, 1.0, 0.05, 0.1), "0 < theta0 < theta1 < 1"),
        ((0.1, 0.3, 0.0, 0.1), "alpha and beta in"),
        ((0.1, 0.3, 0.6, 0.5), "alpha \\+ beta < 1"),
    ],
)
def test_sprt_rejects_bad_parameters(args, match):
    _assert_one_line_error(lambda: SPRT(*args), match)


def test_sprt_rejects_bad_inputs():
    sprt = SPRT(0.1, 0.3, 0.05, 0.1)
    _assert_one_line_error(lambda: sprt.decide(4, 3), "0 <= k <= n")
    _assert_one_line_error(lambda: sprt.decide(-1, 3), "0 <= k <= n")
    _assert_one_line_error(lambda: sprt.run([0, 2, 1]), "0 \\(no violation\\) or 1")
    _assert_one_line_error(lambda: sprt.run(np.zeros((3, 0))), "T >= 1")
    _assert_one_line_error(lambda: sprt.run(1), "T >= 1")
    _assert_one_line_error(lambda: sprt.operating_characteristic(1.5, 10), "theta must lie in")
    _assert_one_line_error(lambda: sprt.operating_characteristic(0.1, 0), "max_n must be an integer")
    _assert_one_line_error(lambda: sprt.operating_characteristic(0.1, 2.5), "max_n must be an integer")


# --------------------------------------------------------------------------------------------------------
# Confidence sequence


def _assert_bounds_match_exclusion(k, n, delta, a=0.5, b=0.5):
    """The returned ends are excluded (unless 0 or 1) and points just inside them are not.

    "Just" is a relative 1e-9 of the distance to the nearer end of [0, 1], but at least 4 ulps of 1.0, since
    near 1 the floats are too coarse for a smaller step.
    """
    lower, upper = cs_bounds(k, n, delta, a, b)
    assert np.all(lower <= upper)
    lower_step = np.maximum(1e-9 * lower, 1e-300)
    upper_step = np.maximum(1e-9 * (1 - upper), 4 * np.finfo(float).eps)
    for p in (lower + lower_step, upper - upper_step):
        assert not cs_excludes(k, n, np.clip(p, 0.0, 1.0), delta, a, b).any()
    assert np.all(cs_excludes(k, n, lower, delta, a, b) | (lower == 0))
    assert np.all(cs_excludes(k, n, upper, delta, a, b) | (upper == 1))


def test_bounds_agree_with_closed_form_exclusion():
    n = np.arange(1, 2001)
    for k in (np.zeros_like(n), n // 10, n // 2, n - 1, n):
        _assert_bounds_match_exclusion(k, n, 0.05)
    _assert_bounds_match_exclusion(n // 100, n, 1e-6, a=0.1, b=0.9)


@PROPERTY
@given(
    n=st.integers(1, 10**6),
    fraction=st.floats(0.0, 1.0),
    delta=st.floats(1e-9, 0.5),
    a=st.floats(0.05, 5.0),
    b=st.floats(0.05, 5.0),
)
def test_bounds_agree_with_exclusion_property(n, fraction, delta, a, b):
    k = round(fraction * n)
    _assert_bounds_match_exclusion(np.array([k]), np.array([n]), delta, a, b)
    lower, upper = cs_bounds(k, n, delta, a, b)
    assert lower <= k / n <= upper


def test_known_values():
    # Uniform prior, no violations: p is excluded iff (t + 1) (1 - p)^t <= delta, so the upper end is
    # 1 - (delta / (t + 1))^(1/t).
    lower, upper = cs_bounds(0, 100, 0.05, a=1.0, b=1.0)
    assert lower == 0.0
    assert upper == pytest.approx(1 - (0.05 / 101) ** (1 / 100), rel=1e-12)
    assert cs_bounds(0, 0, 0.05) == (0.0, 1.0)
    assert cs_bounds(7, 7, 0.05)[1] == 1.0


def test_sequence_shapes_and_running_intersection():
    xs = np.random.default_rng(2).random((4, 5, 300)) < 0.3
    cs = confidence_sequence(xs, 0.05)
    assert cs.lower.shape == cs.upper.shape == cs.k.shape == (4, 5, 300)
    assert np.all(np.diff(cs.lower, axis=-1) >= 0) and np.all(np.diff(cs.upper, axis=-1) <= 0)
    raw_lower, raw_upper = cs_bounds(np.cumsum(xs, axis=-1), np.arange(1, 301), 0.05)
    np.testing.assert_array_equal(cs.lower, np.maximum.accumulate(raw_lower, axis=-1))
    np.testing.assert_array_equal(cs.upper, np.minimum.accumulate(raw_upper, axis=-1))
    one = confidence_sequence(xs[1, 2], 0.05)
    np.testing.assert_array_equal(one.upper, cs.upper[1, 2])


def test_time_uniform_coverage_where_monitored_clopper_pearson_fails():
    p, delta, streams, length = 0.1, 0.05, 1000, 1000
    xs = np.random.default_rng(0).random((streams, length)) < p
    cs = confidence_sequence(xs, delta)
    n = np.arange(1, length + 1)
    cs_miss = ((cs.lower > p) | (cs.upper < p)).any(axis=-1)
    # The closed-form check sees the same streams excluded (the bisection only rounds outward).
    np.testing.assert_array_equal(cs_miss, cs_excludes(cs.k, n, p, delta).any(axis=-1))
    # Two-sided Clopper-Pearson at delta, recomputed at every step as if m were fixed in advance.
    k = cs.k
    cp_miss = ((stats.binom.sf(k - 1, n, p) <= delta / 2) | (stats.binom.cdf(k, n, p) <= delta / 2)).any(-1)
    assert cs_miss.mean() <= delta  # measured 0.028
    assert cp_miss.mean() > 4 * delta  # measured 0.334
    # At a single fixed time Clopper-Pearson does cover: the failure is the monitoring, not the interval.
    cp_fixed = (stats.binom.sf(k[:, -1] - 1, length, p) <= delta / 2) | (
        stats.binom.cdf(k[:, -1], length, p) <= delta / 2
    )
    assert cp_fixed.mean() <= delta


def test_confidence_sequence_rejects_bad_inputs():
    _assert_one_line_error(lambda: confidence_sequence([0, 1], 0.0), "delta must be one number")
    _assert_one_line_error(lambda: confidence_sequence([0, 1], 0.05, a=0.0), "a > 0 and b > 0")
    _assert_one_line_error(lambda: confidence_sequence([0, 0.5], 0.05), "0 \\(no violation\\) or 1")
    _assert_one_line_error(lambda: cs_excludes(3, 2, 0.1, 0.05), "0 <= k <= n")
    _assert_one_line_error(lambda: cs_excludes(1, 2, 1.1, 0.05), "p must lie in")
    _assert_one_line_error(lambda: cs_bounds(-1, 2, 0.05), "0 <= k <= n")


# --------------------------------------------------------------------------------------------------------
# Records


def _assert_round_trip(record) -> None:
    restored = type(record).from_json(record.to_json())
    for name, value in record.to_dict().items():
        np.testing.assert_array_equal(getattr(restored, name), value)


def test_records_round_trip_through_json():
    sprt = SPRT(0.1, 0.3, 0.05, 0.1)
    xs = np.random.default_rng(3).random((2, 3, 50)) < 0.2
    _assert_round_trip(sprt.run(xs))
    _assert_round_trip(sprt.run(xs[0, 0]))
    _assert_round_trip(sprt.operating_characteristic([0.1, 0.2], 100))
    _assert_round_trip(sprt.operating_characteristic(0.2, 100))
    cs = confidence_sequence(xs, 0.05)
    _assert_round_trip(cs)
    assert ConfidenceSequence.from_json(cs.to_json()).confidence == pytest.approx(0.95)
