"""Outward rounding: every sound bound against an exact reference at the points where rounding bit before.

The references are computed at 50 significant digits with ``decimal`` (exact binomial sums, ``Decimal.ln``
and bisection), so they are exact to far below float64 resolution. Each check asserts the bound is on the
safe side of the exact value (an upper bound never below it, a lower bound never above it) and that the
rounding slack stays small. The points are the worst cases of scans against the same references: each
was optimistic before outward rounding was sized to the measured errors (XLA's float64 ``log1p``, scipy's
Beta quantiles, ``1 / delta`` and KL cancellation in numpy, a continued fraction cut short at large m).
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ambs_verify.estimators import intervals, jax_bounds

PREC = 50  # significant digits of every reference
EPS64 = float(np.finfo(np.float64).eps)


def _dec(x) -> Decimal:
    """The exact value of a binary float."""
    return Decimal(float(x))


def _bisect(inside, lo: Decimal, hi: Decimal, steps: int = 110) -> tuple[Decimal, Decimal]:
    """Bracket ``[lo, hi]`` of the boundary of a monotone ``inside`` (True below, False above); width 2**-110."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        if inside(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi


def _binom_cdf(k: int, m: int, q: Decimal) -> Decimal:
    """``P(Bin(m, q) <= k)``, summing the pmf over the shorter side (term ratios, no cancellation for k < m/2)."""
    if k < 0:
        return Decimal(0)
    if k >= m:
        return Decimal(1)
    if k <= m // 2:
        ratio, term = q / (1 - q), (1 - q) ** m
        total = term
        for j in range(k):
            term = term * (m - j) / (j + 1) * ratio
            total += term
        return total
    ratio, term, tail = (1 - q) / q, q**m, Decimal(0)
    for j in range(m, k, -1):
        tail += term
        term = term * j / (m - j + 1) * ratio
    return 1 - tail


def _m_kl(k: int, m: int, q: Decimal) -> Decimal:
    p = Decimal(k) / m
    head = k * (p / q).ln() if k > 0 else Decimal(0)
    return head + (m - k) * ((1 - p) / (1 - q)).ln()


def exact_kl_upper(k: int, m: int, delta: float) -> tuple[Decimal, Decimal]:
    """Bracket of the largest q >= k/m with ``m KL(k/m || q) <= ln(1/delta)``."""
    with localcontext() as ctx:
        ctx.prec = PREC
        budget = -_dec(delta).ln()
        return _bisect(lambda q: _m_kl(k, m, q) <= budget, Decimal(k) / m, Decimal(1))


def exact_cp_upper(k: int, m: int, delta: float) -> tuple[Decimal, Decimal]:
    """Bracket of the Clopper-Pearson upper bound: the q with ``P(Bin(m, q) <= k) = delta``."""
    with localcontext() as ctx:
        ctx.prec = PREC
        return _bisect(lambda q: _binom_cdf(k, m, q) > _dec(delta), Decimal(0), Decimal(1))


def exact_cp_lower(k: int, m: int, delta: float) -> tuple[Decimal, Decimal]:
    """Bracket of the Clopper-Pearson lower bound: the q with ``P(Bin(m, q) >= k) = delta``."""
    with localcontext() as ctx:
        ctx.prec = PREC
        return _bisect(lambda q: 1 - _binom_cdf(k - 1, m, q) <= _dec(delta), Decimal(0), Decimal(1))


def exact_hoeffding_upper(k: int, m: int, delta: float) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = PREC
        return min(Decimal(1), Decimal(k) / m + (-_dec(delta).ln() / (2 * m)).sqrt())


def exact_bernstein_upper(k: int, m: int, delta: float) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = PREC
        log_term = (2 / _dec(delta)).ln()
        variance = Decimal(k) * (m - k) / (Decimal(m) * (m - 1))
        bound = Decimal(k) / m + (2 * variance * log_term / m).sqrt() + 7 * log_term / (3 * (m - 1))
        return min(Decimal(1), bound)


def _mirror(bracket: tuple[Decimal, Decimal]) -> tuple[Decimal, Decimal]:
    """``1 - upper(m - k)``: the lower bound's bracket from the mirrored upper bound's."""
    lo, hi = bracket
    return max(Decimal(0), 1 - hi), max(Decimal(0), 1 - lo)


def _point(value) -> tuple[Decimal, Decimal]:
    return value, value


def assert_upper(got, bracket: tuple[Decimal, Decimal], rel: float, what) -> None:
    """``exact <= got <= exact (1 + rel)``, with ``exact`` known to lie in ``bracket``."""
    lo, hi = bracket
    got = _dec(got)
    assert got >= hi, f"{what}: upper bound {got} is below the exact {hi} by {float(hi - got):.3g}"
    assert got <= lo * (1 + _dec(rel)), f"{what}: slack {float((got - lo) / lo):.3g} relative exceeds {rel:g}"


def assert_lower(got, bracket: tuple[Decimal, Decimal], rel: float, what, absolute: float = 0.0) -> None:
    """``exact (1 - rel) - absolute <= got <= exact``."""
    lo, hi = bracket
    got = _dec(got)
    assert got <= lo, f"{what}: lower bound {got} is above the exact {lo} by {float(got - lo):.3g}"
    slack = hi - got
    assert slack <= hi * _dec(rel) + _dec(absolute), f"{what}: slack {float(slack):.3g} exceeds {rel:g} relative"


# A lower bound mirrored from an upper one, ``1 - upper(m - k)``, carries the upper bound's absolute slack
# (a few eps next to 1), which is a large relative slack for a small lower bound.
MIRRORED_ABS = 1e-14


# --------------------------------------------------------------------------------------------------------
# The numpy references in intervals.py

# (k, m, delta) where the previous float64 code came out optimistic. Clopper-Pearson: ``beta.ppf(1 - delta)``
# lost delta's digits to ``1 - delta`` (3.5e-9 relative at delta = 1e-10) and the mirrored lower bound
# ``1 - upper(m - k)`` lost small bounds' relative accuracy (2.7e-8 at k = 1, m = 1000). KL: the ratio
# (1 - p)/(1 - q) rounded next to 1 at large m (4e-9 relative at m = 8.5e8). Hoeffding and KL near delta = 1:
# ``log(1 / delta)`` of a rounded 1 / delta. Bernstein and the mirrored lowers: plain rounding.
CP_UPPER = [(0, 512, 1e-10), (21, 64, 0.001), (125, 337, 1e-10), (3, 512, 1e-10)]
CP_LOWER = [(1, 1000, 1e-6), (1, 1000, 1e-10), (3, 512, 1e-6), (21, 64, 0.001), (8, 11, 1.0139499310371268e-06)]
KL_UPPER = [(21, 64, 0.001), (0, 478, 0.9942881383249442), (10, 10**7, 0.001), (3, 854080622, 0.0038841637757892344)]
KL_LOWER = [(1, 3257, 0.9131677741560721), (43, 64, 0.001)]
HOEFFDING_UPPER = [(0, 2, 0.9979623913203999), (21, 64, 0.001)]
HOEFFDING_LOWER = [(223, 4014, 2.2574480329374163e-11)]
BERNSTEIN_UPPER = [(0, 293, 0.9701347735277365), (21, 64, 0.001)]
BERNSTEIN_LOWER = [(4, 294, 0.9959056151971386)]


def _cp_rel(m: int) -> float:
    # intervals.py widens scipy's Beta quantiles by 8 (1 + m) eps (their measured error grows with m).
    return 16 * (1 + m) * EPS64


@pytest.mark.parametrize(("k", "m", "delta"), CP_UPPER)
def test_numpy_cp_upper_is_outward(k, m, delta):
    got = intervals.upper_bound(k, m, delta, "clopper-pearson")
    assert_upper(got, exact_cp_upper(k, m, delta), _cp_rel(m), (k, m, delta))


@pytest.mark.parametrize(("k", "m", "delta"), CP_LOWER)
def test_numpy_cp_lower_is_outward(k, m, delta):
    got = intervals.lower_bound(k, m, delta, "clopper-pearson")
    assert_lower(got, exact_cp_lower(k, m, delta), _cp_rel(m), (k, m, delta))


@pytest.mark.parametrize(("k", "m", "delta"), KL_UPPER)
def test_numpy_kl_upper_is_outward(k, m, delta):
    got = intervals.upper_bound(k, m, delta, "kl")
    assert_upper(got, exact_kl_upper(k, m, delta), 1e-13, (k, m, delta))


@pytest.mark.parametrize(("k", "m", "delta"), KL_LOWER)
def test_numpy_kl_lower_is_outward(k, m, delta):
    got = intervals.lower_bound(k, m, delta, "kl")
    assert_lower(got, _mirror(exact_kl_upper(m - k, m, delta)), 0.0, (k, m, delta), MIRRORED_ABS)


@pytest.mark.parametrize(("k", "m", "delta"), HOEFFDING_UPPER)
def test_numpy_hoeffding_upper_is_outward(k, m, delta):
    got = intervals.upper_bound(k, m, delta, "hoeffding")
    assert_upper(got, _point(exact_hoeffding_upper(k, m, delta)), 1e-14, (k, m, delta))


@pytest.mark.parametrize(("k", "m", "delta"), HOEFFDING_LOWER)
def test_numpy_hoeffding_lower_is_outward(k, m, delta):
    got = intervals.lower_bound(k, m, delta, "hoeffding")
    assert_lower(got, _mirror(_point(exact_hoeffding_upper(m - k, m, delta))), 0.0, (k, m, delta), MIRRORED_ABS)


@pytest.mark.parametrize(("k", "m", "delta"), BERNSTEIN_UPPER)
def test_numpy_bernstein_upper_is_outward(k, m, delta):
    got = intervals.upper_bound(k, m, delta, "bernstein")
    assert_upper(got, _point(exact_bernstein_upper(k, m, delta)), 1e-14, (k, m, delta))


@pytest.mark.parametrize(("k", "m", "delta"), BERNSTEIN_LOWER)
def test_numpy_bernstein_lower_is_outward(k, m, delta):
    got = intervals.lower_bound(k, m, delta, "bernstein")
    assert_lower(got, _mirror(_point(exact_bernstein_upper(m - k, m, delta))), 0.0, (k, m, delta), MIRRORED_ABS)


@pytest.mark.parametrize("method", intervals.SOUND_METHODS)
def test_bounds_exact_by_construction_stay_exact(method):
    # Nothing can be excluded past the observed extremes: these are exactly 1 and 0, not a rounded value.
    m = np.array([1, 2, 64, 10**6])
    assert np.all(intervals.upper_bound(m, m, 0.01, method) == 1.0)
    assert np.all(intervals.lower_bound(0, m, 0.01, method) == 0.0)
    two = intervals.interval(m, m, 0.01, method, "two-sided")
    assert np.all(two.upper == 1.0)


# --------------------------------------------------------------------------------------------------------
# The jit-able JAX bounds

# Float64 KL and Clopper-Pearson where x = (p - q)/q falls near -0.414, where XLA's float64 log1p errs by up
# to 120 eps: the previous 2-eps KL slack and 3-eps Clopper-Pearson margin left them 4.7e-15 and 4.0e-15 below
# exact. (21, 64, 0.001) is the point of the report.
JAX_KL_POINTS = [(21, 64, 0.001), (23, 79, 0.001), (41, 123, 1e-6), (25, 97, 0.001)]
JAX_CP_POINTS = [(43, 170, 1e-6), (19, 75, 0.001), (14, 38, 0.001), (21, 64, 0.001)]
JAX_CASES = [
    pytest.param(jax_bounds.kl_upper, JAX_KL_POINTS, exact_kl_upper, id="kl"),
    pytest.param(jax_bounds.clopper_pearson_upper, JAX_CP_POINTS, exact_cp_upper, id="cp"),
]


def _jax_bound(fn, points, dtype):
    k, m, delta = (np.array(col, dtype=np.dtype(dtype)) for col in zip(*points, strict=True))
    return np.asarray(jax.jit(fn)(k, m, delta), dtype=float)


@pytest.mark.parametrize(("fn", "points", "exact"), JAX_CASES)
def test_jax_float64_bounds_are_outward(fn, points, exact):
    with jax.enable_x64(True):
        got = _jax_bound(fn, points, jnp.float64)
    for value, point in zip(got, points, strict=True):
        assert_upper(value, exact(*point), 1e-12, point)


@pytest.mark.parametrize(("fn", "points", "exact"), JAX_CASES)
def test_jax_float32_bounds_are_outward(fn, points, exact):
    # The references take delta as cast to float32 (the counts are small integers, exact in float32).
    got = _jax_bound(fn, points, jnp.float32)
    for value, (k, m, delta) in zip(got, points, strict=True):
        bracket = exact(k, m, float(np.float32(delta)))
        assert_upper(value, bracket, 1e-5, (k, m, delta))
        assert float(value) - float(bracket[1]) <= 1e-6  # the documented absolute accuracy


def test_jax_cp_past_the_tested_range_is_sound():
    # m = 3e5, near the mean: the continued fraction's 160-term cap left the float32 bound 1.7e-6 below exact.
    # Past m = 10**4 the bound is the KL-Chernoff bound, which dominates Clopper-Pearson (Chernoff's
    # inequality), so it must lie between exact Clopper-Pearson and exact KL (plus float32 slack).
    k, m, delta = 220_669, 300_000, 0.5
    args = [jnp.float32(a) for a in (k, m, delta)]
    got = float(jax.jit(jax_bounds.clopper_pearson_upper)(*args))
    with localcontext() as ctx:
        ctx.prec = PREC
        # Sound iff P(Bin(m, got) <= k) <= delta (the cdf falls as q grows); a direct exact sum, no bisection.
        assert _binom_cdf(k, m, _dec(got)) <= _dec(delta), got
    assert got == pytest.approx(float(jax.jit(jax_bounds.kl_upper)(*args)), rel=0, abs=1e-7)  # KL-CP: 9.5e-4
    assert_upper(got, exact_kl_upper(k, m, delta), 1e-5, (k, m, delta))


def test_jax_cp_falls_back_to_kl_only_past_the_tested_range():
    k = np.array([50.0, 5_000.0, 0.0, 50.0, 5_000.0, 0.0])
    m = np.array([10_000.0, 10_000.0, 10_000.0, 10_001.0, 20_000.0, 10**6])
    delta = np.full(k.shape, 0.05)
    cp = np.asarray(jax.jit(jax_bounds.clopper_pearson_upper)(k, m, delta))
    kl = np.asarray(jax.jit(jax_bounds.kl_upper)(k, m, delta))
    assert np.all(cp[:2] < kl[:2] - 1e-5)  # Clopper-Pearson proper up to m = 10**4 (k = 0: the two agree)
    np.testing.assert_allclose(cp[3:], kl[3:], rtol=0, atol=1e-7)  # the same computation, maybe fused differently
    mapped = jax.jit(jax.vmap(jax_bounds.clopper_pearson_upper))(k, m, delta)  # jnp.where, not Python branching
    np.testing.assert_allclose(np.asarray(mapped), cp, rtol=0, atol=1e-7)
