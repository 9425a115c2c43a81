"""jit-able ``jax.numpy`` upper confidence bounds for a binomial proportion (k violations in m samples).

Why these exist
---------------
The AMBS shield applies its certified decision rule ("is the upper bound on this state's violation
probability below the threshold?") inside ``jax.jit`` on a batch of environments at every step. The numpy
references in :mod:`ambs_verify.estimators.intervals` cannot be traced, so this module re-implements the
three sound one-sided upper bounds as pure, elementwise, broadcasting ``jax.numpy`` functions that work
under ``jit`` and ``vmap`` and in both float32 (the shield's default) and float64 (``jax_enable_x64``):

* :func:`hoeffding_upper` -- closed form;
* :func:`kl_upper` -- KL-Chernoff, inverted by fixed-count bisection;
* :func:`clopper_pearson_upper` -- the Beta quantile, inverted by fixed-count bisection on the binomial cdf.

They agree with the numpy references to 1e-6 absolute for ``1 <= m <= 10**4``, integer ``0 <= k <= m`` and
``1e-6 <= delta <= 0.5`` in float32 and float64 (``tests/test_jax_bounds.py`` checks exactly that range;
measured float32 errors are <= 6e-7), and they round outward: each adds a slack sized to its own rounding
error, including XLA's measured ``log`` and ``log1p`` errors (float64 ``log1p`` is off by up to 120 eps on
part of its range), so in neither precision was a result below the exact value in any check
(``tests/test_rounding.py`` holds the worst cases against 50-digit references; see each function's Notes
for how far that is a guarantee). Past ``m = 10**4`` :func:`clopper_pearson_upper` returns the KL-Chernoff
bound, which is sound but looser.

Inputs are not validated (a jitted function cannot raise on values): outside ``0 <= k <= m``, ``m >= 1``,
``0 < delta < 1`` the results are unspecified. Validate with ``intervals.validate_counts`` outside jit.

Why not ``jax.scipy.special.betainc``
-------------------------------------
JAX's ``betainc`` forms its prefactor as ``exp(a log x + b log1p(-x) - lbeta(a, b))`` from float32
``lgamma`` values of size ``~m log m`` that cancel (``lgamma(10**4) ~ 8e4`` has an ulp of 8e-3). Inverting it
in float32 misses the Clopper-Pearson bound by up to 6.6e-5 at m = 10**4, 1.6e-5 at m <= 1000 and 2.2e-6
already at m <= 10 (measured). The cdf here uses Loader's saddle-point form of the binomial pmf instead
(Stirling-series corrections plus ``m * KL``, all small and well conditioned) times the same continued
fraction, evaluated with a capped number of terms.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["clopper_pearson_upper", "hoeffding_upper", "kl_upper"]

# Bisection halves [lo, hi] each step: 32 steps leave a float32 bracket of <= 2**-32 (float32 resolution for
# bounds above ~2e-3, and far below the 1e-6 target everywhere); 64 match the numpy reference.
_STEPS = {np.dtype(np.float32): 32, np.dtype(np.float64): 64}

# Partial numerators of the incomplete-beta continued fraction. With integer counts it terminates after 2b
# terms (b = k + 1 or m - k), so it is exact for m <= 80; for large m it needs O(sqrt(m)) terms near the mean.
# Measured in float64, worst case over k and delta: 120 terms leave 8e-11 at m = 10**4, 160 leave 4e-14 there
# and 4e-7 at m = 10**5. Each element stops updating once it has converged.
_CF_TERMS = 160

# Outward rounding, in units of the dtype's eps. XLA's elementary functions set the sizes; measured on XLA:CPU
# (jaxlib 0.10.2) against 50-digit ``decimal`` values (float64: 3e5 points; float32: 8e6 points against numpy):
#   float32  log1p <= 1.75 eps relative, log <= 1.02 eps;
#   float64  log <= 0.5 eps; log1p <= 1.4 eps except for x in [-0.4143, -0.345], just inside the edge
#            -(sqrt(2) - 1) of the range where XLA evaluates a polynomial: there it errs by 3 eps at x = -0.36
#            and climbs to 120 eps at x = -0.41421 (always upward, so m*KL comes out too large).
# KL's ``log1p((p - q)/q)`` lands in that interval whenever the bound q is ~1.7 k/m, e.g. k = 21, m = 64.
# - KL: a point is excluded only if the computed m*KL exceeds ln(1/delta) by more than this many eps times
#   the magnitudes summed (|k log(p/q)| + |(m-k) log((1-p)/(1-q))| + ln(1/delta)). Counting roundings,
#   the sum's error is at most (L + 1.75 eps) of that, L being log1p's relative error (the rounding of p
#   cancels to first order; the other argument errors are bounded by |t_rest|): 3.5 eps in float32, 122 eps
#   in float64. Measured raw errors near the bound: 1.3 eps (float32), 51 eps (float64). Slack: 4 and 256 eps.
_KL_SLACK_EPS = {np.dtype(np.float32): 4.0, np.dtype(np.float64): 256.0}
# - Clopper-Pearson: the computed cdf's rounding moves the root by at most 1.6 eps in float32 (measured over
#   8e5 random points, in absolute terms and independent of m: pmf, continued fraction and p = k/m errors all
#   scale so) and, in float64, by up to 18 eps where log1p's bad interval enters the pmf (measured against
#   exact binomial sums over 2e4 points with m <= 10**4). Margins: 3 eps (float32) and 64 eps (float64).
_CP_MARGIN_EPS = {np.dtype(np.float32): 3.0, np.dtype(np.float64): 64.0}
# - Hoeffding: a few elementary operations, relative error <= ~1.75 eps; the bound is scaled by 1 + 3 eps.
_HOEFFDING_SLACK_EPS = 3.0

# Clopper-Pearson is computed for m <= this; past it the continued fraction's term cap bites (it needs
# O(sqrt(m)) terms near the mean; float32 was 1.7e-6 optimistic at m = 3e5) and KL-Chernoff stands in.
_CP_M_MAX = 10_000

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# Stirling-series error stirlerr(n) = lgamma(n + 1) - (n + 1/2) log n + n - log sqrt(2 pi) for n < 16, from
# float64 lgamma: in float32 that difference of two ~40-sized numbers would lose ~1e-5 absolute. Larger n use
# the series, which is accurate in any precision.
_STIRLERR_SMALL_N = 16
_STIRLERR_TABLE = np.array(
    [0.0]  # n = 0 is never used (k = 0 takes the closed form)
    + [math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - _LOG_SQRT_2PI for n in range(1, _STIRLERR_SMALL_N)]
)


# --------------------------------------------------------------------------------------------------------
# Shared plumbing


def _prepare(k, m, delta):
    """Cast to one float dtype (float32 or float64) and broadcast; return the arrays and the dtype."""
    # Weak 1.0 makes all-integer inputs promote to the default float; half precisions compute in float32.
    dtype = jnp.promote_types(jnp.result_type(k, m, delta, 1.0), jnp.float32)
    k, m, delta = jnp.broadcast_arrays(*(jnp.asarray(a, dtype) for a in (k, m, delta)))
    return k, m, delta, dtype


def _bisect(excluded, lo, hi, steps: int):
    """Fixed-count bisection for the boundary of a monotone ``excluded(q)`` (False below, True above).

    Keeps the invariant ``excluded(hi) or hi == initial hi`` and returns the final ``hi``, so the result is
    never below a point the test could not exclude (rounding goes outward).
    """

    def body(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        out = excluded(mid)
        return jnp.where(out, lo, mid), jnp.where(out, mid, hi)

    # fori_loop, not a Python loop: one traced step, so compile time does not grow with the step count.
    _, hi = jax.lax.fori_loop(0, steps, body, (lo, hi))
    return hi


def _eps(dtype) -> float:
    return float(jnp.finfo(dtype).eps)


# --------------------------------------------------------------------------------------------------------
# Hoeffding


def hoeffding_upper(k, m, delta):
    """Hoeffding upper bound ``min(1, k/m + sqrt(ln(1/delta) / (2m)))``, elementwise.

    Parameters
    ----------
    k, m, delta : array_like
        Violations ``0 <= k <= m``, samples ``m >= 1`` and failure probability ``0 < delta < 1``; any shapes
        that broadcast together. Integer inputs are allowed.

    Returns
    -------
    jax.Array
        The broadcast shape, float32 or float64 following the inputs' float dtype (integers and half
        precisions give the default float dtype, resp. float32).

    Notes
    -----
    Multiplied by ``1 + 3 eps`` before clipping so that rounding (at most ~1.75 eps relative, measured
    within 1.05 eps) cannot make it optimistic: conservative in float32 and float64. The shift is below
    3.6e-7 absolute in float32, so it agrees with ``intervals.hoeffding_upper`` to 1e-6 for every input.
    """
    k, m, delta, dtype = _prepare(k, m, delta)
    bound = k / m + jnp.sqrt(-jnp.log(delta) / (2.0 * m))
    return jnp.minimum(1.0, bound * (1.0 + _HOEFFDING_SLACK_EPS * _eps(dtype))).astype(dtype)


# --------------------------------------------------------------------------------------------------------
# KL-Chernoff


def _m_kl_terms(k, m, q):
    """The two terms of ``m * KL(k/m || q)``, each computed without cancellation.

    ``m KL = k log(p/q) + (m - k) log((1-p)/(1-q))`` written as ``log1p`` of the relative gaps: ``log(p/q)``
    from a rounded ratio near 1 would lose all relative accuracy for q close to p (large m), while
    ``log1p((p - q)/q)`` keeps it. Zero counts contribute exactly 0 (``0 log 0 = 0``).
    """
    p = k / m
    t_k = jnp.where(k > 0, k * jnp.log1p((p - q) / q), 0.0)
    t_rest = jnp.where(m > k, (m - k) * jnp.log1p((q - p) / (1.0 - q)), 0.0)
    return t_k, t_rest


def kl_upper(k, m, delta):
    """KL-Chernoff upper bound: the largest ``q >= k/m`` with ``m * KL(k/m || q) <= ln(1/delta)``.

    Parameters
    ----------
    k, m, delta : array_like
        Violations ``0 <= k <= m``, samples ``m >= 1`` and failure probability ``0 < delta < 1``; any shapes
        that broadcast together. Integer inputs are allowed.

    Returns
    -------
    jax.Array
        The broadcast shape, float32 or float64 following the inputs' float dtype (integers and half
        precisions give the default float dtype, resp. float32); values in ``[k/m, 1]``, exactly 1 at
        ``k = m``.

    Notes
    -----
    Bisection on ``[k/m, 1]`` with a fixed step count (32 in float32, 64 in float64) in a
    ``jax.lax.fori_loop``; the upper end of the final bracket is returned, so the bisection itself never
    rounds inward. ``m KL`` is computed as ``k log1p((p-q)/q) + (m-k) log1p((q-p)/(1-q))`` (no cancelling
    ratio near 1; ``0 log 0 = 0``), and a point is excluded only when it exceeds ``ln(1/delta)`` by more than
    a slack times the magnitudes summed: 4 eps in float32, 256 eps in float64. Counting roundings bounds the
    sum's error by XLA's ``log1p`` error plus 1.75 eps of those magnitudes: 3.5 eps in float32 and 122 eps
    in float64, where XLA's ``log1p`` errs by up to 120 eps for arguments near -0.414, i.e. bounds near
    1.7 k/m (the previous 2-eps slack left ``kl_upper(21., 64., 0.001)`` 4.2e-15 below exact). Both
    precisions are therefore conservative up to that error model -- a first-order analysis with measured
    elementary-function errors, not a machine-checked proof -- and no result was below the exact value in
    any check (random points against 50-digit references, dense grids against the numpy reference). At
    ``k = 0`` it equals ``1 - delta**(1/m)``.

    Accuracy: within 1e-6 absolute of ``intervals.kl_chernoff_upper`` for ``1 <= m <= 10**4``, ``0 <= k <= m``
    and ``1e-6 <= delta <= 0.5``, in float32 (measured max error 4.4e-7, all of it on the conservative side)
    and float64 (5e-14). Nothing in the formulation degrades with m; the range is what is tested. Fractional
    ``k`` (planning at an expected proportion) works too.
    """
    k, m, delta, dtype = _prepare(k, m, delta)
    budget = -jnp.log(delta)
    slack = _KL_SLACK_EPS[np.dtype(dtype)] * _eps(dtype)

    def excluded(q):
        t_k, t_rest = _m_kl_terms(k, m, q)
        # The terms have opposite signs and may cancel: the rounding error scales with their magnitudes.
        # A NaN compares False, i.e. "not excluded", which errs on the conservative side.
        return (t_k + t_rest) - slack * (jnp.abs(t_k) + jnp.abs(t_rest) + budget) > budget

    hi = _bisect(excluded, k / m, jnp.ones_like(k), _STEPS[np.dtype(dtype)])
    return jnp.where(k >= m, 1.0, hi).astype(dtype)


# --------------------------------------------------------------------------------------------------------
# Clopper-Pearson


def _stirlerr(n):
    """``lgamma(n + 1) - (n + 1/2) log n + n - log sqrt(2 pi)`` for integer-valued ``n >= 1``."""
    big = jnp.maximum(n, _STIRLERR_SMALL_N)
    inv = 1.0 / big
    inv2 = inv * inv
    # Loader (2000): S0/n - S1/n^3 + S2/n^5 - S3/n^7 + S4/n^9, accurate to double precision for n >= 16.
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680 - inv2 / 1188))))
    table = jnp.asarray(_STIRLERR_TABLE, n.dtype)[jnp.clip(n, 0, _STIRLERR_SMALL_N - 1).astype(jnp.int32)]
    return jnp.where(n >= _STIRLERR_SMALL_N, series, table)


def _log_binom_pmf(k, m, q):
    """``log P(Bin(m, q) = k)`` for integer ``0 <= k < m`` and ``0 < q <= 1``, by Loader's saddle-point form.

    ``log C(m,k) q^k (1-q)^(m-k) = stirlerr(m) - stirlerr(k) - stirlerr(m-k) - log sqrt(2 pi k (m-k)/m)
    - m KL(k/m || q)``: every piece is O(1..log(1/delta)) in size, unlike the ``lgamma`` form whose
    ~m log m sized terms cancel.
    """
    k_pos = k > 0
    k1 = jnp.where(k_pos, k, 1.0)  # keeps the unused branch finite
    rest = m - k
    mode = _stirlerr(m) - _stirlerr(k1) - _stirlerr(rest) - 0.5 * jnp.log(2.0 * math.pi * k1 * rest / m)
    t_k, t_rest = _m_kl_terms(k, m, q)
    return jnp.where(k_pos, mode - t_k - t_rest, m * jnp.log1p(-q))


def _incomplete_beta_cf(a, b, x):
    """``1 / (1 + d1/(1 + d2/(1 + ...)))``, the continued fraction of DLMF 8.17.22 for ``I_x(a, b)``.

    Modified Lentz with at most ``_CF_TERMS`` partial numerators. An element stops updating once a partial
    numerator is 0 (the fraction terminates, as it does for integer b) or a step changes it by less than eps,
    so terms past convergence add no rounding drift; the ``while_loop`` ends when every element has stopped,
    which makes typical batches ~4x cheaper than a fixed 160 terms with identical results. (``while_loop``
    is jit- and vmap-compatible but not reverse-differentiable; nothing differentiates a certified bound.)
    """
    eps = _eps(x.dtype)
    tiny = jnp.asarray(jnp.finfo(x.dtype).tiny, x.dtype) * 1e6  # Lentz's guard against a zero denominator

    def numerator(i):
        # d_{2j+1} = -(a+j)(a+b+j)x / ((a+2j)(a+2j+1)),  d_{2j} = j(b-j)x / ((a+2j-1)(a+2j)).
        j_odd = ((i - 1) // 2).astype(x.dtype)
        j_even = (i // 2).astype(x.dtype)
        odd = -(a + j_odd) * (a + b + j_odd) * x / ((a + 2.0 * j_odd) * (a + 2.0 * j_odd + 1.0))
        even = j_even * (b - j_even) * x / ((a + 2.0 * j_even - 1.0) * (a + 2.0 * j_even))
        return jnp.where(i % 2 == 1, odd, even)

    def body(state):
        i, c, d, f, done = state
        num = numerator(i)
        d = 1.0 + num * d
        d = 1.0 / jnp.where(jnp.abs(d) < tiny, tiny, d)
        c = 1.0 + num / c
        c = jnp.where(jnp.abs(c) < tiny, tiny, c)
        step = c * d
        f = jnp.where(done, f, f * step)
        done = done | (num == 0.0) | (jnp.abs(step - 1.0) <= eps)
        return i + 1, c, d, f, done

    def more(state):
        i, *_, done = state
        return (i <= _CF_TERMS) & ~jnp.all(done)

    one = jnp.ones_like(x)
    init = (jnp.int32(1), one, jnp.zeros_like(x), one, jnp.zeros(x.shape, bool))
    f = jax.lax.while_loop(more, body, init)[3]
    return 1.0 / f


def _binom_cdf(k, m, q):
    """``P(Bin(m, q) <= k)`` for integer ``0 <= k < m`` and ``0 < q <= 1``.

    ``P(X <= k) = I_{1-q}(m-k, k+1) = q pmf(k) cf(m-k, k+1, 1-q)`` where that fraction converges fast
    (``q`` above ~the mean), else ``1 - I_q(k+1, m-k)`` with ``I_q(k+1, m-k) = q pmf(k) (m-k)/(k+1)
    cf(k+1, m-k, q)`` (DLMF 8.17.4). Below that split the cdf is at least e^-2 (k = 0 is the worst case), so
    the subtraction costs at most a factor ~6.4 in relative accuracy.
    """
    rest = m - k
    direct = (1.0 - q) < (rest + 1.0) / (m + 3.0)
    a = jnp.where(direct, rest, k + 1.0)
    b = jnp.where(direct, k + 1.0, rest)
    x = jnp.where(direct, 1.0 - q, q)
    # Product, not a sum of logs: each log would add its own absolute (= relative) rounding error.
    tail = jnp.exp(_log_binom_pmf(k, m, q)) * q * jnp.where(direct, 1.0, rest / (k + 1.0))
    tail = tail * _incomplete_beta_cf(a, b, x)
    return jnp.where(direct, tail, 1.0 - tail)


def clopper_pearson_upper(k, m, delta):
    """Clopper-Pearson upper bound: the ``1 - delta`` quantile of Beta(k + 1, m - k); 1 at ``k = m``.

    Parameters
    ----------
    k, m, delta : array_like
        Violations ``0 <= k <= m``, samples ``m >= 1`` and failure probability ``0 < delta < 1``; any shapes
        that broadcast together. Counts must be integer-valued (the cdf uses exact Stirling corrections
        tabulated at integers); integer dtypes are allowed.

    Returns
    -------
    jax.Array
        The broadcast shape, float32 or float64 following the inputs' float dtype (integers and half
        precisions give the default float dtype, resp. float32); values in ``[k/m, 1]`` for
        ``delta <= 0.5``, exactly 1 at ``k = m``.

    Notes
    -----
    Equivalently the largest q with ``P(Bin(m, q) <= k) > delta``. JAX has ``betainc`` but no inverse, and
    its float32 ``betainc`` is too inaccurate (see the module docstring), so the binomial cdf is evaluated as
    a saddle-point pmf times the incomplete-beta continued fraction (at most 160 terms, stopping when the
    whole batch has converged) and inverted by bisection on ``[0, 1]`` (32 steps in float32, 64 in float64)
    in a ``fori_loop``, returning the upper end of the final bracket.

    Rounding: the float32 cdf's rounding error moves the computed root by up to 1.6 eps (1.9e-7) either
    way, in absolute terms and independently of m (measured over 8e5 random points; cancellation near the
    mean inside the continued fraction rules out a useful a-priori bound). The result therefore adds 3 eps
    (3.6e-7 in float32) to the bracket's upper end and was never below the exact value in any check (dense
    grid plus 8e5 random points against the float64 reference, 1.4e4 points against exact binomial sums)
    -- but in float32 that is an empirical margin of ~1.9x, not a proof. In float64, XLA's ``log1p`` error
    near -0.414 (see :func:`kl_upper`) enters the pmf and moved the root by up to 18 eps (4e-15) downward
    (measured against exact binomial sums over 2e4 points with m <= 10**4), so the float64 margin is 64 eps
    (1.4e-14); the result matches the closed form at k = 0 to 2e-14.

    Range: the continued fraction needs O(sqrt(m)) terms near the mean, so past ``m = 10**4`` its 160-term
    cap bites (float32 came out 1.7e-6 below exact at m = 3e5, k = 220669, delta = 0.5). There, elementwise,
    the result is :func:`kl_upper` instead: Chernoff's inequality ``P(Bin(m, q) <= k) <= exp(-m KL(k/m || q))``
    for ``q >= k/m`` puts the binomial cdf at the KL bound at or below delta, so KL-Chernoff is never below
    Clopper-Pearson. It is sound but looser (by ~1e-3 at m = 3e5, delta = 0.5 near the mean).

    Accuracy: within 1e-6 absolute of ``intervals.clopper_pearson_upper`` for ``1 <= m <= 10**4``, integer
    ``0 <= k <= m`` and ``1e-6 <= delta <= 0.5``: measured max error 5.9e-7 in float32 (margin included,
    all of it on the conservative side); in float64 the difference is the reference's own outward widening
    (up to 1.8e-11 at m = 10**4). It costs ~15x :func:`kl_upper` (``benchmarks/jax_bounds.py``): prefer KL
    inside the shield.
    """
    k, m, delta, dtype = _prepare(k, m, delta)
    full = k >= m
    beyond = m > _CP_M_MAX
    # Elements whose cdf result is unused get the trivial count k = 0, m = 1: finite (k < m) and converged at
    # once, so they do not keep the continued fraction's while_loop running.
    k_cdf = jnp.where(full | beyond, 0.0, k)
    m_cdf = jnp.where(beyond, 1.0, m)

    def excluded(q):
        # A NaN compares False, i.e. "not excluded", which errs on the conservative side.
        return _binom_cdf(k_cdf, m_cdf, q) < delta

    hi = _bisect(excluded, jnp.zeros_like(k), jnp.ones_like(k), _STEPS[np.dtype(dtype)])
    hi = jnp.minimum(1.0, hi + _CP_MARGIN_EPS[np.dtype(dtype)] * _eps(dtype))
    bound = jnp.where(full, 1.0, hi)

    def with_kl():
        # Past m = 10**4: the KL-Chernoff bound, which is never below Clopper-Pearson (see the Notes).
        return jnp.where(beyond, kl_upper(k, m, delta), bound)

    # lax.cond so that batches inside the range skip KL (under vmap it becomes a select: still correct).
    return jax.lax.cond(jnp.any(beyond), with_kl, lambda: bound).astype(dtype)
