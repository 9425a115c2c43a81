"""Confidence bounds for a binomial proportion: k violations in m i.i.d. Bernoulli samples.

Every method gives a one-sided upper bound, a one-sided lower bound and a two-sided interval at confidence
``1 - delta``; the two-sided interval spends ``delta / 2`` on each side. All functions broadcast over numpy
arrays of ``k``, ``m`` and ``delta``. ``k`` may be fractional (``k = p * m``) for planning sample sizes at an
expected proportion; certificates always pass integer counts.

Soundness (``Method.sound``) means guaranteed coverage ``>= 1 - delta`` for every true ``p`` and every ``m``;
the test-suite checks it exactly by summing the binomial pmf. Wilson, Agresti-Coull and Jeffreys are
approximate: their coverage dips below ``1 - delta`` for some ``(p, m)``, so they are never used for
certificates.

Rounding goes outward for the sound methods: an upper bound is never below the exact value of its formula
and a lower bound never above it. Each bound is widened by a relative slack that covers its measured (and,
for the closed forms and KL, counted) float64 rounding error, then moved one more ulp outward with
``np.nextafter`` and clipped to [0, 1]; values that are exactly 1 or 0 by construction (the upper bound at
``k = m``, the lower at ``k = 0``) stay exact. ``tests/test_rounding.py`` checks this against 50-digit
references at the points where rounding used to make the bounds optimistic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special
from statsmodels.stats.proportion import proportion_confint

from .errors import EstimatorInputError
from .records import Interval, scalar_or_array

SIDES = ("upper", "lower", "two-sided")

# Bisection halves the bracket each step; 64 steps take it below float64 resolution.
_BISECTION_STEPS = 64

_EPS = float(np.finfo(np.float64).eps)
# Relative slacks for outward rounding, in units of eps (the ulp added by np.nextafter comes on top).
# - Hoeffding: ``k/m + sqrt(-log(delta) / (2m))`` has at most ~1.6 eps relative rounding error (counting
#   operations; numpy's log is within 0.55 eps, measured).
_HOEFFDING_SLACK_EPS = 4.0
# - Empirical Bernstein: at most ~4 eps, counting operations the same way.
_BERNSTEIN_SLACK_EPS = 8.0
# - KL: a point is excluded only if the computed m*KL exceeds ln(1/delta) by this many eps times the terms'
#   magnitudes; counting roundings bounds the computed sum's error by ~2.3 eps of them (see _m_kl_terms).
_KL_SLACK_EPS = 8.0
# - Clopper-Pearson: scipy's Beta quantiles (Boost's ibeta_inv) are not correctly rounded, and their error
#   grows with m. Against exact binomial sums (50 digits, 1e4 random points with m <= 1e9 and
#   1e-12 <= delta <= 0.999) the optimistic error stayed within 2.4 (1 + m) eps relative, both sides (worst
#   at m ~ 10..70; ~0.1 (1 + m) eps for m >= 1e3). The slack is 8 (1 + m) eps: 1.8e-13 relative at m = 100,
#   1.8e-11 at m = 10**4.
_CP_SLACK_EPS_PER_SAMPLE = 8.0

UpperFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Method:
    """A bound construction.

    ``upper(k, m, delta)`` returns the one-sided upper bound at confidence ``1 - delta``; ``lower`` is the
    mirror image ``1 - upper(m - k, m, delta)`` unless the method supplies its own.
    """

    name: str
    sound: bool
    summary: str
    upper: UpperFn
    lower: UpperFn | None = None

    def one_sided(self, k: np.ndarray, m: np.ndarray, delta: np.ndarray, side: str) -> np.ndarray:
        # Nothing can be excluded beyond the observed extremes: upper is 1 at k = m, lower is 0 at k = 0.
        if side == "upper":
            return np.where(np.asarray(k) >= m, 1.0, self.upper(k, m, delta))
        if self.lower is not None:
            own_lower = self.lower(k, m, delta)
        else:
            # The mirrored upper bound already rounds outward; one ulp down covers the subtraction's rounding.
            own_lower = _round_down(1.0 - self.upper(m - k, m, delta))
        return np.where(np.asarray(k) <= 0, 0.0, own_lower)


def _round_up(bound: np.ndarray, rel_slack: float = 0.0) -> np.ndarray:
    """Widen an upper bound by ``rel_slack`` relative, then one ulp up; clipped to 1 (which stays exact)."""
    return np.minimum(1.0, np.nextafter(bound * (1.0 + rel_slack), np.inf))


def _round_down(bound: np.ndarray, rel_slack: float = 0.0) -> np.ndarray:
    """Widen a lower bound by ``rel_slack`` relative, then one ulp down; clipped to 0 (which stays exact)."""
    return np.maximum(0.0, np.nextafter(bound * (1.0 - rel_slack), -np.inf))


def _float_arrays(*arrays) -> list[np.ndarray]:
    """Broadcast to one shape as fresh, writable float64 arrays."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    return [np.array(np.broadcast_to(np.asarray(a, dtype=float), shape)) for a in arrays]


# --------------------------------------------------------------------------------------------------------
# Sound methods


def hoeffding_upper(k, m, delta):
    """Hoeffding: ``p_hat + sqrt(ln(1/delta) / (2m))``, clipped to 1. Sound for every p (AMBS Theorem 1).

    Notes
    -----
    Distribution-free and the basis of AMBS's sample-size theorems, but loose when p is near 0 or 1: at
    m = 512, k = 0, delta = 0.01 it gives 0.067 where Clopper-Pearson gives 0.00895. Rounded outward by
    4 eps relative plus one ulp. ``-log(delta)``, not ``log(1/delta)``: near delta = 1 the rounding of
    ``1/delta`` would be a large relative error of the small logarithm.
    """
    k, m, delta = _float_arrays(k, m, delta)
    return _round_up(k / m + np.sqrt(-np.log(delta) / (2.0 * m)), _HOEFFDING_SLACK_EPS * _EPS)


def bernoulli_kl(p, q):
    """KL(Bernoulli(p) || Bernoulli(q)) in nats, with 0 log 0 = 0 and +inf where q excludes p's support."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    return special.rel_entr(p, q) + special.rel_entr(1.0 - p, 1.0 - q)


def _m_kl_terms(k, m, p, q):
    """The two terms of ``m * KL(p || q)`` for ``p = k/m``, each without cancellation (0 log 0 = 0).

    ``k log1p((p - q)/q) + (m - k) log1p((q - p)/(1 - q))``: a rounded ratio ``(1-p)/(1-q)`` next to 1 would
    lose the small KL at large m (4e-9 relative at m = 8.5e8), while ``log1p`` of the relative gap keeps it.
    Rounding error of the sum, counting operations: the rounding of p cancels to first order (p maximises
    the expression over p), the other argument roundings add at most 2.5 eps of the second term's magnitude
    (it is at least ``m (q - p)``), and numpy's ``log1p`` is within 0.55 eps (measured); near the bound,
    where the second term is about half of ``|t_k| + |t_rest| + ln(1/delta)``, that is ~2.3 eps of the sum.
    """
    t_k = k * np.log1p(np.where(k > 0, (p - q) / q, 0.0))
    t_rest = np.where(m > k, (m - k) * np.log1p((q - p) / (1.0 - q)), 0.0)
    return t_k, t_rest


def kl_chernoff_upper(k, m, delta):
    """KL-Chernoff: the largest q >= p_hat with ``m * KL(p_hat || q) <= ln(1/delta)``. Sound for every p.

    Notes
    -----
    Chernoff's bound ``P(p_hat <= x) <= exp(-m KL(x || p))`` for ``x <= p`` inverted by bisection (64
    halvings of ``[p_hat, Hoeffding bound]``, which contains the root because Pinsker's inequality gives
    KL >= 2 (q - p)^2). A point is excluded only if the computed ``m KL`` exceeds ``ln(1/delta)`` by more
    than its rounding error (8 eps of the magnitudes, see ``_m_kl_terms``) and the upper end of the final
    bracket is returned, one ulp up: rounding never makes it optimistic. At k = 0 it equals
    Clopper-Pearson, ``1 - delta**(1/m)``; elsewhere it lies between Clopper-Pearson and Hoeffding.
    """
    k, m, delta = _float_arrays(k, m, delta)
    p_hat = k / m
    budget = -np.log(delta)
    slack = _KL_SLACK_EPS * _EPS
    lo, hi = p_hat.copy(), hoeffding_upper(k, m, delta)
    # mid = 1 (at p_hat = 1, or a bracket collapsed onto 1) makes the sum NaN: compared False, "not excluded",
    # which errs on the conservative side.
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            t_k, t_rest = _m_kl_terms(k, m, p_hat, mid)
            excluded = (t_k + t_rest) - slack * (np.abs(t_k) + np.abs(t_rest) + budget) > budget
            lo = np.where(excluded, lo, mid)
            hi = np.where(excluded, mid, hi)
    return np.where(p_hat >= 1.0, 1.0, _round_up(hi))


def clopper_pearson_upper(k, m, delta):
    """Clopper-Pearson: the ``1 - delta`` quantile of Beta(k + 1, m - k); 1 at k = m. Exact and sound.

    Notes
    -----
    The tightest bound that is guaranteed for every p: it inverts the binomial test itself, so its coverage
    is ``>= 1 - delta`` exactly (and conservative because the binomial is discrete). Computed as the upper
    tail's inverse (``betainccinv(k + 1, m - k, delta)``: ``beta.ppf(1 - delta)`` would lose delta's digits
    to the rounding of ``1 - delta``, 3.5e-9 relative at delta = 1e-10) and widened by ``8 (1 + m) eps``
    relative, which covers scipy's measured error (see ``_CP_SLACK_EPS_PER_SAMPLE``), plus one ulp.
    """
    k, m, delta = _float_arrays(k, m, delta)
    full = k >= m
    safe_b = np.where(full, 1.0, m - k)
    quantile = special.betainccinv(k + 1.0, safe_b, delta)
    return np.where(full, 1.0, _round_up(quantile, _CP_SLACK_EPS_PER_SAMPLE * (1.0 + m) * _EPS))


def clopper_pearson_lower(k, m, delta):
    """Clopper-Pearson lower bound: the ``delta`` quantile of Beta(k, m - k + 1); 0 at k = 0.

    Notes
    -----
    Computed directly rather than as ``1 - upper(m - k)``, whose subtraction keeps only absolute accuracy
    (small lower bounds came out up to 2.7e-8 relative too high at k = 1, m = 1000), and widened downward
    like :func:`clopper_pearson_upper`.
    """
    k, m, delta = _float_arrays(k, m, delta)
    empty = k <= 0
    quantile = special.betaincinv(np.where(empty, 1.0, k), m - k + 1.0, delta)
    return np.where(empty, 0.0, _round_down(quantile, _CP_SLACK_EPS_PER_SAMPLE * (1.0 + m) * _EPS))


def empirical_bernstein_upper(k, m, delta):
    """Empirical Bernstein (Maurer & Pontil 2009, Thm 4). Sound for every p when m >= 2; 1 when m < 2.

    ``p_hat + sqrt(2 V ln(2/delta) / m) + 7 ln(2/delta) / (3 (m - 1))`` with V the unbiased sample variance,
    ``m p_hat (1 - p_hat) / (m - 1)`` for 0/1 data.

    Notes
    -----
    Adapts to small variance like KL-Chernoff but pays a ``1/m`` term and a union bound (the 2 in
    ``ln(2/delta)``) for estimating the variance. For 0/1 data it is never tighter than KL-Chernoff (checked
    by the test-suite); it is offered because it generalises to bounded non-binary scores.
    """
    k, m, delta = _float_arrays(k, m, delta)
    m1 = np.maximum(m - 1.0, 1.0)
    log_term = np.log(2.0 / delta)
    # k (m - k) rather than m p (1 - p): 1 - p would cancel for p near 1.
    variance = k * (m - k) / (m * m1)
    bound = k / m + np.sqrt(2.0 * variance * log_term / m) + 7.0 * log_term / (3.0 * m1)
    return np.where(m < 2, 1.0, _round_up(bound, _BERNSTEIN_SLACK_EPS * _EPS))


# --------------------------------------------------------------------------------------------------------
# Approximate methods (statsmodels)


def _statsmodels_bound(sm_method: str, upper: bool) -> UpperFn:
    # statsmodels names one-sided intervals by the alternative hypothesis: 'larger' yields (0, upper),
    # 'smaller' yields (lower, 1). tests/test_intervals.py pins this.
    alternative = "larger" if upper else "smaller"

    def bound(k, m, delta):
        k, m, delta = _float_arrays(k, m, delta)
        lo, hi = proportion_confint(k, m, alpha=delta, method=sm_method, alternative=alternative)
        return np.clip(np.broadcast_to(hi if upper else lo, k.shape), 0.0, 1.0).astype(float)

    return bound


def _approximate(name: str, sm_method: str, summary: str) -> Method:
    return Method(
        name=name,
        sound=False,
        summary=summary,
        upper=_statsmodels_bound(sm_method, upper=True),
        lower=_statsmodels_bound(sm_method, upper=False),
    )


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("hoeffding", True, "Hoeffding's inequality (AMBS Theorem 1)", hoeffding_upper),
        Method("kl", True, "KL-Chernoff, exact inversion of m·KL(p̂‖q) = ln(1/δ)", kl_chernoff_upper),
        Method(
            "clopper-pearson",
            True,
            "Clopper-Pearson exact binomial (scipy)",
            clopper_pearson_upper,
            clopper_pearson_lower,
        ),
        Method("bernstein", True, "empirical Bernstein (Maurer & Pontil 2009)", empirical_bernstein_upper),
        _approximate("wilson", "wilson", "Wilson score (statsmodels); approximate, not sound"),
        _approximate("agresti-coull", "agresti_coull", "Agresti-Coull (statsmodels); approximate, not sound"),
        _approximate("jeffreys", "jeffreys", "Jeffreys equal-tailed (statsmodels); approximate, not sound"),
    )
}

ALIASES = {
    "kl-chernoff": "kl",
    "cp": "clopper-pearson",
    "clopper_pearson": "clopper-pearson",
    "exact": "clopper-pearson",
    "empirical-bernstein": "bernstein",
    "agresti_coull": "agresti-coull",
}

SOUND_METHODS = tuple(name for name, m in METHODS.items() if m.sound)


def get_method(name: str) -> Method:
    """Look a method up by name or alias (case-insensitive)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise EstimatorInputError(
            f"unknown method {name!r}; accepted: {', '.join(METHODS)} (aliases: {', '.join(ALIASES)})"
        )
    return METHODS[key]


def validate_counts(k, m, delta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check ``0 <= k <= m``, ``m >= 1`` and ``0 < delta < 1``; return them as float arrays."""
    k, m, delta = (np.asarray(a, dtype=float) for a in (k, m, delta))
    if not (np.all(np.isfinite(m)) and np.all(m >= 1)):
        raise EstimatorInputError(f"m must be a sample count >= 1 (got {_show(m)})")
    if not (np.all(np.isfinite(k)) and np.all(k >= 0)):
        raise EstimatorInputError(f"k must be a count >= 0 (got {_show(k)})")
    if np.any(k > m):
        raise EstimatorInputError(f"k must not exceed m: accepted 0 <= k <= m (got k={_show(k)}, m={_show(m)})")
    validate_delta(delta)
    return k, m, delta


def validate_delta(delta, name: str = "delta") -> np.ndarray:
    delta = np.asarray(delta, dtype=float)
    if not np.all((delta > 0) & (delta < 1)):
        raise EstimatorInputError(f"{name} must lie strictly between 0 and 1 (got {_show(delta)})")
    return delta


def _show(a: np.ndarray) -> str:
    a = np.asarray(a)
    return f"{a.item():g}" if a.size == 1 else np.array2string(a, threshold=6)


def interval(k, m, delta: float, method: str = "clopper-pearson", side: str = "two-sided") -> Interval:
    """Confidence bound for a binomial proportion from k violations in m samples at confidence 1 - delta.

    Parameters
    ----------
    k, m : array_like
        Violations and samples, broadcast together; ``0 <= k <= m``, ``m >= 1``.
    delta : float
        Allowed failure probability, in (0, 1). A two-sided interval spends ``delta / 2`` per side.
    method : str
        One of ``METHODS`` (or an alias in ``ALIASES``).
    side : {"upper", "lower", "two-sided"}

    Returns
    -------
    Interval
        ``estimate = k / m`` and the bounds, with the method's soundness flag.
    """
    chosen = get_method(method)
    if side not in SIDES:
        raise EstimatorInputError(f"unknown side {side!r}; accepted: {', '.join(SIDES)}")
    k, m, delta_arr = validate_counts(k, m, delta)
    shape = np.broadcast_shapes(k.shape, m.shape, delta_arr.shape)
    lower, upper = np.zeros(shape), np.ones(shape)
    if side == "upper":
        upper = chosen.one_sided(k, m, delta_arr, "upper")
    elif side == "lower":
        lower = chosen.one_sided(k, m, delta_arr, "lower")
    else:
        lower = chosen.one_sided(k, m, delta_arr / 2.0, "lower")
        upper = chosen.one_sided(k, m, delta_arr / 2.0, "upper")
    return Interval(
        estimate=scalar_or_array(np.broadcast_to(k / m, shape)),
        lower=scalar_or_array(np.broadcast_to(lower, shape)),
        upper=scalar_or_array(np.broadcast_to(upper, shape)),
        method=chosen.name,
        sound=chosen.sound,
        delta=scalar_or_array(delta_arr),
        k=scalar_or_array(k),
        m=scalar_or_array(m),
        side=side,
    )


def upper_bound(k, m, delta, method: str = "clopper-pearson") -> np.ndarray:
    """One-sided upper bound at confidence ``1 - delta`` (array, broadcast over the inputs)."""
    k, m, delta = validate_counts(k, m, delta)
    return get_method(method).one_sided(k, m, delta, "upper")


def lower_bound(k, m, delta, method: str = "clopper-pearson") -> np.ndarray:
    """One-sided lower bound at confidence ``1 - delta`` (array, broadcast over the inputs)."""
    k, m, delta = validate_counts(k, m, delta)
    return get_method(method).one_sided(k, m, delta, "lower")
