"""Binomial confidence bounds: exact coverage, orderings, monotonicity, known values, statsmodels naming."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from ambs_verify.estimators import (
    METHODS,
    SOUND_METHODS,
    EstimatorInputError,
    Interval,
    interval,
    upper_bound,
)
from ambs_verify.estimators.intervals import get_method

ALL = tuple(METHODS)
UNSOUND = tuple(n for n in ALL if n not in SOUND_METHODS)


def exact_coverage(method: str, m: int, p: float, delta: float, side: str) -> float:
    """P_p(the bound computed from K ~ Bin(m, p) covers p), by summing the binomial pmf over k = 0..m."""
    k = np.arange(m + 1, dtype=float)
    r = interval(k, m, delta, method, side)
    covered = (r.lower <= p) & (p <= r.upper)
    return float(stats.binom.pmf(k, m, p)[covered].sum())


def test_soundness_flags():
    assert set(SOUND_METHODS) == {"hoeffding", "kl", "clopper-pearson", "bernstein"}
    assert set(UNSOUND) == {"wilson", "agresti-coull", "jeffreys"}
    for name in ALL:  # the flag is stated in the docstring too
        doc = (get_method(name).upper.__doc__ or "") + get_method(name).summary
        assert ("not sound" in doc) == (name in UNSOUND), name


def test_known_values_at_m512_k0():
    cp_kl = 1 - 0.01 ** (1 / 512)
    assert cp_kl == pytest.approx(0.0089541437511, abs=1e-12)
    assert upper_bound(0, 512, 0.01, "hoeffding") == pytest.approx(math.sqrt(math.log(100) / 1024), rel=1e-12)
    assert upper_bound(0, 512, 0.01, "hoeffding") == pytest.approx(0.06706, abs=1e-5)
    assert upper_bound(0, 512, 0.01, "clopper-pearson") == pytest.approx(cp_kl, rel=1e-10)
    assert upper_bound(0, 512, 0.01, "kl") == pytest.approx(cp_kl, rel=1e-10)


@given(m=st.integers(1, 5000), delta=st.floats(1e-6, 0.5))
def test_cp_equals_kl_at_zero_violations(m, delta):
    expected = -math.expm1(math.log(delta) / m)  # 1 - delta**(1/m), without cancellation
    assert upper_bound(0, m, delta, "clopper-pearson") == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert upper_bound(0, m, delta, "kl") == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_statsmodels_alternative_naming_is_pinned():
    # statsmodels names one-sided intervals by the alternative:
    # 'larger' returns (0, upper), 'smaller' returns (lower, 1).
    lo, hi = proportion_confint(3, 100, alpha=0.05, method="wilson", alternative="larger")
    assert lo == 0 and 0.03 < hi < 0.1
    lo, hi = proportion_confint(3, 100, alpha=0.05, method="wilson", alternative="smaller")
    assert 0 < lo < 0.03 and hi == 1
    for name, sm in (("wilson", "wilson"), ("agresti-coull", "agresti_coull"), ("jeffreys", "jeffreys")):
        r_up = interval(3, 100, 0.05, name, "upper")
        r_lo = interval(3, 100, 0.05, name, "lower")
        assert r_up.upper == pytest.approx(proportion_confint(3, 100, 0.05, sm, alternative="larger")[1])
        assert r_lo.lower == pytest.approx(proportion_confint(3, 100, 0.05, sm, alternative="smaller")[0])
        assert r_up.lower == 0 and r_lo.upper == 1


@pytest.mark.parametrize("side", ["upper", "lower", "two-sided"])
@given(m=st.integers(1, 2000), p=st.floats(1e-4, 1 - 1e-4), delta=st.floats(1e-4, 0.5))
def test_sound_methods_have_exact_coverage(side, m, p, delta):
    for name in SOUND_METHODS:
        assert exact_coverage(name, m, p, delta, side) >= 1 - delta - 1e-10, (name, side, m, p, delta)


@pytest.mark.parametrize(
    ("method", "m", "p", "delta", "coverage"),
    [
        # found by scanning p on a 0.001 grid; the coverage values are exact binomial sums
        ("wilson", 10, 0.978, 0.05, 0.8006),
        ("agresti-coull", 10, 0.94, 0.05, 0.8824),
        ("jeffreys", 512, 0.0065, 0.01, 0.9645),  # in the safety regime: few violations among 512 traces
    ],
)
def test_unsound_methods_fall_below_nominal(method, m, p, delta, coverage):
    measured = exact_coverage(method, m, p, delta, "upper")
    assert measured == pytest.approx(coverage, abs=1e-4)
    assert measured < 1 - delta
    assert not get_method(method).sound


@given(m=st.integers(1, 3000), delta=st.floats(1e-6, 0.5))
def test_ordering_cp_kl_hoeffding(m, delta):
    k = np.arange(m + 1)
    cp, kl, hoeff = (upper_bound(k, m, delta, n) for n in ("clopper-pearson", "kl", "hoeffding"))
    assert np.all(cp <= kl + 1e-12)
    assert np.all(kl <= hoeff + 1e-12)
    assert np.all(kl <= upper_bound(k, m, delta, "bernstein") + 1e-12)  # as its docstring states


@pytest.mark.parametrize("method", ALL)
@given(m=st.integers(2, 2000), delta=st.floats(1e-5, 0.4))
def test_monotone_in_k_and_delta(method, m, delta):
    k = np.arange(m + 1)
    up = upper_bound(k, m, delta, method)
    assert np.all(np.diff(up) >= -1e-12), "upper bound must not decrease as violations grow"
    assert np.all(up >= k / m - 1e-12)
    looser = upper_bound(k, m, delta / 2, method)
    assert np.all(looser >= up - 1e-12), "a smaller delta must not tighten the bound"


@pytest.mark.parametrize("method", ALL)
@given(k=st.integers(0, 200), delta=st.floats(1e-5, 0.4))
def test_monotone_in_m_at_fixed_k(method, k, delta):
    m = np.arange(max(k, 2), k + 2000)
    up = upper_bound(k, m, delta, method)
    assert np.all(np.diff(up) <= 1e-12), "more samples with the same violations must not raise the bound"


@pytest.mark.parametrize("method", ALL)
def test_two_sided_spends_half_delta_per_side(method):
    k, m, d = np.array([0, 3, 40, 100]), 100, 0.02
    two = interval(k, m, d, method, "two-sided")
    assert np.allclose(two.upper, interval(k, m, d / 2, method, "upper").upper)
    assert np.allclose(two.lower, interval(k, m, d / 2, method, "lower").lower)
    assert np.all(two.lower <= two.estimate) and np.all(two.estimate <= two.upper)


def test_interval_round_trips_through_json():
    scalar = interval(3, 512, 0.01, "kl", "upper")
    back = Interval.from_json(scalar.to_json())
    assert back == scalar and isinstance(back.upper, float)
    array = interval([0, 3, 9], [64, 512, 512], 0.01, "clopper-pearson", "two-sided")
    back = Interval.from_json(array.to_json())
    for field in ("estimate", "lower", "upper", "k", "m"):
        np.testing.assert_array_equal(getattr(back, field), getattr(array, field))
    assert (back.method, back.sound, back.delta, back.side) == ("clopper-pearson", True, 0.01, "two-sided")


def test_aliases_resolve():
    assert get_method("KL-Chernoff").name == "kl"
    assert get_method("cp").name == "clopper-pearson"
    assert get_method("empirical-bernstein").name == "bernstein"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"k": 5, "m": 3, "delta": 0.01}, "k must not exceed m"),
        ({"k": -1, "m": 3, "delta": 0.01}, "k must be a count >= 0"),
        ({"k": 0, "m": 0, "delta": 0.01}, "m must be a sample count >= 1"),
        ({"k": 1, "m": 3, "delta": 1.0}, "delta must lie strictly between 0 and 1"),
        ({"k": 1, "m": 3, "delta": 0.1, "method": "wald"}, "unknown method 'wald'; accepted: hoeffding"),
        ({"k": 1, "m": 3, "delta": 0.1, "side": "both"}, "unknown side 'both'; accepted: upper"),
    ],
)
def test_bad_input_gives_one_line_error(kwargs, fragment):
    with pytest.raises(EstimatorInputError) as info:
        interval(**kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)
