"""Tests for the betting confidence sequence (ambs_verify/estimators/betting.py).

Every random draw uses a fixed seed, so the file is deterministic. Statistical checks allow the one-sided
binomial upper limit at level 1e-6 above the bound they test, computed with scipy, so they can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ambs_verify.estimators.betting import (
    BettingCS,
    DecisionCost,
    betting_cs,
    betting_excludes,
    expected_decision_n,
)
from ambs_verify.estimators.errors import EstimatorInputError
from ambs_verify.estimators.threshold_test import ThresholdTest


def _all_paths(length: int) -> np.ndarray:
    return ((np.arange(2**length)[:, None] >> np.arange(length)) & 1).astype(np.int8)


def _binomial_limit(n: int, rate: float) -> int:
    """Largest count a Binomial(n, rate) exceeds with probability at most 1e-6."""
    return int(stats.binom.isf(1e-6, n, rate))


def _reference_capital(xs: np.ndarray, m: np.ndarray, delta: float, c: float) -> tuple[np.ndarray, np.ndarray]:
    """K+_t(m) and K-_t(m) straight from WSR's definitions, one time step at a time (a slow, independent
    reference). ``xs`` is (S, T), ``m`` is (M,); returns two (S, M, T) arrays."""
    streams, length = xs.shape
    k_plus, k_minus = np.ones((streams, m.size)), np.ones((streams, m.size))
    out_plus, out_minus = np.empty((streams, m.size, length)), np.empty((streams, m.size, length))
    total, squares, sigma2 = np.zeros(streams), np.zeros(streams), np.full(streams, 0.25)
    with np.errstate(divide="ignore"):
        cap_plus, cap_minus = c / m, c / (1.0 - m)
    for t in range(1, length + 1):
        x = xs[:, t - 1].astype(float)
        lam = np.sqrt(2.0 * math.log(2.0 / delta) / (sigma2 * t * math.log(1.0 + t)))[:, None]
        k_plus = k_plus * (1.0 + np.minimum(lam, cap_plus) * (x[:, None] - m))
        k_minus = k_minus * (1.0 - np.minimum(lam, cap_minus) * (x[:, None] - m))
        out_plus[..., t - 1], out_minus[..., t - 1] = k_plus, k_minus
        total += x
        mu = (0.5 + total) / (t + 1)
        squares += (x - mu) ** 2
        sigma2 = (0.25 + squares) / (t + 1)
    return out_plus, out_minus


def _assert_one_line_error(call, match: str) -> None:
    with pytest.raises(EstimatorInputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------------
# Coverage


@pytest.mark.parametrize("p", [0.01, 0.1, 0.5])
def test_simulated_miscoverage_at_most_delta(p):
    delta, streams = 0.05, 4000
    xs = np.random.default_rng(int(p * 1000)).random((streams, 1000)) < p
    below, above = betting_excludes(xs, p, delta)
    missed = int(np.sum(below[:, -1] | above[:, -1]))
    assert missed <= _binomial_limit(streams, delta), missed


@pytest.mark.parametrize("delta", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("p", [0.02, 0.1, 0.3, 0.5, 0.7])
def test_exact_miscoverage_over_all_paths_at_most_delta(p, delta):
    # All 2**14 streams of length 14, weighted by their probability: the exact chance that the sequence ever
    # excludes the true p within 14 observations. It is well above 0 here (0.0007 to 0.27), so the check bites.
    length = 14
    xs = _all_paths(length)
    k = xs.sum(axis=1)
    weight = p**k * (1.0 - p) ** (length - k)
    below, above = betting_excludes(xs, p, delta)
    missed = float(np.sum(weight[below[:, -1] | above[:, -1]]))
    assert 0.0 < missed <= delta
    # theta = 1/2 treats both sides alike: the path-wise mirror image gives the same exact miscoverage at 1 - p.
    below_m, above_m = betting_excludes(1 - xs, 1.0 - p, delta)
    assert float(np.sum(weight[below_m[:, -1] | above_m[:, -1]])) == pytest.approx(missed, rel=1e-9)


def test_reference_capital_is_a_martingale_over_all_paths():
    # The construction itself: E[theta K+_T(p) + (1 - theta) K-_T(p)] = 1 exactly (the bets are predictable).
    length, delta, c = 12, 0.1, 0.5
    xs = _all_paths(length)
    k = xs.sum(axis=1)
    for p in [0.05, 0.3, 0.8]:
        weight = p**k * (1.0 - p) ** (length - k)
        k_plus, k_minus = _reference_capital(xs, np.array([p]), delta, c)
        for t in [1, 5, length]:
            mean = np.sum(weight * (0.5 * k_plus[:, 0, t - 1] + 0.5 * k_minus[:, 0, t - 1]))
            assert mean == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------------------------------------
# The bounds


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_bounds_match_the_reference_definition(c):
    # On a grid of m, exclusion by the slow reference (running over s <= t) must agree with m <= lower_t
    # (K+ side) and m >= upper_t (K- side), away from the ends by a relative 1e-9.
    delta, theta = 0.1, 0.5
    xs = np.random.default_rng(3).random((6, 60)) < np.array([0.02, 0.1, 0.3, 0.5, 0.8, 0.97])[:, None]
    cs = betting_cs(xs, delta, c=c, theta=theta)
    grid = np.linspace(0.0, 1.0, 401)
    k_plus, k_minus = _reference_capital(xs, grid, delta, c)
    above = np.logical_or.accumulate(theta * k_plus >= 1.0 / delta, axis=-1)  # (S, M, T)
    below = np.logical_or.accumulate((1 - theta) * k_minus >= 1.0 / delta, axis=-1)
    lower, upper = cs.lower[:, None, :], cs.upper[:, None, :]
    m = grid[None, :, None]
    assert np.all(above[m < lower * (1 - 1e-9)]) and not np.any(above[m > lower * (1 + 1e-9)])
    assert np.all(below[m > upper * (1 + 1e-9)]) and not np.any(below[m < upper * (1 - 1e-9)])
    assert np.any(above) and np.any(below)


@pytest.mark.parametrize("p", [0.02, 0.3])
def test_bounds_agree_with_betting_excludes_to_the_last_bit(p):
    # The reported ends are excluded points (outside ends); the next float inwards is not excluded.
    delta = 0.05
    xs = np.random.default_rng(4).random((40, 400)) < p
    cs = betting_cs(xs, delta)
    for t in [5, 50, 137, 399]:
        lower, upper = cs.lower[:, t], cs.upper[:, t]
        has_lower = lower > 0.0
        assert np.all(betting_excludes(xs, np.where(has_lower, lower, 0.5), delta)[1][has_lower, t])
        assert not np.any(betting_excludes(xs, np.nextafter(lower, 1.0), delta)[1][:, t])
        has_upper = upper < 1.0
        assert np.all(betting_excludes(xs, np.where(has_upper, upper, 0.5), delta)[0][has_upper, t])
        assert not np.any(betting_excludes(xs, np.nextafter(upper, 0.0), delta)[0][:, t])
        # and a p just outside, by a relative 1e-9, is excluded from that side
        assert np.all(betting_excludes(xs, np.minimum(upper * (1 + 1e-9), 1.0), delta)[0][has_upper, t])


def test_bounds_are_monotone_nested_and_inside_zero_one():
    xs = np.random.default_rng(5).random((3, 20, 300)) < 0.1
    cs = betting_cs(xs, 0.05)
    assert isinstance(cs, BettingCS) and cs.lower.shape == cs.upper.shape == cs.k.shape == xs.shape
    assert np.all(np.diff(cs.lower, axis=-1) >= 0) and np.all(np.diff(cs.upper, axis=-1) <= 0)
    assert np.all(cs.lower >= 0.0) and np.all(cs.lower < 1.0)
    assert np.all(cs.upper > 0.0) and np.all(cs.upper <= 1.0)  # K- never excludes m = 0: upper is never 0
    np.testing.assert_array_equal(cs.k, np.cumsum(xs, axis=-1))
    covered = (cs.lower[..., -1] <= 0.1) & (cs.upper[..., -1] >= 0.1)
    assert np.all(cs.lower[covered] <= cs.upper[covered])


def test_bounds_at_time_t_use_only_the_first_t_observations():
    xs = np.random.default_rng(6).random((10, 200)) < 0.2
    full = betting_cs(xs, 0.05)
    prefix = betting_cs(xs[:, :80], 0.05)
    np.testing.assert_array_equal(full.lower[:, :80], prefix.lower)
    np.testing.assert_array_equal(full.upper[:, :80], prefix.upper)


def test_all_zeros_and_all_ones_and_one_sided_hedges():
    zeros = betting_cs(np.zeros(200, dtype=int), 0.05)
    assert zeros.lower.shape == (200,) and np.all(zeros.lower == 0.0)
    assert zeros.upper[0] == 1.0 and zeros.upper[-1] < 0.05
    ones = betting_cs(np.ones(200, dtype=int), 0.05)
    assert np.all(ones.upper == 1.0) and ones.lower[-1] > 0.95
    xs = np.random.default_rng(7).random((5, 100)) < 0.3
    assert np.all(betting_cs(xs, 0.05, theta=0.0).lower == 0.0)  # K+ carries no weight
    assert np.all(betting_cs(xs, 0.05, theta=1.0).upper == 1.0)
    # all weight on one side: that side's threshold is 1/delta rather than 2/delta, so its bound is tighter
    assert np.all(betting_cs(xs, 0.05, theta=1.0).lower >= betting_cs(xs, 0.05).lower)


def test_running_intersection_may_exclude_the_current_mean():
    # Not an invariant of the running intersection (of this sequence or of the mixture's): after a burst of
    # ten violations and 990 clean steps the lower bound stays where the burst put it, far above k/t = 0.01.
    xs = np.r_[np.ones(10), np.zeros(990)].astype(int)
    cs = betting_cs(xs, 0.05)
    assert cs.lower[-1] > 0.5 > cs.k[-1] / 1000
    below, above = betting_excludes(xs, 0.01, 0.05)
    assert above[-1] and not below[-1]


def test_record_round_trips_through_json():
    cs = betting_cs(np.random.default_rng(8).random((2, 30)) < 0.3, 0.1, c=0.75, theta=0.4)
    back = BettingCS.from_json(cs.to_json())
    np.testing.assert_array_equal(back.lower, cs.lower)
    np.testing.assert_array_equal(back.upper, cs.upper)
    assert (back.delta, back.c, back.theta, back.confidence) == (0.1, 0.75, 0.4, 0.9)


# --------------------------------------------------------------------------------------------------------
# Input errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delta": 0.0}, "delta must be"),
        ({"delta": 1.0}, "delta must be"),
        ({"delta": [0.1, 0.2]}, "delta must be"),
        ({"xs": [0, 2, 1]}, "must be 0 .no violation. or 1"),
        ({"xs": [0.5, 1.0]}, "must be 0 .no violation. or 1"),
        ({"xs": np.zeros((3, 0))}, "T >= 1"),
        ({"xs": 1}, "T >= 1"),
        ({"c": 0.0}, "bet cap c"),
        ({"c": 1.5}, "bet cap c"),
        ({"theta": -0.1}, "hedge weight theta"),
        ({"theta": 1.1}, "hedge weight theta"),
    ],
)
def test_bad_inputs_raise_one_line_errors(kwargs, match):
    args = {"xs": [0, 1, 0], "delta": 0.05, "c": 0.5, "theta": 0.5} | kwargs
    _assert_one_line_error(lambda: betting_cs(**args), match)
    _assert_one_line_error(lambda: betting_excludes(p=0.2, **args), match)


def test_bad_decision_inputs_raise_one_line_errors():
    _assert_one_line_error(lambda: betting_excludes([0, 1], 1.5, 0.05), "p must lie in")
    _assert_one_line_error(lambda: expected_decision_n(0.1, 0.05, 0.01, 100, "sprt"), "method must be")
    _assert_one_line_error(lambda: expected_decision_n(1.2, 0.05, 0.01, 100), "p_true must lie")
    _assert_one_line_error(lambda: expected_decision_n(0.1, 0.05, 0.01, 0), "max_n must be")
    _assert_one_line_error(lambda: expected_decision_n(0.1, 1.0, 0.01, 100), "threshold must lie")
    _assert_one_line_error(lambda: expected_decision_n(0.1, 0.05, 0.01, 100, streams=0), "streams must be")


# --------------------------------------------------------------------------------------------------------
# Deciding p <= eps against the mixture's test


def test_decision_cost_on_deterministic_streams():
    # p = 0 or 1: every stream is the same, so the simulation is exact.
    safe = expected_decision_n(0.0, 0.05, 0.01, 1000, streams=10)
    unsafe = expected_decision_n(1.0, 0.05, 0.01, 1000, streams=10)
    below, _ = betting_excludes(np.zeros(1000, dtype=int), 0.05, 0.01)
    _, above = betting_excludes(np.ones(1000, dtype=int), 0.05, 0.01)
    assert safe.expected_n == np.argmax(below) + 1 and safe.expected_n_se == 0.0 and safe.wrong == 0.0
    assert unsafe.expected_n == np.argmax(above) + 1 and unsafe.undecided == 0.0
    assert isinstance(safe, DecisionCost) and safe.method == "betting" and safe.streams == 10


def test_mixture_cost_is_the_threshold_tests_exact_characteristic():
    cost = expected_decision_n(0.02, 0.05, 0.01, 600, "mixture", a=0.1, b=0.9)
    oc = ThresholdTest(eps=0.05, delta=0.01, batch=1, max_n=600, a=0.1, b=0.9).operating_characteristic(0.02)
    assert cost.expected_n == pytest.approx(oc.expected_n, rel=1e-12) and cost.streams == 0
    assert cost.wrong == pytest.approx(oc.unsafe, rel=1e-12)


def test_benchmark_betting_against_mixture():
    # "p <= 0.05 or p > 0.05" at delta = 0.01. At the benchmark p = 0.01 the two need about as many observations
    # (measured: betting 284 +- 1.5 over 2000 streams, mixture 289.2 exact); betting is faster at p = 0.02
    # (498 vs 610) and slower far above the threshold (p = 0.2: 68 vs 46.5). Both stay wrong at most delta.
    delta, streams = 0.01, 1000
    for p, faster in [(0.01, None), (0.02, "betting"), (0.2, "mixture")]:
        bet = expected_decision_n(p, 0.05, delta, 2500, "betting", streams=streams, seed=11)
        mix = expected_decision_n(p, 0.05, delta, 2500, "mixture")
        assert bet.wrong * streams <= _binomial_limit(streams, delta) and mix.wrong <= delta
        assert bet.undecided <= 0.002 and mix.undecided <= 1e-3
        if faster is None:
            assert abs(bet.expected_n - mix.expected_n) <= 0.15 * mix.expected_n
        elif faster == "betting":
            assert bet.expected_n + 5 * bet.expected_n_se < mix.expected_n
        else:
            assert mix.expected_n < bet.expected_n - 5 * bet.expected_n_se
